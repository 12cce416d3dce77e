"""Written pool scenes: the LLM's own features for a training request, paired with the latents of
the image the request asks for; a pool holds them after its read scenes and is rebuilt when the
LLM changes."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from safetensors.torch import load_file

from engine.testing import random_model, tiny_tokenizer
from training.config import MLLM_WEIGHTS, SFT_WEIGHTS, plan
from training.data.tasks import plan_sample
from training.reproduce import main
from training.stages.decoder import encode_scenes, render_batch
from training.stages.scene_pool import PoolSpec, build_pool, load_or_build_pool, pool_path
from training.stages.vision import pixels_of
from training.stages.written_scenes import (
    IMAGE_KINDS,
    Writer,
    image_kinds,
    written_chunk,
    written_features,
    written_requests,
)

SIZE = 64


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture
def model(keep_threads):
    return random_model(seed=0)


def test_only_tasks_that_answer_with_an_image_make_requests():
    kept = image_kinds(MLLM_WEIGHTS)
    assert {k for k, _ in kept} == set(IMAGE_KINDS)  # stage 2 trains every image task
    assert dict(kept)["t2i"] == dict(MLLM_WEIGHTS)["t2i"]
    assert "vqa" not in dict(image_kinds(SFT_WEIGHTS)) and "psr" not in dict(kept)
    with pytest.raises(ValueError, match="answers with an image"):
        image_kinds((("vqa", 1.0), ("caption", 2.0), ("t2i", 0.0)))
    for kind in IMAGE_KINDS:  # each ends with the assistant's image, which the request asks for
        sample = plan_sample(kind, random.Random(kind))
        assert sample.targets[-1] and sample.turns[-1].role.value == "assistant"


def test_a_writer_refuses_kinds_that_answer_in_text(model, tok):
    with pytest.raises(ValueError, match="answer with an image"):
        Writer(model, tok, (("t2i", 1.0), ("vqa", 1.0)))


def test_written_features_read_the_requests_images(model, tok):
    edits = [plan_sample("edit", random.Random(f"e{i}")).rendered(SIZE) for i in range(3)]
    feats = written_features(model, tok, edits, [0, 1, 2], batch=2)
    assert feats.shape == (3, 64, model.config.feature_dim) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    # the same requests write the same features, one at a time or batched
    alone = written_features(model, tok, edits[2:], [2], batch=1)
    torch.testing.assert_close(alone[0], feats[2], atol=1e-4, rtol=1e-4)
    # another picture to edit, with the same instruction, writes other features
    other = dataclasses.replace(edits[0], images=(edits[1].images[0], *edits[0].images[1:]))
    assert not torch.allclose(written_features(model, tok, [other], [0])[0], feats[0])
    with pytest.raises(ValueError, match="rendered first"):
        written_features(model, tok, [plan_sample("edit", random.Random(0))], [0])
    with pytest.raises(ValueError, match="seeds"):
        written_features(model, tok, edits, [0])


def test_a_written_chunk_pairs_the_asked_image_with_what_the_llm_writes(model, tok):
    writer = Writer(model, tok, image_kinds(MLLM_WEIGHTS))
    latents, feats = written_chunk(writer, model.decoder, SIZE, 3, 5, 1, 0)
    requests = written_requests(writer.weights, 3, SIZE, 5, 1, 0)
    assert requests == written_requests(writer.weights, 3, SIZE, 5, 1, 0)  # seeded
    assert requests != written_requests(writer.weights, 3, SIZE, 5, 2, 0)  # each chunk its own
    pixels = pixels_of([s.images[-1] for s in requests])
    asked, _ = encode_scenes(model.decoder, model.vision, pixels)
    torch.testing.assert_close(latents, asked, atol=1e-4, rtol=1e-4)
    again = written_features(model, tok, requests, [5 * 100_003 + 3 + i for i in range(3)])
    torch.testing.assert_close(feats, again, atol=1e-4, rtol=1e-4)


def test_a_pool_holds_its_written_scenes_last_and_is_rebuilt_when_the_llm_changes(
    tmp_path, model, tok
):
    writer = Writer(model, tok, (("t2i", 1.0), ("edit", 1.0)))
    spec = PoolSpec(SIZE, 5, 2, 7, written=3)
    pool = load_or_build_pool(tmp_path, model.decoder, model.vision, spec, writer)
    assert len(pool) == 5
    read = encode_scenes(model.decoder, model.vision, render_batch(SIZE, 2, "unet-pool", 7, 0, 0))
    torch.testing.assert_close(pool.features[:2].float(), read[1], atol=2e-2, rtol=2e-2)
    # written scenes: chunk 0 holds two, chunk 1 one
    for index, (chunk, n, k) in zip((2, 4), ((0, 2, 0), (1, 1, 0)), strict=True):
        lat, feat = written_chunk(writer, model.decoder, SIZE, n, 7, chunk, 0)
        torch.testing.assert_close(pool.latents[index].float(), lat[k], atol=2e-2, rtol=2e-2)
        torch.testing.assert_close(pool.features[index].float(), feat[k], atol=2e-2, rtol=2e-2)

    written = pool_path(tmp_path, 0).stat().st_mtime_ns
    load_or_build_pool(tmp_path, model.decoder, model.vision, spec, writer)
    assert pool_path(tmp_path, 0).stat().st_mtime_ns == written  # same LLM: loaded
    with torch.no_grad():
        model.output_proj.weight.mul_(1.5)
    changed = load_or_build_pool(tmp_path, model.decoder, model.vision, spec, writer)
    assert torch.equal(changed.features[:2], pool.features[:2])  # read scenes as they were
    assert not torch.equal(changed.features[2:], pool.features[2:])  # written ones anew

    with pytest.raises(ValueError, match="needs the LLM"):
        build_pool(model.decoder, model.vision, spec)
    with pytest.raises(ValueError, match="written scenes in a pool"):
        PoolSpec(SIZE, 2, 2, 7, written=3)


def test_a_plan_takes_a_written_share_only_of_a_pool():
    smoke = plan("smoke")
    with pytest.raises(ValueError, match="needs a scene pool"):
        dataclasses.replace(smoke, unet_written=0.5)
    with pytest.raises(ValueError, match="share"):
        dataclasses.replace(smoke, unet_pool=4, unet_written=1.5)


def test_a_unet_stage_trains_on_a_pool_with_written_scenes(tmp_path, keep_threads):
    pools = []
    for written in (0.0, 0.5):
        path = tmp_path / f"plan{written}.json"
        smoke = dataclasses.replace(plan("smoke"), unet_pool=4, unet_written=written)
        path.write_text(smoke.to_json())
        out = tmp_path / f"run{written}"
        main(["--plan", str(path), "--out", str(out), "--export", "", "--stages", "unet"])
        assert (out / "unet" / "loss_log.jsonl").read_text().strip()
        pools.append(load_file(str(pool_path(out, 0)))["features"])
    read, written_pool = pools
    assert read.shape == written_pool.shape and read.shape[0] == 4
    assert torch.equal(read[:2], written_pool[:2])  # the same read scenes first
    assert not torch.equal(read[2:], written_pool[2:])  # then two the LLM wrote
