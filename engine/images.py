"""The one place where user images enter the engine, and where model pixels leave it.

`load_image` turns a path, raw file bytes or a PIL image into a fully decoded 8-bit RGB image, or
raises `ImageInputError` with a message that names the image, says what is wrong and what to do.
Conventions, chosen once here so that every request sees the same pixels:

- **Size limit before decoding.** The size declared in the file header is checked against
  `max_pixels` before any pixel data is decoded, so a small file that claims a huge size (a
  decompression bomb) costs nothing. Files are identified with Pillow's format registry directly
  rather than through `Image.open`, whose own bomb check compares against the process-wide
  `Image.MAX_IMAGE_PIXELS` and reports through the global warnings machinery. Nothing global is
  changed, so loads may run in several threads, and `max_pixels` alone sets the limit. (A few
  plugins still compare odd frame sizes with Pillow's global limit while reading a header, such
  as GIF frames larger than their canvas; when that raises, it is reported as too large.)
- **Truncation is an error, whatever `ImageFile.LOAD_TRUNCATED_IMAGES` says.** The file is fully
  decoded inside `load_image`, through a stream that records whether the decoder asked for bytes
  past the end of the data. Another library may set that global flag to pad cut-off images with
  grey; here a cut-off file is still reported as incomplete.
- **Animated images** (GIF, APNG, WebP, multi-page TIFF) give their first frame.
- **Orientation**: the EXIF (or XMP) orientation is applied, so the pixels are upright as viewers
  show them.
- **Transparency** (RGBA, LA, palette or colour-key transparency) is composited over white: the
  models take opaque RGB, and white is what a transparent image looks like on a page.
- **CMYK** is converted through its embedded ICC profile into sRGB when there is a usable one,
  else with Pillow's plain formula.
- **Greyscale of more than 8 bits** (modes I;16 and I) is taken as 16-bit and scaled with
  rounding, 65535 -> 255; values outside 0..65535 in mode I are clipped. Pillow decodes 16-bit
  RGB(A) files to 8 bits per channel itself.
- **Float images** (mode F) are taken as 0..1, the usual convention of float image files; values
  outside are clipped and NaN counts as 0.
- The returned image carries no metadata (`info` is empty): it is pixels in, nothing else.
- The source file, bytes or image object is never modified.

`to_model_input` / `from_model_output` convert between PIL images and the float32 (H, W, 3) arrays
in [0, 1] the models read and write; `image_fingerprint` keys caches of encoded image features.

Images leave as files through `engine.files` (atomic writes).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, features

from engine.errors import ImageInputError, ModelOutputError

MAX_PIXELS = 64_000_000
"""Default largest image `load_image` decodes (width × height): 8000 × 8000."""

_WHITE = (255, 255, 255, 255)

# Exceptions Pillow raises on a damaged or unexpected file, while identifying or decoding it.
# UserWarning is Pillow's warning about damaged metadata; it arrives here only where the warnings
# filter turns it into an exception (as the test suite does), and then it is a damaged file too.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    struct.error,
    UserWarning,
)
# Raised by format plugins that check frame sizes against Pillow's global limit themselves;
# the warning only arrives as an exception when the warnings filter says "error".
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)

_DISPLAY_NAMES = {"WEBP": "WebP"}


def supported_formats() -> str:
    """The common formats this Pillow build can open, for messages: "PNG, JPEG, WebP, GIF, ..."."""
    names = ["PNG", "JPEG"]
    if features.check_module("webp"):
        names.append("WebP")
    names += ["GIF", "BMP", "TIFF"]
    if "avif" in features.modules and features.check_module("avif"):
        names.append("AVIF")
    Image.init()
    if "HEIF" in Image.OPEN:  # registered by the pillow-heif plugin when it is installed
        names.append("HEIF")
    return ", ".join(names)


def load_image(
    source: str | os.PathLike[str] | bytes | Image.Image, *, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode `source` fully into a new 8-bit RGB image, upright and opaque (see module docs).

    `source` is a path, the bytes of an image file (never a path in bytes), or a PIL image. A PIL
    image is used as it is: its current frame, and if it is still lazily opened, Pillow's own
    truncation handling applies to it. Raises `ImageInputError` for anything a person can fix.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    if isinstance(source, Image.Image):
        return _load_pil_image(source, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _decode(_WatchedBytes(data), f"the image data ({len(data)} bytes)", max_pixels)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a path, bytes or a PIL image, got {type(source).__name__}")
    path = Path(source)
    name = f'"{path}"'
    if path.is_dir():
        raise _fail(name, "it is a folder, not an image file", "Choose an image file inside it.")
    try:
        stream = _WatchedFile(io.FileIO(path, "r"))
    except FileNotFoundError:
        raise _fail(
            name,
            "the file does not exist",
            "Check that it was not moved, renamed or deleted, then choose it again.",
        ) from None
    except PermissionError:
        raise _fail(
            name,
            "permission to read the file was denied",
            "Copy the image somewhere you can read it, or change its permissions, and try again.",
        ) from None
    except OSError as err:
        raise _fail(
            name,
            f"the file cannot be read ({err.strerror or err})",
            "Check that the drive is still connected, then try again.",
        ) from None
    with stream:
        return _decode(stream, name, max_pixels)


def to_model_input(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image as float32 (size, size, 3) in [0, 1], resized with Pillow's bilinear filter.

    The aspect ratio is not kept: by the models' convention the input is the whole image
    stretched to a square. Pillow's bilinear filter widens when shrinking (it is antialiased).
    """
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image (from load_image), got mode {image.mode}")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / np.float32(255)  # (size, size, 3)


def from_model_output(array: np.ndarray) -> Image.Image:
    """A float (H, W, 3) array in [0, 1] as an RGB image: clipped to [0, 1], x255, rounded."""
    pixels = np.asarray(array, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {pixels.shape}")
    if not np.isfinite(pixels).all():
        raise ModelOutputError(
            "the model produced NaN or infinite pixels, so no image can be made from them; this "
            "usually means a half-precision overflow: try --precision fp32 (or bf16 on a GPU)"
        )
    return Image.fromarray(np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))


def image_fingerprint(image: Image.Image) -> str:
    """A stable hex SHA-256 of mode, size and pixels (and the palette, for P images).

    Equal for equal pixels whatever the file or metadata was; for keying cached image features.
    """
    digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    if image.mode in ("P", "PA"):
        digest.update(bytes(image.getpalette() or []))
    digest.update(image.tobytes())
    return digest.hexdigest()


# --- decoding ---------------------------------------------------------------------------------


class _RanOut:
    """Mixin for a binary stream: remembers a read that asked for bytes past the end of the data.

    A complete file is decoded without that happening; a cut-off one is not, whatever Pillow's
    global LOAD_TRUNCATED_IMAGES says.
    """

    ran_out = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)  # type: ignore[misc]
        if size is not None and size > 0 and not data:
            self.ran_out = True
        return data


class _WatchedFile(_RanOut, io.BufferedReader):
    pass


class _WatchedBytes(_RanOut, io.BytesIO):
    pass


def _decode(stream: _WatchedFile | _WatchedBytes, name: str, max_pixels: int) -> Image.Image:
    """Identify, check the declared size, fully decode and convert one image stream."""
    image = _identify(stream, name, max_pixels)
    fmt = _DISPLAY_NAMES.get(image.format or "", image.format or "image")
    _check_size(image.size, name, max_pixels)
    stream.ran_out = False
    try:
        image.load()
    except _BOMB_ERRORS:
        raise _too_large(name, None, max_pixels) from None
    except _DECODE_ERRORS as err:
        if stream.ran_out or "truncated" in str(err).lower():
            raise _incomplete(name) from None
        raise _damaged(name, fmt, err) from None
    if stream.ran_out:  # LOAD_TRUNCATED_IMAGES was set somewhere and Pillow padded the image
        raise _incomplete(name)
    return _convert(image, name, fmt)


def _identify(
    stream: _WatchedFile | _WatchedBytes, name: str, max_pixels: int
) -> ImageFile.ImageFile:
    """`Image.open` without its global-limit bomb check: the first plugin that reads the header.

    Mirrors Pillow's own loop over its format registry; `_decode` checks the size instead.
    """
    prefix = stream.read(16)
    if not prefix:
        raise _fail(name, "it is empty (0 bytes)", "Choose the image again, or download it again.")
    Image.init()
    damaged_format = ""
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        verdict = accept(prefix) if accept else True
        if isinstance(verdict, str) or not verdict:  # a string says why the plugin declined
            continue
        stream.seek(0)
        stream.ran_out = False
        try:
            return factory(stream, "")
        except _BOMB_ERRORS:
            raise _too_large(name, None, max_pixels) from None
        except _DECODE_ERRORS as err:
            if not accept:  # a plugin with no signature to match tries every file: not this one
                continue
            if stream.ran_out or "truncated" in str(err).lower():
                raise _incomplete(name) from None
            if not isinstance(err, (SyntaxError, IndexError, TypeError, struct.error)):
                raise _damaged(name, _DISPLAY_NAMES.get(fmt, fmt), err) from None
            # Pillow's "not this format after all": its signature matched, its header did not.
            damaged_format = damaged_format or _DISPLAY_NAMES.get(fmt, fmt)
    if damaged_format:
        raise _fail(
            name,
            f"it starts like a {damaged_format} file, but its header is damaged or describes an "
            "image with no pixels",
            "Export or download the image again, then try again.",
        )
    raise _fail(
        name,
        f"it is not an image WeGen can read (supported formats: {supported_formats()})",
        "If it is an image, open it in an image editor, save it as PNG or JPEG, and try again.",
    )


def _load_pil_image(image: Image.Image, max_pixels: int) -> Image.Image:
    name = "the image"
    _check_size(image.size, name, max_pixels)
    fmt = image.format or "image"
    try:
        image.load()
    except _BOMB_ERRORS:
        raise _too_large(name, None, max_pixels) from None
    except _DECODE_ERRORS as err:
        if "truncated" in str(err).lower():
            raise _incomplete(name) from None
        raise _damaged(name, fmt, err) from None
    return _convert(image, name, fmt)


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise _fail(name, f"it has no pixels ({width}×{height})", "Choose a different image.")
    if width * height > max_pixels:
        raise _too_large(name, size, max_pixels)


# --- conversion to 8-bit RGB ------------------------------------------------------------------


def _convert(image: Image.Image, name: str, fmt: str) -> Image.Image:
    """A new upright, opaque 8-bit RGB image with no metadata; `image` is left as it was."""
    try:
        upright = _upright(image)
    except _DECODE_ERRORS as err:  # unreadable orientation metadata
        raise _damaged(name, fmt, err) from None
    try:
        rgb = _to_rgb(upright)
    except ValueError:  # Pillow has no conversion from this mode
        raise _fail(
            name,
            f"it uses the colour mode {image.mode}, which WeGen cannot convert to RGB",
            "Save it as an 8-bit RGB PNG or JPEG and try again.",
        ) from None
    rgb.info = {}
    return rgb


def _upright(image: Image.Image) -> Image.Image:
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in range(2, 9):
        return ImageOps.exif_transpose(image)  # a transposed copy
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode == "I" or mode.startswith("I;16"):
        values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)  # (H, W)
        grey = (values * 255 + 32767) // 65535  # round(v / 257): 0 -> 0, 65535 -> 255
        return Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image), nan=0.0, posinf=1.0, neginf=0.0)  # (H, W)
        grey = np.rint(np.clip(values, 0.0, 1.0) * 255.0)
        return Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    if "A" in mode or "a" in mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return image.convert("RGB")  # RGB (a copy), 1, L, P, RGBX, YCbCr, ...


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    profile = image.info.get("icc_profile")
    if profile and features.check_module("littlecms2"):
        try:
            converted = ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable or non-CMYK profile: the plain conversion below is the fallback
        else:
            assert converted is not None  # not in place, so a new image comes back
            return converted
    return image.convert("RGB")


# --- messages ---------------------------------------------------------------------------------


def _fail(name: str, problem: str, action: str) -> ImageInputError:
    return ImageInputError(f"Cannot use {name}: {problem}. {action}")


def _too_large(name: str, size: tuple[int, int] | None, max_pixels: int) -> ImageInputError:
    side = math.isqrt(max_pixels)
    if size is None:
        problem = "it is too large to decode safely"
    else:
        megapixels = size[0] * size[1] / 1e6
        problem = (
            f"it is {size[0]}×{size[1]} ({megapixels:.1f} megapixels), more than the "
            f"limit of {max_pixels / 1e6:.1f} megapixels"
        )
    return _fail(
        name, problem, f"Scale it down (to {side}×{side} or smaller, for example) and try again."
    )


def _incomplete(name: str) -> ImageInputError:
    return _fail(
        name,
        "the file is incomplete: it ends before the image data does, as if cut off while "
        "downloading or copying",
        "Download or copy the image again, then try again.",
    )


def _damaged(name: str, fmt: str, err: BaseException) -> ImageInputError:
    return _fail(
        name,
        f"its {fmt} data is damaged and cannot be decoded ({err})",
        "Export or download the image again, then try again.",
    )
