"""RecentImages: the last few decoded images by id, read from disk only when not in memory; and
the window's comparison view taking the earlier image from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from desktop.recent_images import RecentImages
from desktop.session import Session
from desktop.window import MainWindow
from engine.api import GenerationSettings, Task


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (8, 6), colour).save(path)
    return path


def test_reads_a_miss_from_disk_then_serves_it_from_memory(tmp_path: Path, qtbot: QtBot) -> None:
    recent = RecentImages(capacity=2)
    red = _png(tmp_path / "red.png", (255, 0, 0))
    image = recent.get(1, red)
    assert (image.width(), image.height()) == (8, 6) and 1 in recent
    red.unlink()
    assert recent.get(1, red).pixelColor(0, 0).red() == 255  # no second read
    missing = recent.get(2, tmp_path / "missing.png")
    assert missing.isNull() and 2 not in recent  # an unreadable file is not remembered
    recent.put(3, QImage())
    assert 3 not in recent


def test_keeps_the_most_recently_used(tmp_path: Path, qtbot: QtBot) -> None:
    recent = RecentImages(capacity=2)
    for image_id in (1, 2):
        recent.put(image_id, QImage(4, 4, QImage.Format.Format_RGB888))
    recent.get(1, tmp_path / "unused.png")  # 1 is now the most recent
    recent.put(3, QImage(4, 4, QImage.Format.Format_RGB888))
    assert 1 in recent and 3 in recent and 2 not in recent
    with pytest.raises(ValueError, match="at least 1"):
        RecentImages(capacity=0)


def test_the_comparison_takes_the_earlier_image_from_memory(
    window: MainWindow, wait_idle: Callable[[Session], None]
) -> None:
    session = window.session
    session.send("a red barn", [], GenerationSettings(seed=1))
    wait_idle(session)
    session.send("make it blue", [], GenerationSettings(seed=2), Task.EDIT)
    wait_idle(session)
    turns = session.turns()
    first, edited = turns[1].images[0], turns[3].images[0]
    assert session.before_image(edited) == first
    assert first.id in window.recent_images and edited.id in window.recent_images
    session.image_path(first).unlink()  # the window no longer needs the file to compare
    window.show_image(edited)
    assert window.canvas.has_before()
    window.recent_images = RecentImages()  # a window that has not shown it must read the file
    window.show_image(edited)
    assert not window.canvas.has_before()
