from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from desktop.canvas import ImageCanvas


def solid(width: int, height: int, colour: str) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB888)
    image.fill(QColor(colour))
    return image


@pytest.fixture
def canvas(qtbot: QtBot) -> ImageCanvas:
    widget = ImageCanvas()
    qtbot.addWidget(widget)
    widget.resize(600, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_empty_canvas_shows_help(canvas: ImageCanvas) -> None:
    assert canvas.image() is None
    assert "Your images appear here" in canvas._empty_text
    canvas.grab()  # paints without error


def test_fit_scales_to_the_view(canvas: ImageCanvas) -> None:
    canvas.set_image(solid(128, 64, "red"))
    assert canvas.is_fit
    rect = canvas.image_rect()
    assert rect.width() / rect.height() == pytest.approx(2.0)
    assert rect.width() == pytest.approx(600 - 32)
    canvas.resize(300, 420)
    assert canvas.image_rect().width() == pytest.approx(300 - 32)


def test_actual_size_zoom_and_pan(canvas: ImageCanvas, qtbot: QtBot) -> None:
    canvas.set_image(solid(100, 100, "blue"))
    canvas.actual_size()
    assert not canvas.is_fit and canvas.scale() == pytest.approx(1.0)
    assert canvas.image_rect().center() == QPointF(300, 210)
    canvas.zoom_in()
    assert canvas.scale() == pytest.approx(1.25)
    assert canvas.image_rect().center().x() == pytest.approx(300)  # zooms about the centre
    canvas.zoom_out()
    canvas.zoom_out()
    assert canvas.scale() == pytest.approx(0.8)
    before = canvas.image_rect().topLeft()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(300, 210))
    qtbot.mouseMove(canvas, QPoint(340, 230))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(340, 230))
    assert canvas.image_rect().topLeft() - before == QPointF(40, 20)
    canvas.fit()
    assert canvas.is_fit


def test_zoom_is_clamped(canvas: ImageCanvas) -> None:
    canvas.set_image(solid(10, 10, "blue"))
    canvas.zoom_to(1000)
    assert canvas.scale() == pytest.approx(32)
    canvas.zoom_to(0.0001)
    assert canvas.scale() == pytest.approx(0.05)


def test_before_after_comparison(canvas: ImageCanvas, qtbot: QtBot) -> None:
    with qtbot.waitSignal(canvas.compare_available) as available:
        canvas.set_image(solid(100, 100, "#00ff00"), before=solid(100, 100, "#ff0000"))
    assert available.args == [True]
    canvas.set_compare(True)
    rect = canvas.image_rect()
    y = int(rect.center().y())
    shot = canvas.grab().toImage()
    ratio = shot.width() / canvas.width()
    left = shot.pixelColor(int((rect.left() + rect.width() * 0.25) * ratio), int(y * ratio))
    right = shot.pixelColor(int((rect.left() + rect.width() * 0.75) * ratio), int(y * ratio))
    assert (left.red(), left.green()) == (255, 0)  # before on the left of the divider
    assert (right.red(), right.green()) == (0, 255)
    # drag the divider to 80 %
    split_x = int(rect.left() + rect.width() * 0.5)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(split_x, y))
    qtbot.mouseMove(canvas, QPoint(int(rect.left() + rect.width() * 0.8), y))
    qtbot.mouseRelease(
        canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.left() + rect.width() * 0.8), y)
    )
    assert canvas.split == pytest.approx(0.8, abs=0.02)
    # an image with nothing to compare turns the comparison off
    with qtbot.waitSignal(canvas.compare_available) as available:
        canvas.set_image(solid(100, 100, "blue"))
    assert available.args == [False] and not canvas.compare


def test_preview_then_final_image(canvas: ImageCanvas) -> None:
    canvas.show_preview(solid(16, 16, "grey"), "Denoising…")
    assert canvas._preview and canvas.is_fit
    canvas.set_image(solid(128, 128, "white"))
    assert not canvas._preview
