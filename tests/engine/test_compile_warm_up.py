"""The compiled backend compiles at load, not in the first turn, and a later launch reads what it
compiled from the user's cache instead of compiling again (engine.caches)."""

from __future__ import annotations

import threading

import pytest
import torch
from torch._dynamo.utils import counters

from engine import api
from engine.chat_engine import WARM_UP_STEP, WeGenEngine


@pytest.mark.slow
def test_warm_up_compiles_at_load_and_a_second_launch_reads_the_cache(
    model_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv("WEGEN_CACHE", str(tmp_path))
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # set by an earlier compile
        monkeypatch.delenv(name, raising=False)
    request = api.RuntimeRequest(device="cpu", backend="compiled")
    torch._dynamo.reset()
    counters.clear()

    steps: list[str] = []
    engine = WeGenEngine()
    info = engine.load(str(model_folder), request, lambda _d, _t, what: steps.append(what))
    assert steps == [WARM_UP_STEP]
    assert info.warm_up_seconds is not None and info.warm_up_seconds > 0
    assert counters["inductor"]["fxgraph_cache_miss"] >= 1
    compiled_dir = tmp_path / "compile" / "inductor"
    assert (compiled_dir / "fxgraph").is_dir(), "the compiled graphs are not in the user's cache"

    # the user's first turn (other prompt, seed and step count) compiles nothing more
    graphs = counters["stats"]["unique_graphs"]
    events: list[api.Event] = []
    turn = api.Request(
        api.Turn.user("a blue square at the top"),
        settings=api.GenerationSettings(seed=3, steps=3, max_new_tokens=4),
    )
    engine.run(turn, events.append, threading.Event())
    assert isinstance(events[-1], api.Finished), events[-1]
    assert counters["stats"]["unique_graphs"] == graphs

    # a second launch (nothing compiled in memory) finds the graphs on disk
    torch._dynamo.reset()
    counters.clear()
    again = WeGenEngine().load(str(model_folder), request)
    assert counters["inductor"]["fxgraph_cache_hit"] >= 1
    assert counters["inductor"]["fxgraph_cache_miss"] == 0
    assert again.warm_up_seconds is not None
    torch._dynamo.reset()
