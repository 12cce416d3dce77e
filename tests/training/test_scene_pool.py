"""The UNet stage's scene pool: its scenes are the renders encoded, it is reused only by the
weights that made it, a pooled run resumes exactly, and a time budget counts its encoding."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from engine.config import wegen_tiny
from engine.model import WeGenModel
from training.config import TrainingPlan, plan
from training.reproduce import fit_to_budget, main
from training.stages.decoder import encode_scenes, render_batch
from training.stages.scene_pool import PoolSpec, load_or_build_pool, pool_indices, pool_path


@pytest.fixture
def model(keep_threads):
    torch.manual_seed(0)
    return WeGenModel(wegen_tiny()).eval()


def test_pool_holds_the_encoded_renders_and_is_reused_only_by_the_same_weights(tmp_path, model):
    size = 64
    spec, more = PoolSpec(size, 3, 2, 7), PoolSpec(size, 4, 2, 7)
    pool = load_or_build_pool(tmp_path, model.decoder, model.vision, spec)
    assert len(pool) == 3
    # scenes 0-1 are the first render chunk, scene 2 the second's first
    first = encode_scenes(model.decoder, model.vision, render_batch(size, 2, "unet-pool", 7, 0, 0))
    second = encode_scenes(model.decoder, model.vision, render_batch(size, 1, "unet-pool", 7, 1, 0))
    latents, features = pool.take(torch.tensor([0, 1, 2]))
    assert latents.dtype == features.dtype == torch.float32
    torch.testing.assert_close(latents, torch.cat([first[0], second[0]]), atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(features, torch.cat([first[1], second[1]]), atol=2e-3, rtol=2e-3)

    path = pool_path(tmp_path, 0)
    written = path.stat().st_mtime_ns
    again = load_or_build_pool(tmp_path, model.decoder, model.vision, spec)
    assert path.stat().st_mtime_ns == written  # loaded, not encoded again
    assert torch.equal(again.latents, pool.latents) and torch.equal(again.features, pool.features)

    # other encoder weights (or another count) make another pool
    with torch.no_grad():
        model.decoder.vae.encoder.conv_in.weight.add_(0.05)
    changed = load_or_build_pool(tmp_path, model.decoder, model.vision, spec)
    assert not torch.equal(changed.latents, pool.latents)
    assert torch.equal(changed.features, pool.features)  # the tower did not change
    assert torch.equal(load_file(str(path))["latents"], changed.latents.cpu())
    assert len(load_or_build_pool(tmp_path, model.decoder, model.vision, more)) == 4


def test_pool_indices_are_each_steps_own_and_within_the_pool():
    a, b = pool_indices(10, 64, 0, 3, 0), pool_indices(10, 64, 0, 4, 0)
    assert torch.equal(a, pool_indices(10, 64, 0, 3, 0))
    assert not torch.equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < 10
    assert not torch.equal(a, pool_indices(10, 64, 0, 3, 1))  # another process, other scenes


def test_a_plan_refuses_a_negative_pool():
    with pytest.raises(ValueError, match="unet_pool"):
        dataclasses.replace(plan("smoke"), unet_pool=-1)


def _pooled_smoke(tmp_path, pool: int):
    path = tmp_path / f"pool{pool}.json"
    path.write_text(dataclasses.replace(plan("smoke"), unet_pool=pool).to_json())
    return path


def test_a_pooled_unet_stage_resumes_exactly(tmp_path, keep_threads):
    plan_json = str(_pooled_smoke(tmp_path, 5))
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--plan", plan_json, "--export", "", "--stages", "unet"]
    main([*common, "--out", str(straight)])
    main([*common, "--out", str(resumed), "--stop-after", "1"])
    built = pool_path(resumed, 0).stat().st_mtime_ns
    main([*common, "--out", str(resumed)])
    assert pool_path(resumed, 0).stat().st_mtime_ns == built  # the resumed run loaded it
    for run in (straight, resumed):
        assert TrainingPlan.from_json((run / "plan.json").read_text()).unet_pool == 5
    rows = {
        run: [json.loads(r) for r in (run / "unet" / "loss_log.jsonl").read_text().splitlines()]
        for run in (straight, resumed)
    }
    assert [r["loss"] for r in rows[straight]] == pytest.approx([r["loss"] for r in rows[resumed]])
    a, b = (load_file(str(run / "model.safetensors")) for run in (straight, resumed))
    unet = [k for k in a if k.startswith("decoder.unet.")]
    assert unet and all(torch.equal(a[k], b[k]) for k in unet)


def test_a_time_budget_counts_the_pools_encoding(tmp_path, keep_threads):
    small, huge = (
        fit_to_budget(
            TrainingPlan.from_json(_pooled_smoke(tmp_path, n).read_text()), 0.5, out, ("unet",)
        )
        for n, out in ((4, tmp_path / "a"), (1_000_000, tmp_path / "b"))
    )
    # a million scenes take longer to encode than the whole budget: one step is all that is left
    assert huge.unet.steps == 1
    assert small.unet.steps > 1
    assert huge.unet_pool == 1_000_000 and not (tmp_path / "b" / "budget-probe").exists()
