"""PIL <-> Qt image conversion. QImages may be made on any thread (QPixmaps only on the GUI
thread), so the worker converts finished images before it reports them."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QImage


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
