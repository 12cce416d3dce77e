"""The one command: every stage (smoke plan), export to a loadable model folder, model card."""

from __future__ import annotations

import json

import torch

from engine import api
from engine.chat_engine import WeGenEngine
from training.config import STAGES
from training.model_card import card
from training.reproduce import main


def test_smoke_plan_resumes_every_stage_exports_and_skips_finished_stages(tmp_path):
    out, folder = tmp_path / "run", tmp_path / "model"
    threads = torch.get_num_threads()
    try:
        # interrupted everywhere after one step, then one stage finished on its own, then the
        # rest resumed in a process where that stage is skipped: each checkpoint must still
        # restore its own stage's objective
        main(["--plan", "smoke", "--out", str(out), "--export", "", "--stop-after", "1"])
        main(["--plan", "smoke", "--out", str(out), "--export", "", "--stages", "vision"])
        main(["--plan", "smoke", "--out", str(out), "--export", str(folder)])
    finally:
        torch.set_num_threads(threads)
    for stage in STAGES:
        assert (out / stage / "done.json").is_file(), stage
        rows = (out / stage / "loss_log.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in rows] == [1, 2]
    scale = json.loads((out / "vae" / "scale.json").read_text())["scaling_factor"]
    engine = WeGenEngine()
    info = engine.load(str(folder), api.RuntimeRequest(device="cpu"))
    assert info.name == "wegen-tiny"
    assert abs(engine.model.config.vae.scaling_factor - scale) < 1e-6
    events = []
    engine.run(
        api.Request(
            api.Turn.user("a red circle"),
            task=api.Task.GENERATE,
            settings=api.GenerationSettings(seed=0, steps=1, max_new_tokens=4),
        ),
        events.append,
    )
    assert isinstance(events[-1], api.Finished)
    # a second run finds every stage done and trains nothing
    before = {s: (out / s / "loss_log.jsonl").read_text() for s in STAGES}
    main(["--plan", "smoke", "--out", str(out), "--export", ""])
    assert before == {s: (out / s / "loss_log.jsonl").read_text() for s in STAGES}
    text = card([out], None, folder)
    assert "| run (smoke) | 2 · LLM + projectors, every task | 2 × 2 |" in text
    assert "MB (float16" in text and "CPU threads" in text
