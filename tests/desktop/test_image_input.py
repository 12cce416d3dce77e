from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from desktop import image_input
from desktop.image_input import load_image_file
from engine.api import ImageInputError


def test_loads_rgb_and_flattens_alpha(tmp_path: Path) -> None:
    Image.new("RGBA", (10, 6), (255, 0, 0, 0)).save(tmp_path / "a.png")
    image = load_image_file(tmp_path / "a.png")
    assert image.mode == "RGB" and image.size == (10, 6)
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_large_images_are_scaled_down(tmp_path: Path) -> None:
    Image.new("RGB", (3000, 1500)).save(tmp_path / "big.jpg")
    assert load_image_file(tmp_path / "big.jpg").size == (2048, 1024)


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageInputError, match=r"notes\.txt.*not an image"):
        load_image_file(tmp_path / "notes.txt")


def test_truncated(tmp_path: Path) -> None:
    Image.effect_noise((256, 256), 50).convert("RGB").save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match=r"t\.png.*incomplete"):
        load_image_file(tmp_path / "t.png")


def test_too_many_pixels_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_input, "MAX_PIXELS", 100 * 100)
    Image.new("RGB", (200, 200)).save(tmp_path / "huge.png")
    with pytest.raises(ImageInputError, match=r"huge\.png.*200×200"):
        load_image_file(tmp_path / "huge.png")


def test_too_many_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_input, "MAX_FILE_BYTES", 10)
    Image.new("RGB", (20, 20)).save(tmp_path / "f.png")
    with pytest.raises(ImageInputError, match=r"f\.png.*more than the limit"):
        load_image_file(tmp_path / "f.png")


def test_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty"):
        load_image_file(tmp_path / "e.png")
    with pytest.raises(ImageInputError, match="does not exist"):
        load_image_file(tmp_path / "missing.png")
