"""Screenshots of the main window with a generated image, for people to look at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop.fake_engine import FakeEngine
from desktop.session import Session
from desktop.theme import apply_theme
from desktop.window import MainWindow

Wait = Callable[[Session], None]


def test_main_window_screenshot(
    window: MainWindow,
    fake_engine: FakeEngine,
    qtbot: QtBot,
    wait_idle: Wait,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    fake_engine.reply_text = "Here is a fox in the snow. Ask me to change anything."
    photo = tmp_path / "old-photo.png"
    FakeEngine().images  # noqa: B018 (documentation: the fake draws real pictures)
    from desktop.fake_engine import scene

    scene("a faded photo", 3, 96).save(photo)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window.session.new_conversation()
        window.composer.edit.setPlainText("a red fox in the snow, watercolour")
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        wait_idle(window.session)
        window.composer.add_files([str(photo)])
        window.composer.edit.setPlainText("now restore this photo")
        window.composer.set_task(window.composer.task)
        from engine.api import Task

        window.composer.set_task(Task.RESTORE)
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        wait_idle(window.session)
        window.compare_button.click()
        window.composer.edit.setPlainText("make it night, keep the fox")
        qtbot.wait(50)
        path = artifacts / f"main_window_{theme}.png"
        assert window.grab().save(str(path))
        with Image.open(path) as shot:
            assert shot.size[0] >= 1000 and shot.size[1] >= 700
        window.compare_button.click()
    apply_theme(app, "light")
