"""Stage 2's optional diffusion loss: each generated image's predicted features condition the
frozen UNet, and its diffusion loss on that image's latents trains the LLM, never the UNet."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from safetensors.torch import load_file

from engine.template import NUM_IMAGE_TOKENS
from engine.testing import random_model, tiny_tokenizer
from training.config import TrainingPlan, plan
from training.data.tasks import plan_sample
from training.reproduce import main
from training.stages.mllm import (
    HostMLLMBatch,
    MLLMObjective,
    encode_sample,
    generated_images,
    make_mllm_batch,
)
from training.stages.vision import pixels_of


@pytest.fixture(scope="module")
def setup():
    model = random_model(seed=0)
    tok = tiny_tokenizer()
    rng = random.Random(5)
    size = model.config.vision.image_size
    samples = [
        plan_sample(kind, rng, "train").rendered(size)
        for kind in ("caption", "t2i", "restore", "edit")
    ]
    host = HostMLLMBatch(
        [encode_sample(tok, s) for s in samples],
        pixels_of([im for s in samples for im in s.images]),
        [len(s.images) for s in samples],
    )
    return model, tok, samples, host


def batch_of(setup, decoder=True, seed=0):
    model, tok, _, host = setup
    g = torch.Generator().manual_seed(seed)
    return make_mllm_batch(model, tok, host, g, 0.0, 0.0, model.decoder if decoder else None)


def test_the_latents_are_the_generated_images_in_regression_order(setup):
    model, _, samples, host = setup
    batch = batch_of(setup)
    asked = [im for s in samples for im, t in zip(s.images, s.targets, strict=True) if t]
    # the images the assistant draws, not those the user gives (the captioned, the degraded)
    assert not any(samples[0].targets) and not all(samples[2].targets) and len(asked) >= 3
    assert len(generated_images(host)) == len(asked) < sum(host.images_per_sample)
    with torch.no_grad():
        expected = model.decoder.encode_pixels(pixels_of(asked)).float()
    assert torch.allclose(batch["diffusion_latents"], expected, atol=1e-5)
    assert len(batch["reg_targets"]) == len(asked) * NUM_IMAGE_TOKENS
    # the tower's targets of the k-th regression image are those of the k-th latent's image
    with torch.no_grad():
        tower = model.vision(model.vision.preprocess_pixels(pixels_of(asked))).float()
    assert torch.allclose(batch["reg_targets"].view_as(tower), tower, atol=1e-5)
    assert batch["diffusion_timesteps"].shape == (len(asked),)
    assert batch["diffusion_noise"].shape == expected.shape
    # without a decoder the batch is what it was, draw for draw
    plain = batch_of(setup, decoder=False)
    assert "diffusion_latents" not in plain
    assert all(torch.equal(plain[k], batch[k]) for k in plain)


def test_the_loss_adds_the_weighted_diffusion_term_and_trains_only_the_llm(setup):
    model = random_model(seed=1)
    model.train().requires_grad_(False)
    for module in (model.llm, model.input_proj, model.output_proj):
        module.requires_grad_(True)
    setup_b = (model, *setup[1:])
    batch = batch_of(setup_b)
    plain_loss, plain = MLLMObjective(model)(batch)
    loss, logs = MLLMObjective(model, diffusion_weight=0.5)(batch)
    assert "diffusion" not in plain and float(logs["diffusion"].detach()) > 0
    assert torch.allclose(loss, plain_loss + 0.5 * logs["diffusion"])
    loss.backward()
    assert model.output_proj.weight.grad is not None
    assert model.output_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.decoder.parameters())
    with pytest.raises(ValueError, match="negative"):
        MLLMObjective(model, diffusion_weight=-1.0)


def test_descending_the_diffusion_loss_alone_lowers_it(setup):
    """The gradient that reaches the LLM is the UNet's: steps on the output projector alone, with
    the regression and LM terms off, lower the diffusion loss of a fixed batch."""
    model = random_model(seed=2)
    model.train().requires_grad_(False)
    model.output_proj.requires_grad_(True)
    batch = batch_of((model, *setup[1:]))
    objective = MLLMObjective(model, regression_weight=0.0, diffusion_weight=1.0)
    optimizer = torch.optim.Adam(model.output_proj.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        _, logs = objective(batch)
        optimizer.zero_grad()
        logs["diffusion"].backward()
        optimizer.step()
        losses.append(float(logs["diffusion"].detach()))
    assert losses[-1] < 0.9 * losses[0]


def test_a_plan_with_the_loss_trains_the_llm_and_leaves_the_unet(tmp_path, keep_threads):
    with pytest.raises(ValueError, match="diffusion_weight"):
        dataclasses.replace(plan("smoke"), diffusion_weight=-0.1)
    states, logs = [], []
    for weight in (0.0, 1.0):
        smoke = dataclasses.replace(plan("smoke"), diffusion_weight=weight)
        assert TrainingPlan.from_json(smoke.to_json()) == smoke
        path = tmp_path / f"plan{weight}.json"
        path.write_text(smoke.to_json())
        out = tmp_path / f"run{weight}"
        main(["--plan", str(path), "--out", str(out), "--export", "", "--stages", "mllm"])
        states.append(load_file(str(out / "model.safetensors")))
        rows = (out / "mllm" / "loss_log.jsonl").read_text().splitlines()
        logs.append(json.loads(rows[-1]))
    plain, diffused = states
    unet = [k for k in plain if k.startswith("decoder.unet.")]
    assert unet and all(torch.equal(plain[k], diffused[k]) for k in unet)
    llm = [k for k in plain if k.startswith("llm.") or k.startswith("output_proj.")]
    assert any(not torch.equal(plain[k], diffused[k]) for k in llm)
    assert "diffusion" not in logs[0] and "diffusion" in logs[1]
