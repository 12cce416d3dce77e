"""Architectures training tries that the app does not ship, and one way to name any architecture.

The shipped presets live in ``engine.config.PRESETS``; the research ones here. ``architecture``
takes either kind of name, or a ``config.json`` (or a folder holding one, such as a
``training.fit_vae`` run), so ``warm_start --preset`` can start a run of any of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from engine.config import PRESETS, WeGenConfig, preset, wegen_tiny


def wegen_tiny_vae4x() -> WeGenConfig:
    """wegen-tiny with a VAE that downsamples 4x, not 8x: 32x32x16 latents at 128 px, so a small
    object spans 4x4 latent positions instead of 2x2. Its autoencoder costs about as much as
    wegen-tiny's; its UNet works on 4x the positions."""
    tiny = wegen_tiny()
    vae = dataclasses.replace(tiny.vae, block_out_channels=(32, 64, 128))
    return tiny.replace(name="wegen-tiny-vae4x", vae=vae)


RESEARCH_PRESETS: dict[str, Callable[[], WeGenConfig]] = {
    "wegen-tiny-vae4x": wegen_tiny_vae4x,
}


def architecture(spec: str) -> WeGenConfig:
    """A shipped or research preset by name, or the config in a ``config.json`` or folder."""
    if spec in RESEARCH_PRESETS:
        return RESEARCH_PRESETS[spec]()
    path = Path(spec)
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json":
        if not path.is_file():
            raise ValueError(f"no config file {path}")
        return WeGenConfig.load(path)
    if spec not in PRESETS:
        names = ", ".join([*PRESETS, *RESEARCH_PRESETS])
        raise ValueError(f"unknown architecture {spec!r}: give a preset ({names}) or a config.json")
    return preset(spec)
