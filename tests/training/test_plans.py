"""Plans as files, time budgets, batch-rendering workers, the stage-1 check and multi-run cards."""

from __future__ import annotations

import json

import pytest
import torch

from engine.testing import make_random_model_folder
from training.check_decoder import check_decoder
from training.config import PLANS, TrainingPlan, plan
from training.loop import host_batches
from training.model_card import card
from training.reproduce import main, vae_batch
from training.stage1_decoder import render_batch


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_plans_round_trip_through_json(name, tmp_path):
    p = plan(name)
    assert TrainingPlan.from_json(p.to_json()) == p
    path = tmp_path / "plan.json"
    path.write_text(p.to_json())
    assert plan(str(path)) == p


def test_bad_plans_are_named():
    with pytest.raises(ValueError, match="no plan file"):
        plan("missing/plan.json")
    with pytest.raises(ValueError, match="cpu_2h"):
        plan("fast")
    data = json.loads(plan("smoke").to_json()) | {"epochs": 3}
    with pytest.raises(ValueError, match="epochs"):
        TrainingPlan.from_json(json.dumps(data))


def test_workers_render_exactly_the_batches_inline_rendering_gives():
    def host(step, rank):
        return {
            "unet": render_batch(32, 2, "unet", 0, step, rank),
            **vae_batch(32, 16, 2, 16, 8, 0, step, rank),
        }

    steps = range(3, 9)
    inline = list(host_batches(host, steps, rank=1, workers=0))
    ahead = list(host_batches(host, steps, rank=1, workers=2))
    assert len(ahead) == len(steps)
    for a, b in zip(inline, ahead, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    # and each step's batch is its own (not a repeat of another step's)
    assert not torch.equal(inline[0]["unet"], inline[1]["unet"])


def test_time_budget_fits_the_plan_records_it_and_refuses_a_second_fit(tmp_path, keep_threads):
    out = tmp_path / "run"
    args = ["--plan", "smoke", "--out", str(out), "--export", "", "--stages", "vision"]
    main([*args, "--minutes", "0.05"])
    recorded = TrainingPlan.from_json((out / "plan.json").read_text())
    assert recorded.name == "smoke@0.05min"
    assert recorded.vision.batch_size == plan("smoke").vision.batch_size
    rows = [json.loads(r) for r in (out / "vision" / "loss_log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == recorded.vision.steps
    assert not (out / "budget-probe").exists()
    with pytest.raises(SystemExit, match="already holds a run"):
        main([*args, "--minutes", "0.05"])
    # resuming with another plan is refused; with the recorded plan it is a no-op
    with pytest.raises(SystemExit, match="plan.json"):
        main(["--plan", "cpu_2h", *args[2:]])
    main(["--plan", str(out / "plan.json"), *args[2:]])
    assert len((out / "vision" / "loss_log.jsonl").read_text().splitlines()) == len(rows)


def test_card_lists_every_run_and_its_history(tmp_path, keep_threads):
    first, second = tmp_path / "first", tmp_path / "second"
    main(["--plan", "smoke", "--out", str(first), "--export", "", "--stages", "vision"])
    main(["--plan", "smoke", "--out", str(second), "--export", "", "--stages", "mllm"])
    folder = make_random_model_folder(tmp_path / "model")
    text = card([first, second], None, folder, history="Run *second* continues *first*.")
    assert "Run *second* continues *first*." in text
    assert "| first (smoke) | 0 · vision tower" in text
    assert "| second (smoke) | 2 · LLM + projectors" in text
    assert "first (smoke) | 2 · LLM" not in text  # a run lists only the stages it trained


def test_check_decoder_scores_shares_of_heldout_scenes(tmp_path, keep_threads):
    from engine.folder import load_model_folder
    from engine.runtime import Runtime

    folder = make_random_model_folder(tmp_path / "model")
    model, _ = load_model_folder(folder, Runtime(torch.device("cpu"), torch.float32))
    result = check_decoder(model.eval(), n=3, batch=2)
    assert result["n"] == 3
    for key in ("ceiling", "vae", "detokenizer"):
        assert 0.0 <= result[key] <= 1.0
    assert result["ceiling"] >= 2 / 3  # the judge reads clean renders
    assert result["detokenizer"] == 0.0  # random weights draw nothing it can read


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_unet_objective_learns_either_prediction_type(prediction, keep_threads):
    import dataclasses

    from engine.config import wegen_tiny
    from engine.model import WeGenModel
    from training.stage1_decoder import UNetObjective, make_unet_batch

    torch.manual_seed(0)
    config = wegen_tiny()
    config = config.replace(
        scheduler=dataclasses.replace(config.scheduler, prediction_type=prediction)
    )
    model = WeGenModel(config)
    objective = UNetObjective(model.decoder)
    pixels = render_batch(config.decoder.image_size, 2, "unet", 0, 0, 0)
    batch = make_unet_batch(
        model.decoder, model.vision, pixels, torch.Generator().manual_seed(0), 0.1, 0.0
    )
    optimizer = torch.optim.AdamW(objective.unet.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):  # the same batch: the loss must fall
        loss, _ = objective(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
    # and the engine samples with the trained prediction type
    images = model.decoder.sample(
        batch["features"][:1], seeds=[0], steps=2, guidance=2.0, size=64
    )
    assert images.shape == (1, 3, 64, 64) and torch.isfinite(images).all()
