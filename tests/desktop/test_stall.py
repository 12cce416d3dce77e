"""The GUI event loop keeps running while the engine generates: generation happens on the
worker thread, and every kind of event (text, token progress, a preview every step, the saved
image) reaches the window without blocking it for the length of a turn.

How long the loop stalls at worst is a speed, measured by `benchmarks/gui_stall.py` against an
idle window in the same run; here only the behaviour is checked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from pytestqt.qtbot import QtBot

from desktop.fake_engine import FakeEngine
from desktop.session import Session
from desktop.stall_meter import StallMeter
from desktop.window import MainWindow
from engine.api import GenerationSettings

TURNS = 3


def test_event_loop_runs_during_every_turn(
    window: MainWindow,
    fake_engine: FakeEngine,
    qtbot: QtBot,
    wait_idle: Callable[[Session], None],
    stall_meter: StallMeter,
) -> None:
    fake_engine.step_delay = 0.003
    fake_engine.steps = 30
    fake_engine.image_size = 512
    ticks_while_running: Counter[int] = Counter()  # turn number -> GUI ticks while it ran

    def during_turn() -> None:
        if fake_engine.running.is_set():
            ticks_while_running[len(fake_engine.requests)] += 1

    stall_meter.timer.timeout.connect(during_turn)
    previews: list[int] = []
    window.session.preview.connect(lambda turn_id, _image: previews.append(turn_id))
    stall_meter.start()
    for i in range(TURNS):
        window.session.send(f"picture {i}", [], GenerationSettings(seed=i))
    wait_idle(window.session, 20_000)
    worst = stall_meter.stop()
    print(
        f"\nworst event-loop gap (fake engine, 512 px, {TURNS} turns): {worst * 1000:.1f} ms, "
        f"ticks while each turn ran: {dict(ticks_while_running)}"
    )
    assert len(fake_engine.requests) == TURNS
    assert len(previews) == TURNS * fake_engine.steps
    # A turn takes over 100 ms; on the GUI thread it would get no tick at all.
    for turn in range(1, TURNS + 1):
        assert ticks_while_running[turn] >= 3, ticks_while_running
    replies = [turn for turn in window.session.turns() if turn.role == "assistant"]
    assert [turn.status for turn in replies] == ["done"] * TURNS


def test_stall_meter_reports_the_worst_gap_and_nearest_rank_percentiles(
    qtbot: QtBot, stall_meter: StallMeter
) -> None:
    assert (stall_meter.worst, stall_meter.percentile(99), stall_meter.ticks) == (0.0, 0.0, 0)
    stall_meter.start()
    qtbot.waitUntil(lambda: stall_meter.ticks >= 3, timeout=5000)
    stall_meter.stop()
    assert all(gap > 0 for gap in stall_meter.gaps)
    stall_meter.gaps = [0.005 * k for k in range(1, 101)]  # 5 ms … 500 ms
    assert stall_meter.worst == stall_meter.percentile(100) == 0.5
    assert stall_meter.percentile(50) == 0.25 and stall_meter.percentile(99) == 0.495
    assert stall_meter.percentile(0) == 0.005
    stall_meter.start()
    assert stall_meter.gaps == []
