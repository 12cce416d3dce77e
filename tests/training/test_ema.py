"""A stage's moving average of its weights: the finished stage holds the average (the checkpoint
the last step's own weights), the average follows its formula, and a stopped and resumed stage
ends with the same average as a straight run."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from torch import nn

from training.config import StageConfig, TrainingPlan, plan
from training.loop import run_stage
from training.reproduce import main


class _Regression(nn.Module):
    """A linear fit to fixed targets: every step moves the weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        return nn.functional.mse_loss(self.linear(batch["x"]), batch["y"]), {}


def _batch(seen: list[torch.Tensor], objective: _Regression):
    def make(step: int, rank: int, g: torch.Generator, host: None) -> dict[str, torch.Tensor]:
        # the weights a step starts from are those the step before left
        seen.append(objective.linear.weight.detach().clone())
        x = torch.randn(8, 3, generator=g)
        return {"x": x, "y": x[:, :2] * 3 - 1}

    return make


def _fit(cfg: StageConfig, out) -> tuple[_Regression, list[torch.Tensor], torch.Tensor]:
    """Run ``cfg`` on the regression: the objective as the stage left it, the weights each step
    started from, and the checkpoint's last-step weights."""
    objective, seen = _Regression(), []
    run_stage(
        "fit",
        objective,
        lambda s, r: None,
        _batch(seen, objective),
        cfg,
        out,
        Accelerator(cpu=True),
    )
    last = load_file(str(out / "fit" / "checkpoint" / "model.safetensors"))["linear.weight"]
    return objective, seen, last


def test_a_finished_stage_holds_the_moving_average_of_its_weights(tmp_path):
    decay, steps = 0.3, 6
    cfg = StageConfig(steps=steps, batch_size=8, lr=0.1, warmup=1, save_every=100, ema=decay)
    objective, seen, last = _fit(cfg, tmp_path)
    raw = [*seen[1:], last]  # the weights after each step
    # diffusers' EMAModel: the first step copies, then decay min(d, (1 + n) / (10 + n))
    expected = raw[0]
    for n, weights in enumerate(raw[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * weights
    assert torch.allclose(objective.linear.weight.detach(), expected, atol=1e-6)
    assert not torch.allclose(objective.linear.weight.detach(), last, atol=1e-3)


def test_a_stage_without_an_average_ends_on_its_last_step(tmp_path):
    cfg = StageConfig(steps=4, batch_size=8, lr=0.1, warmup=1, save_every=100)
    objective, _, last = _fit(cfg, tmp_path)
    assert torch.equal(objective.linear.weight.detach(), last)


def test_a_plan_refuses_a_decay_outside_0_1():
    with pytest.raises(ValueError, match="ema"):
        StageConfig(steps=1, batch_size=1, lr=1e-3, ema=1.0)


def test_an_averaged_unet_stage_resumes_exactly(tmp_path, keep_threads):
    smoke = plan("smoke")
    averaged = dataclasses.replace(smoke, unet=dataclasses.replace(smoke.unet, ema=0.9))
    path = tmp_path / "ema.json"
    path.write_text(averaged.to_json())
    assert TrainingPlan.from_json(path.read_text()).unet.ema == 0.9
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--plan", str(path), "--export", "", "--stages", "unet"]
    main([*common, "--out", str(straight)])
    main([*common, "--out", str(resumed), "--stop-after", "1"])
    main([*common, "--out", str(resumed)])
    a, b = (load_file(str(run / "model.safetensors")) for run in (straight, resumed))
    raw = load_file(str(straight / "unet" / "checkpoint" / "model.safetensors"))
    unet = [k for k in a if k.startswith("decoder.unet.")]
    assert unet and all(torch.equal(a[k], b[k]) for k in unet)
    # the model holds the average, which is not the last step's weights
    assert any(not torch.equal(a[k], raw[k.removeprefix("decoder.")]) for k in unet)
