"""An image the person attached to the message they are writing. No Qt."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PIL.Image import Image

from desktop.image_input import load_image_file, normalise_image
from engine.api import ImageRole


@dataclass(frozen=True, eq=False)
class Attachment:
    image: Image  # RGB, checked, at most image_input.MAX_SIDE on its long side
    role: ImageRole = ImageRole.IMAGE
    source: str = ""  # what the person calls it: the file name, or "pasted image"
    path: Path | None = None  # the original file; None for a pasted image

    @classmethod
    def from_file(cls, path: Path | str, role: ImageRole = ImageRole.IMAGE) -> Attachment:
        """Raises `engine.api.ImageInputError` with a message for the person."""
        path = Path(path)
        return cls(load_image_file(path), role, path.name, path)

    @classmethod
    def from_image(cls, image: Image, source: str, role: ImageRole = ImageRole.IMAGE) -> Attachment:
        return cls(normalise_image(image), role, source, None)

    def with_role(self, role: ImageRole) -> Attachment:
        return replace(self, role=role)
