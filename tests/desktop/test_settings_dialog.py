from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from desktop.fake_engine import FakeEngine
from desktop.paths import BUNDLED_MODEL
from desktop.session import ModelState
from desktop.settings_dialog import SettingsDialog
from desktop.window import MainWindow


def test_verify_names_the_missing_files(window: MainWindow, tmp_path: Path, qtbot: QtBot) -> None:
    folder = tmp_path / "half-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    dialog = window.open_settings()
    qtbot.addWidget(dialog)
    dialog.other.setChecked(True)
    dialog.folder.setText(str(folder))
    with qtbot.waitSignal(window.session.folder_verified, timeout=5000):
        dialog.verify()
    text = dialog.verify_result.text()
    assert "tokenizer.json" in text and "safetensors" in text
    assert dialog.verify_result.property("kind") == "error"
    dialog.folder.setText(str(tmp_path / "nothing-here"))
    with qtbot.waitSignal(window.session.folder_verified, timeout=5000):
        dialog.verify()
    assert "does not exist" in dialog.verify_result.text()
    dialog.reject()


def test_choosing_a_folder_and_runtime_reloads_the_model(
    window: MainWindow, fake_engine: FakeEngine, model_dir: Path, tmp_path: Path, qtbot: QtBot
) -> None:
    other = tmp_path / "other-model"
    other.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (other / name).write_text("{}")
    dialog = window.open_settings()
    qtbot.addWidget(dialog)
    assert dialog.other.isChecked() and dialog.folder.text() == str(model_dir)
    dialog.folder.setText(str(other))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.memory.setCurrentIndex(dialog.memory.findData("low"))
    dialog.accept()
    qtbot.waitUntil(lambda: len(fake_engine.loads) == 2, timeout=5000)
    qtbot.waitUntil(lambda: window.session.model_state == ModelState.READY, timeout=5000)
    folder, runtime = fake_engine.loads[-1]
    assert folder == str(other) and runtime.device == "cpu" and runtime.memory == "low"
    from desktop.app_settings import AppSettings

    stored = AppSettings.load(window.session.db)
    assert stored.model_dir == str(other) and stored.device == "cpu"


def test_onnx_runtime_can_be_chosen_and_is_stored(window: MainWindow, qtbot: QtBot) -> None:
    from desktop.app_settings import AppSettings
    from engine.api import BACKENDS

    dialog = SettingsDialog(window.session, window)
    qtbot.addWidget(dialog)
    offered = [dialog.backend.itemData(i) for i in range(dialog.backend.count())]
    assert offered == list(BACKENDS) and "onnx" in offered
    dialog.backend.setCurrentIndex(dialog.backend.findData("onnx"))
    assert dialog.chosen().backend == "onnx"
    assert dialog.chosen().runtime().backend == "onnx"
    AppSettings(backend="onnx").save(window.session.db)
    assert AppSettings.load(window.session.db).backend == "onnx"


def test_an_installed_app_does_not_offer_compiled(
    window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    dialog = SettingsDialog(window.session, window)
    qtbot.addWidget(dialog)
    offered = [dialog.backend.itemData(i) for i in range(dialog.backend.count())]
    assert offered == ["auto", "eager", "onnx"]  # auto is eager there: nothing compiles


def test_bundled_choice(window: MainWindow, qtbot: QtBot) -> None:
    dialog = SettingsDialog(window.session, window)
    qtbot.addWidget(dialog)
    dialog.bundled.setChecked(True)
    assert not dialog.folder.isEnabled()
    assert dialog.chosen().model_dir == str(BUNDLED_MODEL)


def test_theme_change_applies(window: MainWindow, qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QApplication

    dialog = window.open_settings()
    qtbot.addWidget(dialog)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.accept()
    app = QApplication.instance()
    assert app is not None and app.property("wegen_dark") is True
    assert window.session.settings.theme == "dark"
    from desktop.theme import apply_theme

    assert isinstance(app, QApplication)
    apply_theme(app, "light")


@pytest.mark.slow
def test_engine_verification_of_a_real_folder(tmp_path: Path) -> None:
    """The engine's own check (reads headers: imports torch) names the broken file."""
    testing = pytest.importorskip("engine.testing", reason="engine.testing is not available")
    from desktop.model_folder import verify_model_folder

    folder = testing.make_random_model_folder(tmp_path / "tiny")
    assert verify_model_folder(folder) == []
    (folder / "tokenizer.json").unlink()
    [problem] = verify_model_folder(folder)
    assert "tokenizer.json" in problem
    assert QDialog  # the dialog shows these strings as they are


def test_a_long_verification_error_is_shown_whole(
    window: MainWindow, tmp_path: Path, qtbot: QtBot
) -> None:
    """The red box grows with its text: no first or last line cut off (as with the theme's
    padding and a word-wrapped label in a dialog that was already laid out)."""
    from PySide6.QtWidgets import QApplication

    from desktop.theme import apply_theme

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app, "light")
    try:
        folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3)
        folder.mkdir()
        dialog = window.open_settings()
        qtbot.addWidget(dialog)
        qtbot.waitExposed(dialog)
        dialog.other.setChecked(True)
        dialog.folder.setText(str(folder))
        with qtbot.waitSignal(window.session.folder_verified, timeout=5000):
            dialog.verify()
        label = dialog.verify_result
        assert label.property("kind") == "error" and label.text().count("•") == 3

        def fits() -> bool:
            needed = label.heightForWidth(label.width())
            return (
                label.isVisible()
                and label.height() >= needed
                and dialog.height() >= (dialog.layout().totalHeightForWidth(dialog.width()))
            )

        qtbot.waitUntil(fits, timeout=3000)
        dialog.reject()
    finally:
        app.setStyleSheet("")


def test_memory_shows_what_the_loaded_model_needs_and_what_auto_picks(
    window: MainWindow, qtbot: QtBot
) -> None:
    from dataclasses import replace

    import torch

    from engine.runtime import Runtime, resolve_memory
    from engine.testing import random_model

    model = random_model()
    gpu = Runtime(torch.device("cuda", 0), torch.float16, memory="auto")
    need_low = resolve_memory(gpu, model, free_bytes=2**40)[1].needs[1][1]
    _, advice = resolve_memory(gpu, model, free_bytes=need_low)  # low fits, normal does not
    session = window.session
    qtbot.waitUntil(lambda: session.model_info is not None, timeout=5000)
    assert session.model_info is not None
    session.model_info = replace(session.model_info, memory_advice=advice)
    dialog = SettingsDialog(session, window)
    qtbot.addWidget(dialog)
    offered = [dialog.memory.itemData(i) for i in range(dialog.memory.count())]
    assert offered == ["auto", "normal", "low", "int8"]
    text = dialog.memory_advice.text()
    assert "normal: needs" in text and "does not fit" in text
    assert "low: needs" in text and "auto picks low on cuda:0" in text
    assert "In effect: low." in text and dialog.memory_advice.isVisibleTo(dialog)
    session.model_info = None
    dialog = SettingsDialog(session, window)
    qtbot.addWidget(dialog)
    assert dialog.memory_advice.text().startswith("No model is loaded")
