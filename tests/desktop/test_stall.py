"""The GUI event loop never stalls more than 50 ms while generating (fake engine: fast, every
event kind, previews every step)."""

from __future__ import annotations

from collections.abc import Callable

from pytestqt.qtbot import QtBot

from desktop.fake_engine import FakeEngine
from desktop.session import Session
from desktop.window import MainWindow
from engine.api import GenerationSettings

STALL_LIMIT_S = 0.050


def test_event_loop_stays_responsive_with_the_fake_engine(
    window: MainWindow,
    fake_engine: FakeEngine,
    qtbot: QtBot,
    wait_idle: Callable[[Session], None],
    stall_meter,  # type: ignore[no-untyped-def]
) -> None:
    fake_engine.step_delay = 0.002
    fake_engine.steps = 30
    fake_engine.image_size = 512
    stall_meter.start()
    for i in range(3):
        window.session.send(f"picture {i}", [], GenerationSettings(seed=i))
    wait_idle(window.session, 20_000)
    worst = stall_meter.stop()
    print(
        f"\nworst event-loop stall (fake engine, 512 px, 3 turns): {worst * 1000:.1f} ms "
        f"over {stall_meter.ticks} ticks"
    )
    assert stall_meter.ticks > 20
    assert worst < STALL_LIMIT_S
