"""engine.images: every bad or unusual input is made here, in tmp_path, and checked exactly."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import ExifTags, Image, ImageCms, ImageFile

from engine import images
from engine.errors import ImageInputError
from engine.images import (
    MAX_PIXELS,
    from_model_output,
    image_fingerprint,
    load_image,
    supported_formats,
    to_model_input,
)

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


# --- helpers ----------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(path: Path, **kwargs: int) -> Image.Image:
    """load_image(path), checking that the file is left byte-for-byte as it was."""
    before = _digest(path)
    image = load_image(path, **kwargs)
    assert _digest(path) == before
    return image


def _error(path: Path, **kwargs: int) -> str:
    """The ImageInputError message for path; it must name the file, which is left unchanged."""
    before = _digest(path) if path.is_file() else None
    with pytest.raises(ImageInputError) as caught:
        load_image(path, **kwargs)
    if before is not None:
        assert _digest(path) == before
    message = str(caught.value)
    assert f'"{path}"' in message
    return message


def _save(image: Image.Image, path: Path, **params: object) -> Path:
    image.save(path, **params)
    return path


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, so that its header can say anything."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _pixels(image: Image.Image) -> list[tuple[int, ...]]:
    return [image.getpixel((x, y)) for y in range(image.height) for x in range(image.width)]


# --- ordinary images --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_rgb_file_loads_exactly(tmp_path: Path, suffix: str) -> None:
    source = _noise(37, 23)
    params = {"lossless": True} if suffix == ".webp" else {}
    result = _load(_save(source, tmp_path / f"noise{suffix}", **params))
    assert result.mode == "RGB"
    assert result.size == (37, 23)
    assert result.tobytes() == source.tobytes()
    assert result.info == {}


def test_bytes_input_matches_path_input(tmp_path: Path) -> None:
    path = _save(_noise(20, 10), tmp_path / "noise.png")
    assert load_image(path.read_bytes()).tobytes() == _load(path).tobytes()
    assert load_image(str(path)).tobytes() == _load(path).tobytes()


def test_pil_input_is_converted_into_a_new_image_and_left_alone() -> None:
    source = Image.new("RGBA", (4, 3), (10, 20, 30, 255))
    before = source.tobytes()
    result = load_image(source)
    assert result is not source
    assert (source.mode, source.tobytes()) == ("RGBA", before)
    assert result.mode == "RGB"
    assert set(_pixels(result)) == {(10, 20, 30)}
    rgb = Image.new("RGB", (2, 2), RED)
    assert load_image(rgb) is not rgb


def test_supported_formats_names_the_common_ones() -> None:
    names = supported_formats().split(", ")
    assert names[:2] == ["PNG", "JPEG"]
    assert {"GIF", "BMP", "TIFF"} <= set(names)


def test_bad_arguments_are_programming_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        load_image(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(Image.new("RGB", (1, 1)), max_pixels=0)


# --- files that cannot be used ----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = _error(tmp_path / "gone.png")
    assert "does not exist" in message
    assert "choose it again" in message


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "photos.png"
    folder.mkdir()
    message = _error(folder)
    assert "folder, not an image file" in message
    assert "Choose an image file inside it" in message


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("shopping list: eggs, milk, more eggs\n")
    message = _error(path)
    assert "not an image WeGen can read" in message
    assert supported_formats() in message
    assert "save it as PNG or JPEG" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    message = _error(path)
    assert "empty (0 bytes)" in message
    assert "download it again" in message


def test_garbage_bytes_name_the_image_data() -> None:
    with pytest.raises(ImageInputError, match=r"the image data \(9 bytes\).*not an image"):
        load_image(b"not a png")


def test_png_signature_with_broken_header(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(_png(4, 4, 8, 2, b"")[:16] + b"\x00" * 40)
    message = _error(path)
    assert "starts like a PNG file, but its header is damaged" in message
    assert "Export or download the image again" in message


@pytest.mark.parametrize("lenient_pillow", [False, True], ids=["strict", "LOAD_TRUNCATED"])
@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF"])
def test_truncated_file_is_reported_even_if_pillow_would_pad_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, fraction: float, lenient_pillow: bool
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", lenient_pillow)
    whole = io.BytesIO()
    _noise(160, 120).save(whole, fmt)
    data = whole.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * fraction)])
    message = _error(path)
    assert "incomplete" in message
    assert "Download or copy the image again" in message
    assert load_image(data).size == (160, 120)  # the whole file is fine


@pytest.mark.parametrize("lenient_pillow", [False, True], ids=["strict", "LOAD_TRUNCATED"])
def test_png_cut_right_after_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lenient_pillow: bool
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", lenient_pillow)
    path = tmp_path / "header-only.png"
    path.write_bytes(_png(4, 4, 8, 2, b"")[:33])  # signature and a whole IHDR chunk, no more
    assert "incomplete" in _error(path)


def test_truncated_bytes_input() -> None:
    whole = io.BytesIO()
    _noise(64, 64).save(whole, "JPEG")
    with pytest.raises(ImageInputError, match=r"the image data .*incomplete"):
        load_image(whole.getvalue()[:-200])


# --- size limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [10_000, 30_000], ids=["over-pillow-warning", "over-pillow-error"])
def test_huge_declared_size_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    # The header claims side×side RGB pixels; the data is one row. Decoding would report a
    # truncated file, so "too large" proves the check came first. Pillow's own check (which
    # would warn at 10k² and raise at 30k²) must not fire: pytest turns warnings into errors.
    limit_before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(side, side, 8, 2, b"\x00" * (1 + 3 * side)))
    message = _error(path)
    assert f"it is {side}×{side} ({side * side / 1e6:.1f} megapixels)" in message
    assert f"limit of {MAX_PIXELS / 1e6:.1f} megapixels" in message
    assert "Scale it down (to 8000×8000 or smaller" in message
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_real_large_image_against_max_pixels(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (2000, 1500), BLUE), tmp_path / "wide.png")
    message = _error(path, max_pixels=1_000_000)
    assert "2000×1500 (3.0 megapixels), more than the limit of 1.0 megapixels" in message
    assert "to 1000×1000 or smaller" in message
    assert _load(path, max_pixels=3_000_000).size == (2000, 1500)


def test_only_max_pixels_sets_the_limit_not_pillows_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Image.open would warn or raise here
    path = _save(_noise(64, 64), tmp_path / "small.png")
    assert _load(path).size == (64, 64)


def test_zero_size_images(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(_png(0, 5, 8, 2, b""))
    message = _error(path)
    assert "starts like a PNG file" in message
    assert "no pixels" in message
    with pytest.raises(ImageInputError, match=r"the image: it has no pixels \(0×3\)"):
        load_image(Image.new("RGB", (0, 3)))


# --- conversions ------------------------------------------------------------------------------


def test_exif_orientation_6_is_applied(tmp_path: Path) -> None:
    stored = Image.new("RGB", (32, 16), RED)
    stored.paste(BLUE, (16, 0, 32, 16))  # left half red, right half blue
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = _save(stored, tmp_path / "phone.jpg", exif=exif, quality=100)
    result = _load(path)
    assert result.size == (16, 32)
    with Image.open(path) as raw:  # the stored pixels, turned 90° clockwise as viewers show them
        assert raw.getexif()[ExifTags.Base.Orientation] == 6
        assert result.tobytes() == raw.transpose(Image.Transpose.ROTATE_270).tobytes()
    top, bottom = result.getpixel((8, 4)), result.getpixel((8, 28))
    assert top[0] > 240 and top[2] < 15  # red on top
    assert bottom[2] > 240 and bottom[0] < 15  # blue below


def test_cmyk_jpeg_without_profile_uses_plain_conversion(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "print.jpg")
    result = _load(path)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
        assert result.tobytes() == raw.convert("RGB").tobytes()
    red, green, blue = result.getpixel((8, 8))
    assert red > 245 and green < 10 and blue < 10


def test_cmyk_with_unusable_profile_falls_back_to_plain_conversion(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # not CMYK
    for index, profile in enumerate([b"not an icc profile", srgb]):
        source = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
        path = _save(source, tmp_path / f"print{index}.jpg", icc_profile=profile)
        with Image.open(path) as raw:
            assert raw.info["icc_profile"] == profile
            assert _load(path).tobytes() == raw.convert("RGB").tobytes()


def test_cmyk_with_profile_goes_through_colour_management(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, object]] = []

    def fake_profile_to_profile(image: Image.Image, *profiles: object, **options: object):
        calls.append({"mode": image.mode, **options})
        return Image.new("RGB", image.size, (1, 2, 3))

    monkeypatch.setattr(ImageCms, "profileToProfile", fake_profile_to_profile)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = _save(Image.new("CMYK", (8, 8)), tmp_path / "print.jpg", icc_profile=srgb)
    assert set(_pixels(_load(path))) == {(1, 2, 3)}
    assert calls == [{"mode": "CMYK", "outputMode": "RGB"}]


def test_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 128, 129, 257, 32896, 65534, 65535]], dtype=np.uint16)
    source = Image.fromarray(values)
    assert source.mode == "I;16"
    path = _save(source, tmp_path / "depth.png")
    result = _load(path)
    assert [pixel[0] for pixel in _pixels(result)] == [0, 0, 1, 1, 128, 255, 255]
    assert all(r == g == b for r, g, b in _pixels(result))


def test_16_bit_rgb_png(tmp_path: Path) -> None:
    row = struct.pack(">6H", 0, 65535, 257 * 100, 65535, 0, 257 * 7)
    path = tmp_path / "deep.png"
    path.write_bytes(_png(2, 1, 16, 2, b"\x00" + row))
    assert _pixels(_load(path)) == [(0, 255, 100), (255, 0, 7)]


def test_mode_i_and_f_images() -> None:
    wide = Image.fromarray(np.array([[-5, 0, 257, 65535, 70_000]], dtype=np.int32))
    assert wide.mode == "I"
    assert [p[0] for p in _pixels(load_image(wide))] == [0, 0, 1, 255, 255]
    floats = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0, np.nan, np.inf]], dtype=np.float32)
    real = Image.fromarray(floats)
    assert real.mode == "F"
    assert [p[0] for p in _pixels(load_image(real))] == [0, 0, 128, 255, 255, 0, 255]


def test_rgba_and_la_are_composited_over_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(255, 0, 0, 0), (255, 0, 0, 255), (255, 0, 0, 128)])
    clear, opaque, half = _pixels(_load(_save(rgba, tmp_path / "rgba.png")))
    assert clear == WHITE
    assert opaque == RED
    assert half[0] == 255 and abs(half[1] - 127) <= 1 and half[1] == half[2]
    la = Image.new("LA", (2, 1))
    la.putdata([(0, 0), (0, 255)])
    assert _pixels(_load(_save(la, tmp_path / "la.png"))) == [WHITE, BLACK]


def test_palette_with_transparency_is_composited_over_white(tmp_path: Path) -> None:
    palette = Image.new("P", (3, 1))
    palette.putpalette([*GREEN, *BLUE, *RED])
    palette.putdata([0, 1, 2])
    path = _save(palette, tmp_path / "palette.png", transparency=0)
    with Image.open(path) as raw:
        assert (raw.mode, raw.info["transparency"]) == ("P", 0)
    assert _pixels(_load(path)) == [WHITE, BLUE, RED]


def test_one_bit_image(tmp_path: Path) -> None:
    bits = Image.new("1", (2, 1))
    bits.putpixel((1, 0), 1)
    assert _pixels(_load(_save(bits, tmp_path / "bits.png"))) == [BLACK, WHITE]


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animated_image_gives_its_first_frame(tmp_path: Path, suffix: str) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, GREEN, BLUE)]
    params = {"lossless": True} if suffix == ".webp" else {}
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, **params)
    with Image.open(path) as raw:
        assert raw.n_frames == 3
    assert set(_pixels(_load(path))) == {RED}


# --- model arrays and fingerprints ------------------------------------------------------------


def test_to_model_input_resizes_to_a_square_float_array() -> None:
    array = to_model_input(Image.new("RGB", (40, 10), (255, 0, 51)), 16)
    assert array.shape == (16, 16, 3)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array[0, 0], np.array([1.0, 0.0, 0.2], dtype=np.float32))
    with pytest.raises(ValueError, match="RGB"):
        to_model_input(Image.new("RGBA", (4, 4)), 4)


def test_from_model_output_clips_and_rounds() -> None:
    array = np.array([[[-0.5, 0.0, 0.5], [1.0, 1.5, 0.2]]], dtype=np.float64)
    image = from_model_output(array)
    assert (image.mode, image.size) == ("RGB", (2, 1))
    assert _pixels(image) == [(0, 0, 128), (255, 255, 51)]
    with pytest.raises(ValueError, match="shape"):
        from_model_output(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        from_model_output(np.full((1, 1, 3), np.nan, dtype=np.float32))


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        st.integers(1, 24).map(lambda side: (side, side, 3)),
        elements=st.integers(0, 255),
    )
)
def test_model_arrays_round_trip_an_8_bit_image_at_its_own_size(pixels: np.ndarray) -> None:
    image = Image.fromarray(pixels)
    array = to_model_input(image, pixels.shape[0])
    assert array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert from_model_output(array).tobytes() == image.tobytes()


def test_fingerprint_is_stable_and_depends_on_pixels_mode_and_size(tmp_path: Path) -> None:
    image = Image.new("RGB", (2, 1), RED)
    expected = hashlib.sha256(b"RGB 2x1\n" + bytes([255, 0, 0, 255, 0, 0])).hexdigest()
    assert image_fingerprint(image) == expected  # the recipe is pinned: cache keys must not drift
    path = _save(image, tmp_path / "red.png")
    assert image_fingerprint(_load(path)) == expected
    assert image_fingerprint(load_image(path.read_bytes())) == expected
    other = image.copy()
    other.putpixel((1, 0), (255, 0, 1))
    assert image_fingerprint(other) != expected
    row, column = Image.new("L", (2, 1)), Image.new("L", (1, 2))
    assert row.tobytes() == column.tobytes()
    assert image_fingerprint(row) != image_fingerprint(column)
    assert image_fingerprint(Image.new("L", (3, 1))) != image_fingerprint(Image.new("P", (3, 1)))


def test_module_constant() -> None:
    assert images.MAX_PIXELS == MAX_PIXELS == 64_000_000
