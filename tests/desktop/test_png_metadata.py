from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from desktop.fake_engine import scene
from desktop.png_metadata import (
    TRAINED_ALGORITHMIC_MEDIA,
    a1111_parameters,
    read_png_metadata,
    recipe_from_metadata,
    save_png_atomic,
)

RECORD = {
    "app_version": "0.1.0",
    "request": {
        "text": "a red fox, in the snow: at night",
        "task": "generate",
        "settings": {
            "seed": 1234,
            "steps": 20,
            "guidance": 7.5,
            "embedding_cfg": 1.5,
            "size": 128,
            "psr": True,
        },
        "attachments": [],
        "history": [],
    },
    "engine": {"model": "wegen-tiny", "settings": {"seed": 1234, "steps": 20, "guidance": 7.5}},
}


def test_a1111_chunk_is_read_by_sd_parsers(tmp_path: Path) -> None:
    sd_parsers = pytest.importorskip("sd_parsers", reason="pip install sd-parsers")
    path = save_png_atomic(scene("fox", 1, 64), tmp_path / "fox.png", RECORD)
    info = sd_parsers.ParserManager().parse(str(path))
    assert info is not None
    assert info.generator.name == "AUTOMATIC1111"
    [sampler] = info.samplers
    assert sampler.name == "WeGen"
    assert [p.value for p in sampler.prompts] == ["a red fox, in the snow: at night"]
    assert sampler.parameters["seed"] == "1234"
    assert sampler.parameters["steps"] == "20"
    assert sampler.parameters["cfg_scale"] == "7.5"
    assert sampler.model is not None and sampler.model.name == "wegen-tiny"


def test_wegen_chunk_and_xmp_round_trip(tmp_path: Path) -> None:
    path = save_png_atomic(scene("fox", 1, 64), tmp_path / "fox.png", RECORD)
    meta = read_png_metadata(path)
    assert meta.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert meta.wegen is not None
    assert meta.wegen["format"] == 1
    assert meta.wegen["request"] == RECORD["request"]
    recipe = recipe_from_metadata(meta)
    assert recipe is not None
    assert recipe.text == "a red fox, in the snow: at night"
    assert recipe.task == "generate"
    assert recipe.settings["seed"] == 1234 and recipe.settings["embedding_cfg"] == 1.5
    assert recipe.settings["psr"] is True


def test_non_latin_prompt_and_markup_survive(tmp_path: Path) -> None:
    record = {"request": {"text": '狐 <b>&amp; "quotes"', "settings": {"seed": 1}}, "engine": {}}
    path = save_png_atomic(scene("x", 1, 16), tmp_path / "x.png", record)
    meta = read_png_metadata(path)
    assert meta.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert meta.parameters is not None and meta.parameters.startswith("狐 <b>&amp;")
    recipe = recipe_from_metadata(meta)
    assert recipe is not None and recipe.text == record["request"]["text"]


def test_recipe_from_another_tools_a1111_text(tmp_path: Path) -> None:
    image = Image.new("RGB", (8, 8))
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(
        "parameters",
        "a castle\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 6, Seed: 42, Size: 512x512",
    )
    image.save(tmp_path / "a.png", pnginfo=info)
    recipe = recipe_from_metadata(read_png_metadata(tmp_path / "a.png"))
    assert recipe is not None
    assert recipe.text == "a castle"
    assert recipe.settings == {"seed": 42, "steps": 30, "guidance": 6.0, "size": 512}


def test_plain_png_has_no_recipe(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    meta = read_png_metadata(tmp_path / "plain.png")
    assert meta.wegen is None and meta.parameters is None and meta.digital_source_type is None
    assert recipe_from_metadata(meta) is None


def test_parameters_line_has_no_stray_separators() -> None:
    record = {
        "request": {"text": "p", "task": "x, y: z", "settings": {}},
        "engine": {"model": "a:b"},
    }
    line = a1111_parameters(record, 64, 64).split("\n")[-1]
    assert "Task: x y z" in line and "Model: a b" in line


def test_atomic_write_leaves_no_temp_file_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out" / "img.png"
    save_png_atomic(Image.new("RGB", (4, 4), "red"), target)
    save_png_atomic(Image.new("RGB", (4, 4), "blue"), target)
    assert [p.name for p in target.parent.iterdir()] == ["img.png"]
    with Image.open(target) as image:
        assert image.getpixel((0, 0)) == (0, 0, 255)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    save_png_atomic(Image.new("RGB", (4, 4), "red"), target)
    with pytest.raises((OSError, ValueError)):
        save_png_atomic(Image.new("RGB", (0, 0)), target)
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]
    with Image.open(target) as image:
        assert image.getpixel((0, 0)) == (255, 0, 0)


def test_denoising_strength_travels_in_the_a1111_line(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    record = {"request": {"text": "p", "settings": {"seed": 3, "steps": 9}}, "engine": {}}
    record["request"]["settings"]["denoise_strength"] = 0.6
    text = a1111_parameters(record, 64, 64)
    assert "Denoising strength: 0.6" in text
    info = PngInfo()
    info.add_text("parameters", text)  # what another tool writes: no WeGen chunk
    Image.new("RGB", (8, 8)).save(tmp_path / "other.png", pnginfo=info)
    recipe = recipe_from_metadata(read_png_metadata(tmp_path / "other.png"))
    assert recipe is not None and recipe.settings["denoise_strength"] == 0.6
    assert recipe.settings["steps"] == 9
