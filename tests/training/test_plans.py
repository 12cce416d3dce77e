"""Plans as files, time budgets, batch-rendering workers, the stage-1 check and multi-run cards."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from engine.testing import make_random_model_folder
from training.checks.decoder import check_decoder, vae_ceilings
from training.config import PLANS, TrainingPlan, plan
from training.loop import host_batches
from training.model_card import card
from training.reproduce import main
from training.stages.decoder import render_batch, vae_batch


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
    assert 0.0 < result["vae_psnr"] < 30.0 and 0.0 < result["detokenizer_psnr"] < 30.0
    text = card([], None, folder, checks={"decoder": result})
    assert f"| whole scene | {result['vae']:.2f} | 0.00 |" in text
    assert f"| PSNR (dB) | {result['vae_psnr']:.1f} |" in text
    assert "through the VAE" not in text  # no ceilings asked for


def test_vae_ceilings_score_true_answers_as_they_are_and_through_the_vae(keep_threads):
    from engine.bundled import BUNDLED_DIR
    from engine.folder import load_model_folder
    from engine.runtime import Runtime
    from training.evaluation import CAPABILITIES, heldout_samples

    model, _ = load_model_folder(BUNDLED_DIR, Runtime(torch.device("cpu"), torch.float32))
    ceilings = vae_ceilings(model.eval(), n=2, seed=1, drawn=True)
    drawn = [c for c in CAPABILITIES if c.name != "vqa" and c.reads_pixels]
    image_metrics = [m for c in drawn for m in c.metrics]
    assert list(ceilings) == image_metrics  # every metric scored on an image, none on text
    # "truth" is the judge ceiling wegen-eval computes from the same samples
    (t2i,) = [c for c in CAPABILITIES if c.name == "t2i_single"]
    samples = [s for _, s in heldout_samples(t2i.kind, 2, 1, t2i.accept, 128)]
    assert (
        ceilings["t2i_single"]["truth"]
        == sum(t2i.score(s, t2i.oracle(s))["t2i_single"] for s in samples) / 2
    )
    # the trained VAE keeps most pixels of a clean image: restoration gains through it
    assert ceilings["restoration_psnr_gain_db"]["vae"] > 0
    assert all(0 <= row["vae"] <= 1 for m, row in ceilings.items() if "psnr" not in m)
    # --drawn: each true answer drawn again from its own features, scored the same way
    assert all(set(row) == {"truth", "vae", "detokenizer"} for row in ceilings.values())
    assert all(0 <= row["detokenizer"] <= 1 for m, row in ceilings.items() if "psnr" not in m)
    # 64 features are not the pixels: a restoration drawn from them is far from the clean image
    gain = ceilings["restoration_psnr_gain_db"]
    assert gain["detokenizer"] < gain["vae"]
    # images go through the model in batches: one at a time reads the same
    single = vae_ceilings(model, n=2, seed=1, drawn=True, batch=1)
    assert single.keys() == ceilings.keys()
    for metric, row in single.items():
        assert row["truth"] == ceilings[metric]["truth"], metric
        assert row["vae"] == pytest.approx(ceilings[metric]["vae"], abs=0.01), metric
    folder = BUNDLED_DIR
    text = card([], None, folder, checks={"decoder": {**_decoder_stub(), "ceilings": ceilings}})
    row = ceilings["t2i_single"]
    above = "yes" if row["vae"] < 0.9 else "no"
    assert (
        f"| t2i_single | >= 0.9 | {row['truth']:.2f} | {row['vae']:.2f} | {above} | "
        f"{row['detokenizer']:.2f} |" in text
    )
    assert "drawn from its true features |" in text


def _decoder_stub():
    return {
        "n": 2,
        "vae": 0.5,
        "detokenizer": 0.0,
        "vae_attributes": {},
        "detokenizer_attributes": {},
    }


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_unet_objective_learns_either_prediction_type(prediction, keep_threads):
    import dataclasses

    from engine.config import wegen_tiny
    from engine.model import WeGenModel
    from training.stages.decoder import UNetObjective, make_unet_batch

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
    for _ in range(20):  # the same batch: the loss must fall
        loss, _ = objective(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
    # and the engine samples with the trained prediction type
    images = model.decoder.sample(batch["features"][:1], seeds=[0], steps=2, guidance=2.0, size=64)
    assert images.shape == (1, 3, 64, 64) and torch.isfinite(images).all()


def test_a_budget_cut_scales_every_stage_but_stage_zero():
    from training.reproduce import budget_steps

    gpu = plan("gpu")
    per_step = {"vision": 0.02, "vae": 0.05, "unet": 0.1, "mllm": 0.2, "sft": 0.2}

    def seconds(p: TrainingPlan) -> float:
        return sum(p.stage(s).steps * t for s, t in per_step.items())

    full = seconds(gpu)
    cut = budget_steps(gpu, per_step, full / 10)
    assert cut.vision == gpu.vision  # the features every later stage reads are not cut
    assert cut.unet.steps < gpu.unet.steps / 10  # the others pay for it, in the same ratio
    assert cut.mllm.steps / cut.unet.steps == pytest.approx(gpu.mllm.steps / gpu.unet.steps, 0.01)
    assert seconds(cut) == pytest.approx(full / 10, rel=0.01)
    # a budget stage 0 alone would mostly fill: one factor for all
    tight = budget_steps(gpu, per_step, 1.5 * gpu.vision.steps * per_step["vision"])
    assert tight.vision.steps < gpu.vision.steps
    assert tight.unet.steps / tight.vision.steps == pytest.approx(
        gpu.unet.steps / gpu.vision.steps, 0.02
    )
    # more time than the plan needs: every stage grows, stage 0 too
    grown = budget_steps(gpu, per_step, 2 * full)
    assert grown.vision.steps == 2 * gpu.vision.steps and grown.sft.steps == 2 * gpu.sft.steps


def test_a_decoder_only_vae_run_keeps_the_encoder_and_its_latent_scale(tmp_path, keep_threads):
    import shutil

    from safetensors.torch import load_file

    first, second = tmp_path / "first", tmp_path / "second"
    main(["--plan", "smoke", "--out", str(first), "--export", "", "--stages", "vae"])
    second.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        shutil.copy(first / name, second / name)
    sharpen = dataclasses.replace(plan("smoke"), name="sharpen", vae_decoder_only=True, seed=1)
    (second / "plan.json").write_text(sharpen.to_json())
    main(
        [
            "--plan",
            str(second / "plan.json"),
            "--out",
            str(second),
            "--export",
            "",
            "--stages",
            "vae",
        ]
    )
    before, after = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    vae = "decoder.vae."
    encoder = [k for k in before if k.startswith((vae + "encoder.", vae + "quant_conv."))]
    decoder = [k for k in before if k.startswith(vae + "decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    scale = json.loads((second / "vae" / "scale.json").read_text())["scaling_factor"]
    assert scale == json.loads((first / "vae" / "scale.json").read_text())["scaling_factor"]
    text = card([first, second], None, make_random_model_folder(tmp_path / "model"))
    assert "| first (smoke) | 1a · VAE |" in text
    assert "| second (sharpen) | 1a · VAE decoder (encoder frozen) |" in text
