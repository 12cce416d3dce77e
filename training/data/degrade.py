"""Seeded degradations for restoration samples: noise, blur, low resolution and JPEG.

A ``Degradation`` is a frozen description (kind, strength in 0..1, seed); ``apply`` is a pure
function of it and the image, so a sample's degraded input can be re-created exactly. Strength
maps to each kind's parameter range below; scales are relative to a 128 px image side.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

DEGRADATIONS: tuple[str, ...] = ("noise", "blur", "lowres", "jpeg")
#: (weakest, strongest) parameter of each kind.
NOISE_SIGMA = (12.0, 40.0)  # Gaussian noise std in 0..255 units
BLUR_RADIUS = (1.2, 3.0)  # Gaussian blur radius in pixels per 128 px
LOWRES_FACTOR = (3.0, 6.0)  # downscale factor before scaling back up
JPEG_QUALITY = (18, 4)  # JPEG quality (lower is worse)


def _lerp(bounds: tuple[float, float], t: float) -> float:
    return bounds[0] + (bounds[1] - bounds[0]) * t


@dataclass(frozen=True)
class Degradation:
    kind: str
    strength: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {self.kind!r}; expected one of {DEGRADATIONS}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength {self.strength} is outside 0..1")

    def apply(self, image: Image.Image) -> Image.Image:
        image = image.convert("RGB")
        side = image.width
        t = self.strength
        if self.kind == "noise":
            rng = np.random.default_rng(self.seed)
            noise = rng.normal(0.0, _lerp(NOISE_SIGMA, t), (image.height, image.width, 3))
            out = np.asarray(image, np.float32) + noise
            return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
        if self.kind == "blur":
            return image.filter(ImageFilter.GaussianBlur(_lerp(BLUR_RADIUS, t) * side / 128))
        if self.kind == "lowres":
            factor = _lerp(LOWRES_FACTOR, t)
            small = (max(4, round(image.width / factor)), max(4, round(image.height / factor)))
            low = image.resize(small, Image.Resampling.BOX)
            return low.resize(image.size, Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=round(_lerp(JPEG_QUALITY, t)))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")


def sample_degradations(rng: random.Random) -> tuple[Degradation, ...]:
    """One degradation, or two of different kinds applied in order (a quarter of the time)."""
    kinds = rng.sample(DEGRADATIONS, 2 if rng.random() < 0.25 else 1)
    return tuple(
        Degradation(kind, round(rng.uniform(0.0, 1.0), 3), rng.randrange(2**31)) for kind in kinds
    )


def degrade(image: Image.Image, degradations: tuple[Degradation, ...]) -> Image.Image:
    for d in degradations:
        image = d.apply(image)
    return image
