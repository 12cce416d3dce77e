"""Render the app icon (wegen_resources/icons/wegen.svg) for Windows (.ico) and macOS (.icns).

    python packaging/icons.py OUT_DIR     # -> OUT_DIR/wegen.ico, OUT_DIR/wegen.icns, PNGs

Qt draws the SVG (as the app itself does), Pillow writes the containers; build.py runs this
before PyInstaller, so no rendered icon is kept in the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QGuiApplication, QIcon

SVG = Path(__file__).resolve().parent.parent / "wegen_resources" / "icons" / "wegen.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)


def render(size: int) -> Image.Image:
    pixmap = QIcon(str(SVG)).pixmap(size, size)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    pixmap.save(buffer, "PNG")
    from io import BytesIO

    return Image.open(BytesIO(bytes(buffer.data()))).convert("RGBA")


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    _app = QGuiApplication.instance() or QGuiApplication([])
    images = {size: render(size) for size in SIZES}
    for size, image in images.items():
        image.save(out / f"wegen-{size}.png")
    images[256].save(out / "wegen.ico", sizes=[(s, s) for s in SIZES if s <= 256])
    images[1024].save(out / "wegen.icns")
    print(f"icons -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
