"""Rendering scenes to RGB images of any size, anti-aliased, in about a millisecond at 128 px.

Each object is drawn ``SUPERSAMPLE`` times larger inside its own bounding-box crop (mask from
Pillow, pattern and shading with numpy), reduced to the output grid with a box filter as
premultiplied colour + coverage, and composited over the background. Rendering is a pure
function of the scene and the size: an object that does not change renders identical pixels.

Styles: ``flat`` (fill + pattern), ``outline`` (the same with a dark ink outline), ``soft``
(a light-to-dark shading across each object, then a slight blur of the whole image) and
``pixel`` (the flat image drawn on a grid ``PIXEL_BLOCK`` times coarser, scaled up without
smoothing).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training.data.world import BACKGROUNDS, COLOURS, INK, PATTERN_SHADE, ObjectSpec, Scene

SUPERSAMPLE = 4
#: Pixel style: one "pixel" is this many output pixels per 128 px of image side.
PIXEL_BLOCK = 3.0
#: Soft style: blur radius in output pixels per 128 px of image side, and shading amplitude.
SOFT_BLUR = 0.9
SOFT_SHADING = 0.16
#: Outline style: ink width as a fraction of the object's diameter (at least 1.25 px at 128 px).
OUTLINE_WIDTH = 0.065
#: Pattern scales as fractions of the object's diameter.
STRIPE_WIDTH = 1 / 6
CHECKER_CELL = 1 / 5
DOT_PERIOD = 1 / 3.5
DOT_RADIUS = 0.3  # of the dot period


# --- geometry -------------------------------------------------------------------------------
def _unit_star() -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        r = 1.0 if i % 2 == 0 else 0.5
        a = -math.pi / 2 + i * math.pi / 5
        pts.append((r * math.cos(a), r * math.sin(a)))
    return pts


def _normalise(pts: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Centre the bounding box on (0, 0) and scale its larger side to 1."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    side = max(max(xs) - min(xs), max(ys) - min(ys))
    return tuple(((x - cx) / side, (y - cy) / side) for x, y in pts)


_ARM = 0.18  # half the thickness of a cross arm
#: Shape outlines in a unit bounding box; ``None`` means the circle (an ellipse).
SHAPE_POLYGONS: dict[str, tuple[tuple[float, float], ...] | None] = {
    "circle": None,
    "square": _normalise([(-1, -1), (1, -1), (1, 1), (-1, 1)]),
    "triangle": _normalise([(0, -1), (math.sqrt(3) / 2, 0.5), (-math.sqrt(3) / 2, 0.5)]),
    "star": _normalise(_unit_star()),
    "hexagon": _normalise([(math.cos(a), math.sin(a)) for a in np.arange(6) * math.pi / 3]),
    "cross": _normalise(
        [
            (-_ARM, -0.5), (_ARM, -0.5), (_ARM, -_ARM), (0.5, -_ARM), (0.5, _ARM), (_ARM, _ARM),
            (_ARM, 0.5), (-_ARM, 0.5), (-_ARM, _ARM), (-0.5, _ARM), (-0.5, -_ARM), (-_ARM, -_ARM),
        ]
    ),
}  # fmt: skip


def shape_extent(shape: str) -> tuple[float, float]:
    """(width, height) of the shape's bounding box when its larger side is 1."""
    pts = SHAPE_POLYGONS[shape]
    if pts is None:
        return (1.0, 1.0)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (max(xs) - min(xs), max(ys) - min(ys))


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    centre: tuple[float, float],
    diameter: float,
    *,
    fill: int | None = 255,
    outline: int | None = None,
    width: int = 0,
) -> None:
    """Draw ``shape`` centred at ``centre`` (pixels) with its larger side ``diameter`` pixels."""
    cx, cy = centre
    pts = SHAPE_POLYGONS[shape]
    if pts is None:
        r = diameter / 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)
        return
    xy = [(cx + x * diameter, cy + y * diameter) for x, y in pts]
    if outline is None:
        draw.polygon(xy, fill=fill)
    else:
        draw.polygon(xy, fill=fill, outline=outline, width=width)


def shape_mask(shape: str, size: tuple[int, int], centre, diameter: float) -> np.ndarray:
    """A boolean (H, W) silhouette: pixels at least half covered, as ``render_scene`` draws them.

    ``centre`` is in pixel-edge coordinates (pixel i spans i..i+1), like the renderer's.
    """
    ss = SUPERSAMPLE
    w, h = size
    img = Image.new("L", (w * ss, h * ss), 0)
    draw_shape(ImageDraw.Draw(img), shape, (centre[0] * ss, centre[1] * ss), diameter * ss)
    cover = np.asarray(img, np.float32).reshape(h, ss, w, ss).mean(axis=(1, 3))
    return cover >= 127.5


def object_coverage(scene: Scene, grid: int, samples: int = 32) -> np.ndarray:
    """(objects, grid, grid) float32: the share of each cell of a ``grid`` x ``grid`` partition of
    the image that each object's silhouette covers (``samples`` x ``samples`` points per cell).

    Objects never overlap, so the shares of one cell sum to at most 1; the rest is background.
    """
    side = grid * samples
    out = np.zeros((len(scene.objects), grid, grid), np.float32)
    for i, obj in enumerate(scene.objects):
        img = Image.new("L", (side, side), 0)
        centre = (obj.centre[0] * side, obj.centre[1] * side)
        draw_shape(ImageDraw.Draw(img), obj.shape, centre, obj.diameter * side)
        cover = np.asarray(img, np.float32) / 255.0
        out[i] = cover.reshape(grid, samples, grid, samples).mean(axis=(1, 3))
    return out


# --- background and objects -----------------------------------------------------------------
def background_array(name: str, size: int) -> np.ndarray:
    """(size, size, 3) float32 in 0..255: a vertical gradient from top to bottom colour."""
    top, bottom = (np.asarray(c, np.float32) for c in BACKGROUNDS[name])
    t = ((np.arange(size, dtype=np.float32) + 0.5) / size)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).copy()


def _pattern(pattern: str, u: np.ndarray, v: np.ndarray, d: float) -> np.ndarray:
    """Where the darker tone goes; (u, v) are offsets from the object's centre in pixels."""
    if pattern == "striped":
        return np.floor(v / (d * STRIPE_WIDTH) + 0.5) % 2 == 1
    if pattern == "checkered":
        c = d * CHECKER_CELL
        return (np.floor(u / c + 0.5) + np.floor(v / c + 0.5)) % 2 == 1
    if pattern == "dotted":
        p = d * DOT_PERIOD
        du, dv = u - p * np.round(u / p), v - p * np.round(v / p)
        return du * du + dv * dv < (DOT_RADIUS * p) ** 2
    return np.zeros(np.broadcast_shapes(u.shape, v.shape), bool)


def _composite_object(canvas: np.ndarray, obj: ObjectSpec, style: str, ss: int) -> None:
    """Draw ``obj`` onto ``canvas`` (H, W, 3) with ``ss`` x ``ss`` samples per pixel."""
    size = canvas.shape[0]
    d = obj.diameter * size
    cx, cy = obj.centre[0] * size, obj.centre[1] * size
    x0, y0 = max(0, math.floor(cx - d / 2) - 1), max(0, math.floor(cy - d / 2) - 1)
    x1, y1 = min(size, math.ceil(cx + d / 2) + 1), min(size, math.ceil(cy + d / 2) + 1)
    w, h = x1 - x0, y1 - y0
    centre = ((cx - x0) * ss, (cy - y0) * ss)

    mask_img = Image.new("L", (w * ss, h * ss), 0)
    draw_shape(ImageDraw.Draw(mask_img), obj.shape, centre, d * ss)
    alpha = np.asarray(mask_img, np.float32) / 255.0  # (h*ss, w*ss)

    u = (np.arange(w * ss, dtype=np.float32) + 0.5) / ss + x0 - cx  # (w*ss,)
    v = (np.arange(h * ss, dtype=np.float32) + 0.5) / ss + y0 - cy  # (h*ss,)
    dark = _pattern(obj.pattern, u[None, :], v[:, None], d)  # (h*ss, w*ss)
    base = np.asarray(COLOURS[obj.colour], np.float32)
    rgb = np.where(dark[..., None], base * PATTERN_SHADE, base)  # (h*ss, w*ss, 3)
    if style == "soft":
        shade = 1.0 - SOFT_SHADING * (u[None, :] + v[:, None]) / d  # light from the top left
        rgb = np.clip(rgb * shade[..., None], 0, 255)
    if style == "outline":
        ink_img = Image.new("L", mask_img.size, 0)
        width = max(1.25 * size / 128, OUTLINE_WIDTH * d) * ss
        draw_shape(
            ImageDraw.Draw(ink_img),
            obj.shape,
            centre,
            d * ss,
            fill=None,
            outline=255,
            width=round(width),
        )
        ink = np.asarray(ink_img, np.float32)[..., None] / 255.0
        rgb = rgb * (1 - ink) + np.asarray(INK, np.float32) * ink

    premult = (rgb * alpha[..., None]).reshape(h, ss, w, ss, 3).mean(axis=(1, 3))  # (h, w, 3)
    cover = alpha.reshape(h, ss, w, ss).mean(axis=(1, 3))[..., None]  # (h, w, 1)
    region = canvas[y0:y1, x0:x1]
    region *= 1 - cover
    region += premult


def render_scene(scene: Scene, size: int = 128) -> Image.Image:
    """The scene as a ``size`` x ``size`` RGB image."""
    if size < 16:
        raise ValueError(f"image size {size} is too small (at least 16)")
    if scene.style == "pixel":
        grid = max(8, round(size / PIXEL_BLOCK))
        small = _render_flat(scene, grid, "flat", ss=SUPERSAMPLE)
        return small.resize((size, size), Image.Resampling.NEAREST)
    img = _render_flat(scene, size, scene.style, ss=SUPERSAMPLE)
    if scene.style == "soft":
        img = img.filter(ImageFilter.GaussianBlur(SOFT_BLUR * size / 128))
    return img


def _render_flat(scene: Scene, size: int, style: str, ss: int) -> Image.Image:
    canvas = background_array(scene.background, size)
    for obj in scene.objects:
        _composite_object(canvas, obj, style, ss)
    return Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), "RGB")
