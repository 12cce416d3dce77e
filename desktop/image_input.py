"""Checking and loading the images a person attaches, drops, pastes or opens. No Qt.

Decoding is the engine's (`engine.api.load_image`: size checked before decoding, truncation
detected, orientation, transparency and colour handled); this module adds the desktop's own
limits: files larger than `MAX_FILE_BYTES` are refused unread, and attachments are scaled down to
`MAX_SIDE` so a 50-megapixel photo does not sit in memory at full size. Every failure is an
`engine.api.ImageInputError` whose message names the file and says what to do.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from desktop.i18n import tr
from engine.api import ImageInputError, load_image

MAX_FILE_BYTES = 200 * 1024 * 1024  # larger files are refused before reading them
MAX_PIXELS = 50_000_000  # larger images are refused before decoding them
MAX_SIDE = 2048  # attachments are scaled down to this; the model works at 1024 or less
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def load_image_file(path: Path | str, *, max_side: int | None = MAX_SIDE) -> Image.Image:
    """Open ``path`` as an upright, opaque RGB image at most ``max_side`` on its long side."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise ImageInputError(
            tr(
                "ImageInput",
                "Cannot use “{0}”: it is {1} MB, more than the limit of {2} MB. "
                "Scale it down or save it in a compressed format, then try again.",
            ).format(
                path.name, path.stat().st_size // (1024 * 1024), MAX_FILE_BYTES // (1024 * 1024)
            )
        )
    return normalise_image(load_image(path, max_pixels=MAX_PIXELS), max_side)


def normalise_image(image: Image.Image, max_side: int | None = MAX_SIDE) -> Image.Image:
    """An RGB copy of ``image`` at most ``max_side`` pixels on its long side."""
    rgb = load_image(image, max_pixels=MAX_PIXELS) if image.mode != "RGB" else image.copy()
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb
