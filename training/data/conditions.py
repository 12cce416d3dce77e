"""Condition maps for condition-driven generation: an edge map and a coarse layout sketch.

* ``edge_map``: white edges on black, from the gradient of the scene drawn flat on a white
  background, so it shows every silhouette and pattern boundary but no colour, background or style.
* ``layout_sketch``: each object as a rounded blob of its colour where it sits, the size of its
  bounding box, on white: positions, sizes and colours but no shapes or patterns.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw

from training.data.render import render_scene, shape_extent
from training.data.world import COLOURS, Scene

CONDITIONS: tuple[str, ...] = ("edges", "sketch")
#: Gradient magnitude (0..255 luminance units per pixel) above which a pixel is an edge.
EDGE_THRESHOLD = 40.0


def edge_map(scene: Scene, size: int = 128) -> Image.Image:
    flat = replace(scene, background="white", style="flat")
    lum = np.asarray(render_scene(flat, size).convert("L"), np.float32)
    gy, gx = np.zeros_like(lum), np.zeros_like(lum)
    gx[:, 1:-1] = (lum[:, 2:] - lum[:, :-2]) / 2
    gy[1:-1, :] = (lum[2:, :] - lum[:-2, :]) / 2
    edges = np.hypot(gx, gy) > EDGE_THRESHOLD * 0.5
    return Image.fromarray(np.where(edges, 255, 0).astype(np.uint8), "L").convert("RGB")


def layout_sketch(scene: Scene, size: int = 128) -> Image.Image:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        w, h = (e * obj.diameter * size for e in shape_extent(obj.shape))
        cx, cy = obj.centre[0] * size, obj.centre[1] * size
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        draw.rounded_rectangle(box, radius=min(w, h) * 0.3, fill=COLOURS[obj.colour])
    return img


def render_condition(kind: str, scene: Scene, size: int = 128) -> Image.Image:
    if kind == "edges":
        return edge_map(scene, size)
    if kind == "sketch":
        return layout_sketch(scene, size)
    raise ValueError(f"unknown condition {kind!r}; expected one of {CONDITIONS}")
