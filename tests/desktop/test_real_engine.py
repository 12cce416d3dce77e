"""One end-to-end turn through the window on the real engine with a tiny random model; the event
loop keeps running while it loads and generates (its worst gap is written to test-artifacts/). Skipped until the engine provides
``engine.chat_engine`` and ``engine.testing.make_random_model_folder``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop.app_settings import AppSettings
from desktop.database import Database
from desktop.session import ModelState, Session
from desktop.stall_meter import StallMeter
from desktop.window import MainWindow
from engine.api import TRAINED_ALGORITHMIC_MEDIA, GenerationSettings, Task, read_png_metadata


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("engine.chat_engine", reason="the real engine is not there yet")
    testing = pytest.importorskip("engine.testing", reason="engine.testing is not there yet")
    if not hasattr(testing, "make_random_model_folder"):
        pytest.skip("engine.testing.make_random_model_folder is not there yet")
    return Path(testing.make_random_model_folder(tmp_path_factory.mktemp("model") / "tiny"))


@pytest.mark.slow
def test_one_turn_on_the_real_tiny_engine(
    tiny_model: Path,
    data_dir: Path,
    qtbot: QtBot,
    stall_meter: StallMeter,
    artifacts: Path,
) -> None:
    db = Database(data_dir)
    AppSettings(model_dir=str(tiny_model), device="cpu").save(db)
    session = Session(db)  # the default factory: engine.chat_engine.WeGenEngine
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    stall_meter.start()
    session.start()
    try:
        qtbot.waitUntil(
            lambda: (
                session.model_state != ModelState.LOADING and session.model_state != ModelState.NONE
            ),
            timeout=120_000,
        )
        assert session.model_state == ModelState.READY, session.model_message
        loading_worst = stall_meter.stop()
        print(
            f"\nworst event-loop stall while the worker imported torch and loaded the model: "
            f"{loading_worst * 1000:.1f} ms"
        )
        assert stall_meter.ticks >= 5  # the worker loaded torch and the model, not the GUI
        assert window.composer.size_box.isEnabled()  # the model allows several sizes
        steps: list[int] = []
        session.progress.connect(
            lambda _t, phase, done, _n: steps.append(done) if phase == "denoise" else None
        )
        stall_meter.start()
        reply = session.send(
            "a red circle", [], GenerationSettings(seed=1, steps=3, max_new_tokens=8), Task.GENERATE
        )
        assert reply is not None
        qtbot.waitUntil(lambda: not session.is_busy(), timeout=120_000)
        worst = stall_meter.stop()
        print(
            f"\nworst event-loop stall (real tiny engine, CPU): {worst * 1000:.1f} ms over "
            f"{stall_meter.ticks} ticks"
        )
        (artifacts / "stall_real_engine.txt").write_text(
            f"generating: {worst * 1000:.1f} ms\nloading: {loading_worst * 1000:.1f} ms\n"
        )

        turn = session.db.turn(reply.id)
        assert turn is not None and turn.status == "done", turn and turn.error
        [image] = turn.images
        assert (image.width, image.height) == (128, 128)
        assert steps == [1, 2, 3]
        meta = read_png_metadata(session.image_path(image))
        assert meta.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
        assert meta.wegen is not None and meta.wegen["model"] == "wegen-tiny"
        assert window.canvas.image() is not None
        window.grab().save(str(artifacts / "main_window_real_engine.png"))
        assert stall_meter.ticks >= 5  # the turn ran on the worker thread
    finally:
        session.shutdown()
        db.close()
