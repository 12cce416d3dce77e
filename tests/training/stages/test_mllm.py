"""Stage 2's batches and objective: teacher forcing, and self-feeding (scheduled sampling)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from engine.template import NUM_IMAGE_TOKENS
from engine.testing import random_model, tiny_tokenizer
from training.config import TrainingPlan, cpu_2h
from training.data.tasks import plan_sample
from training.stages.mllm import (
    MLLMObjective,
    collate,
    encode_sample,
    lm_loss,
    whole_batch_fed_features,
)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = random_model()
    tok = tiny_tokenizer()
    rng = random.Random(3)
    size = model.config.vision.image_size
    samples = [plan_sample(kind, rng, "train").rendered(size) for kind in ("t2i", "edit", "vqa")]
    encoded = [encode_sample(tok, s) for s in samples]
    g = torch.Generator().manual_seed(1)
    dim = model.config.feature_dim
    features = [torch.randn(len(s.images), NUM_IMAGE_TOKENS, dim, generator=g) for s in samples]
    return model, tok, encoded, features


def batch_of(setup, self_feed: float, noise: float = 0.0, seed: int = 0):
    _, tok, encoded, features = setup
    return collate(tok, encoded, features, torch.Generator().manual_seed(seed), noise, self_feed)


def test_regression_rows_name_the_slots_their_targets_fill(setup):
    batch = batch_of(setup, 0.0)
    n_targets = sum(sum(e.targets) for e in setup[2])
    assert n_targets >= 2  # the t2i reply and the edit's result
    assert len(batch["reg_slots"]) == n_targets * NUM_IMAGE_TOKENS
    # without noise, the features at each target slot are exactly its regression target
    assert torch.equal(batch["slot_features"][batch["reg_slots"]], batch["reg_targets"])
    # the hidden state that predicts a slot is the position just before it, in the same row
    flat = torch.nonzero(batch["image_mask"])  # (rows, cols) of every slot, in slot order
    slot_pos = flat[batch["reg_slots"]]
    assert torch.equal(slot_pos[:, 0], batch["reg_rows"])
    assert torch.equal(slot_pos[:, 1] - 1, batch["reg_cols"])
    assert not batch["reg_fed"].any()


def test_self_feeding_is_drawn_per_whole_image_and_off_by_default(setup):
    assert batch_of(setup, 1.0)["reg_fed"].all()
    shares = []
    for seed in range(40):
        fed = batch_of(setup, 0.5, seed=seed)["reg_fed"].view(-1, NUM_IMAGE_TOKENS)
        assert (fed.all(1) | ~fed.any(1)).all()  # an image is fed whole or not at all
        shares.append(fed[:, 0].float().mean())
    assert 0.3 < float(torch.stack(shares).mean()) < 0.7
    # probability 0 draws nothing, so the noise of a plan without self-feeding is unchanged
    _, tok, encoded, features = setup
    old = collate(tok, encoded, features, torch.Generator().manual_seed(0), 0.1)
    assert torch.equal(old["slot_features"], batch_of(setup, 0.0, noise=0.1)["slot_features"])


def free_running(model, batch, upto: int) -> torch.Tensor:
    """The reference for the first ``upto`` slots of every target image: slot by slot, each reads
    output_proj of the hidden state before it, computed from the slots already filled (what the
    engine's token loop does)."""
    feats = batch["slot_features"].clone()
    with torch.no_grad():
        for k in range(upto):
            step = torch.arange(len(batch["reg_slots"])) % NUM_IMAGE_TOKENS == k
            hidden, _ = model(model.embed(batch["ids"], feats, batch["image_mask"]))
            pred = model.output_proj(hidden[batch["reg_rows"][step], batch["reg_cols"][step]])
            feats[batch["reg_slots"][step]] = pred
    return feats


def test_each_pass_makes_one_more_slot_exactly_free_running(setup):
    """So ``self_feed_passes=64`` is free-running generation exactly (and a few passes nearly)."""
    model, tok, encoded, features = setup
    batch = collate(tok, encoded[:1], features[:1], torch.Generator(), 0.0, 1.0)  # the t2i sample
    shape = (-1, NUM_IMAGE_TOKENS, model.config.feature_dim)
    reference = free_running(model, batch, 4)[batch["reg_slots"]].view(shape)
    for passes in (1, 3):
        fed = MLLMObjective(model, self_feed_passes=passes).fed_features(batch)
        fed = fed[batch["reg_slots"]].view(shape)
        torch.testing.assert_close(fed[:, :passes], reference[:, :passes], atol=1e-5, rtol=1e-4)
        # the next slot still reads an earlier pass's guess
        assert (fed[:, passes] - reference[:, passes]).abs().max() > 1e-3
    # slots of images that are not self-fed keep their (teacher-forcing) features
    half = batch_of(setup, 0.0)
    half["reg_fed"][:NUM_IMAGE_TOKENS] = True
    fed = MLLMObjective(model, self_feed_passes=2).fed_features(half)
    kept = half["reg_slots"][NUM_IMAGE_TOKENS:]
    assert torch.equal(fed[kept], half["slot_features"][kept])
    assert not torch.equal(
        fed[half["reg_slots"][:NUM_IMAGE_TOKENS]], half["reg_targets"][:NUM_IMAGE_TOKENS]
    )


@pytest.mark.parametrize("fed", ["all", "edit only", "none"])
def test_passes_run_on_the_self_fed_rows_alone_and_match_the_whole_batch(setup, fed):
    """The passes skip rows without a self-fed image (the VQA sample) and positions after the
    last self-fed slot, and give what passes over the whole batch give."""
    model = setup[0]
    batch = batch_of(setup, 0.0 if fed == "none" else 1.0, noise=0.1)
    if fed == "edit only":
        t2i_row = batch["reg_rows"][0]
        batch["reg_fed"] = batch["reg_rows"] != t2i_row
        assert batch["reg_fed"].any() and not batch["reg_fed"].all()
    got = MLLMObjective(model, self_feed_passes=3).fed_features(batch)
    want = whole_batch_fed_features(model, batch, 3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    changed = (got != batch["slot_features"]).any(-1)
    assert torch.equal(
        changed.nonzero().flatten().sort().values,
        batch["reg_slots"][batch["reg_fed"]].sort().values,
    )


def test_self_fed_slots_change_the_loss_and_gradients_reach_both_projectors(setup):
    model = random_model()
    model.train().requires_grad_(True)
    with torch.no_grad():
        teacher = MLLMObjective(model)(batch_of(setup, 0.0))[1]
    loss, logs = MLLMObjective(model, self_feed_passes=2)(batch_of(setup, 1.0))
    loss.backward()
    assert float(logs["mse"].detach()) != pytest.approx(float(teacher["mse"]))
    grads = [p.grad for p in model.output_proj.parameters()] + [model.input_proj.weight.grad]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_plans_carry_self_feeding_and_refuse_nonsense():
    plan = cpu_2h()
    assert plan.self_feed == 0.0 and plan.self_feed_passes == 1
    fed = replace(plan, self_feed=0.5, self_feed_passes=4)
    assert TrainingPlan.from_json(fed.to_json()) == fed
    with pytest.raises(ValueError, match="probability"):
        replace(plan, self_feed=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        replace(plan, self_feed_passes=0)
    with pytest.raises(ValueError, match="negative"):
        MLLMObjective(random_model(), self_feed_passes=-1)


def test_a_batch_with_nothing_to_feed_runs_its_passes_and_trains_as_before(setup):
    """Every process runs the same passes (sharded parameters are gathered in each forward), and
    a batch with no generated image, or none drawn, has the teacher-forcing loss."""
    model, tok, _, _ = setup
    rng, size = random.Random(0), model.config.vision.image_size
    # VQA about an attached image: an image, but not a target
    question = next(
        s
        for s in (plan_sample("vqa", rng, "train") for _ in range(100))
        if s.specs and not any(s.targets)
    ).rendered(size)
    features = torch.randn(len(question.images), NUM_IMAGE_TOKENS, model.config.feature_dim)
    g = torch.Generator()
    for batch in (
        collate(tok, [encode_sample(tok, question)], [features], g, 0.0, 1.0),
        batch_of(setup, 0.0),  # targets, none drawn
    ):
        with torch.no_grad():
            plain = MLLMObjective(model)(batch)[0]
            fed = MLLMObjective(model, self_feed_passes=2)(batch)[0]
        assert torch.equal(plain, fed)


def test_lm_loss_weighs_samples_by_their_length_as_asked():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 12, 9, generator=g)
    labels = torch.randint(0, 9, (4, 12), generator=g)
    labels[:, :3] = -100  # prompts
    labels[0, 5:] = -100  # a two-token answer beside ten-, nine-token ones
    labels[2, 7:] = -100
    labels[3] = -100  # a sample with nothing to learn is left out, not a zero
    per_sample = [
        torch.nn.functional.cross_entropy(logits[b, :-1], labels[b, 1:], ignore_index=-100)
        for b in range(3)
    ]
    counts = [int((labels[b, 1:] != -100).sum()) for b in range(3)]
    flat = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
    )
    assert torch.equal(lm_loss(logits, labels), flat)  # the default: the plain token mean
    assert torch.allclose(lm_loss(logits, labels, 1.0), torch.stack(per_sample).mean())
    w = [c**0.5 for c in counts]  # square averaging: sum of n * mean * n^-0.5, over sum of n^0.5
    square = sum(wi * li for wi, li in zip(w, per_sample, strict=True)) / sum(w)
    assert torch.allclose(lm_loss(logits, labels, 0.5), square)
    assert torch.allclose(lm_loss(logits, labels, 1e-9), flat)


def test_the_length_power_reaches_the_objective_and_the_plan(setup):
    model = random_model()
    batch = batch_of(setup, 0.0)
    with torch.no_grad():
        token_mean = MLLMObjective(model)(batch)[1]["lm"]
        per_sample = MLLMObjective(model, lm_length_power=1.0)(batch)[1]["lm"]
    assert float(per_sample) != pytest.approx(float(token_mean))
    plan = replace(cpu_2h(), lm_length_power=0.5)
    assert cpu_2h().lm_length_power == 0.0
    assert TrainingPlan.from_json(plan.to_json()) == plan
    with pytest.raises(ValueError, match="lm_length_power"):
        replace(plan, lm_length_power=1.5)
