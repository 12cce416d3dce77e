"""Real multi-process training: 2 CPU processes (gloo) under torchrun, through accelerate.

The replicas must hold identical weights after training, and a run interrupted after one step and
resumed must reproduce the uninterrupted run's loss and weights exactly. The plan is the smoke plan
with self-feeding on, so the no-gradient passes run under DDP too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from training.config import smoke

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def launch(out: Path, plan: Path, *extra: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "training.reproduce",
        "--plan",
        str(plan),
        "--out",
        str(out),
        "--stages",
        "mllm",
        "--export",
        "",
        "--checksum",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "mllm" / "loss_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}


def test_two_processes_stay_identical_and_resume_exactly(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    plan = tmp_path / "plan.json"
    plan.write_text(replace(smoke(), self_feed=1.0, self_feed_passes=2).to_json())
    launch(straight, plan)
    launch(resumed, plan, "--stop-after", "1")
    assert not (resumed / "mllm" / "done.json").exists()
    launch(resumed, plan)
    assert (resumed / "mllm" / "done.json").exists()
    # the replicas of each run agree
    for out in (straight, resumed):
        assert (out / "checksum-0.txt").read_text() == (out / "checksum-1.txt").read_text()
    # the resumed run is the straight run
    assert losses(resumed)[2] == pytest.approx(losses(straight)[2], rel=1e-6)
    assert (resumed / "checksum-0.txt").read_text() == (straight / "checksum-0.txt").read_text()
    log = json.loads((straight / "timings.jsonl").read_text().splitlines()[-1])
    assert log["processes"] == 2
