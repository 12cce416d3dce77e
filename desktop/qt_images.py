"""PIL <-> Qt image conversion. QImages may be made on any thread (QPixmaps only on the GUI
thread), so the worker converts finished images before it reports them."""

from __future__ import annotations

from PIL import Image
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap


def pil_to_qimage(image: Image.Image) -> QImage:
    """A QImage that owns a copy of ``image``'s pixels."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    width, height = rgb.size
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def qimage_to_pil(image: QImage) -> Image.Image:
    """An RGB PIL copy of ``image`` (alpha composited over white)."""
    if image.hasAlphaChannel():
        flattened = QImage(image.size(), QImage.Format.Format_RGB888)
        flattened.fill(0xFFFFFF)
        from PySide6.QtGui import QPainter

        painter = QPainter(flattened)
        painter.drawImage(0, 0, image)
        painter.end()
        image = flattened
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = rgb.width(), rgb.height()
    stride = rgb.bytesPerLine()
    raw = bytes(rgb.constBits())[: stride * height]
    return Image.frombytes("RGB", (width, height), raw, "raw", "RGB", stride)


def fit_size(size: QSize, side: int) -> QSize:
    """``size`` scaled to fit a ``side`` square, keeping its aspect, never under one pixel
    (Qt's own scaling rounds a 2048 × 10 strip to 168 × 0: a null image)."""
    width, height = max(1, size.width()), max(1, size.height())
    scale = side / max(width, height)
    return QSize(max(1, round(width * scale)), max(1, round(height * scale)))


def thumbnail(image: QImage, side: int) -> QPixmap:
    """``image`` as a pixmap that fits a ``side`` square (on the GUI thread: it is a QPixmap)."""
    if image.isNull():
        return QPixmap()
    return QPixmap.fromImage(
        image.scaled(
            fit_size(image.size(), side),
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    )
