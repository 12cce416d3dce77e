"""The LLM's error as the UNet's condition noise: residuals of what the LLM writes for one- and
two-object captions against the tower's features of their renders, saved under the LLM's
fingerprint, and added to the plan's share of a UNet batch's conditions."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from engine.testing import random_model, tiny_tokenizer
from training.config import plan
from training.reproduce import main
from training.stages.error_noise import (
    ERROR_KINDS,
    MAX_OBJECTS,
    add_errors,
    error_requests,
    error_residuals,
    errors_path,
    load_or_build_errors,
)
from training.stages.scene_pool import pool_path
from training.stages.vision import pixels_of
from training.stages.written_scenes import Writer, written_features

SIZE = 64


@pytest.fixture
def writer(keep_threads):
    return Writer(random_model(seed=0), tiny_tokenizer(), ERROR_KINDS)


def test_a_residual_is_what_the_llm_writes_minus_what_the_tower_reads(writer):
    model, tok = writer.model, writer.tokenizer
    requests = error_requests(5, SIZE, 3)
    assert all(s.turns[-1].role.value == "assistant" and s.targets[-1] for s in requests)
    assert {len(s.target_scenes[-1].objects) for s in requests} <= set(range(1, MAX_OBJECTS + 1))
    assert requests == error_requests(5, SIZE, 3)  # seeded
    assert requests != error_requests(5, SIZE, 3, rank=1)  # each process its own
    residuals = error_residuals(writer, model.vision, 5, SIZE, 3)
    assert residuals.shape == (5, 64, model.config.feature_dim)
    with torch.no_grad():
        pixels = pixels_of([s.images[-1] for s in requests])
        true = model.vision(model.vision.preprocess_pixels(pixels)).float()
    written = written_features(model, tok, requests, [3 * 100_003 + i for i in range(5)])
    torch.testing.assert_close(residuals, written - true, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="at least one"):
        error_residuals(writer, model.vision, 0, SIZE, 3)


def test_the_bank_is_made_again_only_when_the_llm_changes(tmp_path, writer):
    vision = writer.model.vision
    bank = load_or_build_errors(tmp_path, writer, vision, 3, SIZE, 7)
    assert bank.shape[0] == 3 and bank.dtype == torch.float32
    saved = load_file(str(errors_path(tmp_path, 0)))["residuals"]
    assert saved.dtype == torch.float16  # half the disk, as the scene pool
    torch.testing.assert_close(saved.float(), bank, atol=0, rtol=0)  # made or loaded: the same
    made = errors_path(tmp_path, 0).stat().st_mtime_ns
    torch.testing.assert_close(load_or_build_errors(tmp_path, writer, vision, 3, SIZE, 7), bank)
    assert errors_path(tmp_path, 0).stat().st_mtime_ns == made  # the same LLM: loaded
    with torch.no_grad():
        writer.model.output_proj.weight.mul_(1.5)
    changed = load_or_build_errors(tmp_path, writer, vision, 3, SIZE, 7)
    assert not torch.allclose(changed, bank)  # another LLM writes other features


def test_errors_are_added_to_the_share_of_conditions_asked_for():
    features = torch.randn(400, 64, 8)
    bank = torch.arange(1.0, 4.0)[:, None, None].expand(3, 64, 8)  # residual i is i + 1 everywhere
    g = torch.Generator().manual_seed(0)
    assert torch.equal(add_errors(features, bank, 0.0, g), features)
    added = add_errors(features, bank, 0.3, torch.Generator().manual_seed(1)) - features
    offsets = added[:, 0, 0].round()
    assert torch.allclose(added, offsets[:, None, None].expand_as(added), atol=1e-5)  # whole rows
    share = float((offsets != 0).float().mean())
    assert 0.22 < share < 0.38
    assert set(offsets[offsets != 0].tolist()) == {1.0, 2.0, 3.0}  # any residual of the bank
    assert (add_errors(features, bank, 1.0, g) != features).all()
    again = add_errors(features, bank, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(again - features, added)  # the generator decides which and where
    with pytest.raises(ValueError, match="0 to 1"):
        add_errors(features, bank, 1.5, g)


def test_a_plan_takes_a_share_and_a_bank():
    smoke = plan("smoke")
    assert smoke.unet_error_noise == 0.0
    with pytest.raises(ValueError, match="unet_error_noise"):
        dataclasses.replace(smoke, unet_error_noise=-0.1)
    with pytest.raises(ValueError, match="unet_error_bank"):
        dataclasses.replace(smoke, unet_error_noise=0.5, unet_error_bank=0)


@pytest.mark.parametrize("pool", [0, 4])
def test_a_unet_stage_trains_on_the_llms_error(tmp_path, keep_threads, pool):
    unets = []
    for share in (0.0, 1.0):
        path = tmp_path / f"plan{share}.json"
        smoke = dataclasses.replace(
            plan("smoke"), unet_pool=pool, unet_error_noise=share, unet_error_bank=2
        )
        path.write_text(smoke.to_json())
        out = tmp_path / f"run{share}"
        main(["--plan", str(path), "--out", str(out), "--export", "", "--stages", "unet"])
        assert (out / "unet" / "loss_log.jsonl").read_text().strip()
        assert errors_path(out, 0).is_file() == bool(share)
        assert pool_path(out, 0).is_file() == bool(pool)
        weights = load_file(str(out / "unet" / "checkpoint" / "model.safetensors"))
        unets.append({k: v for k, v in weights.items() if k.startswith("unet.")})
    plain, with_errors = unets
    assert plain.keys() == with_errors.keys() and plain
    assert any(not torch.equal(plain[k], with_errors[k]) for k in plain)
