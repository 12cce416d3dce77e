from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from desktop.fake_engine import scene
from engine.png_metadata import (
    TRAINED_ALGORITHMIC_MEDIA,
    a1111_parameters,
    read_png_metadata,
    recipe_from_metadata,
    save_png_atomic,
)

PROMPT = "a red fox, in the snow: at night"
SETTINGS = {
    "seed": 1234,
    "steps": 20,
    "guidance": 7.5,
    "embedding_cfg": 1.5,
    "size": 128,
    "psr": True,
}

# what ImageDone.metadata holds (format 2 adds the app's keys, nothing repeated)
RECORD = {
    "prompt": PROMPT,
    "model_prompt": PROMPT,
    "psr_rewrite": None,
    "task": "generate",
    "settings": SETTINGS,
    "attachments": [],
    "history_turns": 0,
    "model": "wegen-tiny",
    "app_version": "0.1.0",
    "request_id": "abc123",
    "history": [],
}

# the app's record before format 2, as it was written (request and engine nested)
FORMAT_1 = {
    "app_version": "0.1.0",
    "request": {
        "text": PROMPT,
        "task": "generate",
        "settings": SETTINGS,
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
    assert meta.wegen == {**RECORD, "format": 2}
    recipe = recipe_from_metadata(meta)
    assert recipe is not None
    assert recipe.text == "a red fox, in the snow: at night"
    assert recipe.task == "generate"
    assert recipe.settings["seed"] == 1234 and recipe.settings["embedding_cfg"] == 1.5
    assert recipe.settings["psr"] is True


def test_non_latin_prompt_and_markup_survive(tmp_path: Path) -> None:
    record = {"prompt": '狐 <b>&amp; "quotes"', "settings": {"seed": 1}}
    path = save_png_atomic(scene("x", 1, 16), tmp_path / "x.png", record)
    meta = read_png_metadata(path)
    assert meta.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert meta.parameters is not None and meta.parameters.startswith("狐 <b>&amp;")
    recipe = recipe_from_metadata(meta)
    assert recipe is not None and recipe.text == record["prompt"]


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
    record = {"prompt": "p", "task": "x, y: z", "settings": {}, "model": "a:b"}
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

    record = {"prompt": "p", "settings": {"seed": 3, "steps": 9}}
    record["settings"]["denoise_strength"] = 0.6
    text = a1111_parameters(record, 64, 64)
    assert "Denoising strength: 0.6" in text
    info = PngInfo()
    info.add_text("parameters", text)  # what another tool writes: no WeGen chunk
    Image.new("RGB", (8, 8)).save(tmp_path / "other.png", pnginfo=info)
    recipe = recipe_from_metadata(read_png_metadata(tmp_path / "other.png"))
    assert recipe is not None and recipe.settings["denoise_strength"] == 0.6
    assert recipe.settings["steps"] == 9


def _old_png(path: Path, record: dict) -> Path:
    """A PNG as the app wrote it before format 2: the record under "request"/"engine", the
    A1111 line and the XMP packet from the request's text, by the old code path's layout."""
    from PIL.PngImagePlugin import PngInfo

    from engine.png_metadata import xmp_packet

    info = PngInfo()
    info.add_text(
        "parameters",
        f"{record['request']['text']}\nSteps: 20, Sampler: WeGen, CFG scale: 7.5, Seed: 1234, "
        "Size: 64x64, Model: wegen-tiny, Embedding CFG: 1.5, Denoising strength: 1.0, PSR: on, "
        "Task: generate, Version: WeGen 0.1.0",
    )
    info.add_itxt("wegen", json.dumps({"format": 1, **record}), zip=True)
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(record["request"]["text"]))
    scene("fox", 1, 64).save(path, format="PNG", pnginfo=info)
    return path


def test_a_format_1_png_reads_as_format_2(tmp_path: Path) -> None:
    old = {
        **FORMAT_1,
        "request": {**FORMAT_1["request"], "rewrite": "A fox.", "request_id": "r1"},
        "engine": {
            **FORMAT_1["engine"],
            "prompt": FORMAT_1["request"]["text"],
            "psr_rewrite": None,
            "task": "generate",
            "history_turns": 0,
            "runtime": {"device": "cpu", "precision": "fp32", "backend": "eager"},
        },
    }
    path = _old_png(tmp_path / "old.png", old)
    meta = read_png_metadata(path)
    assert meta.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert meta.wegen is not None
    assert meta.wegen["format"] == 2 and "request" not in meta.wegen and "engine" not in meta.wegen
    assert meta.wegen["prompt"] == "a red fox, in the snow: at night"
    assert meta.wegen["psr_rewrite"] == "A fox."
    assert meta.wegen["app_version"] == "0.1.0" and meta.wegen["request_id"] == "r1"
    assert meta.wegen["history"] == [] and meta.wegen["runtime"]["backend"] == "eager"
    # the engine's resolved settings win, the request's fill the gaps
    assert meta.wegen["settings"] == {
        **FORMAT_1["request"]["settings"],
        **FORMAT_1["engine"]["settings"],
    }
    recipe = recipe_from_metadata(meta)
    assert recipe is not None
    assert recipe.text == "a red fox, in the snow: at night" and recipe.task == "generate"
    assert recipe.settings["seed"] == 1234 and recipe.settings["embedding_cfg"] == 1.5
    assert recipe.settings["psr"] is True


def test_a_format_1_png_with_only_a_request_keeps_its_recipe(tmp_path: Path) -> None:
    path = _old_png(tmp_path / "old.png", FORMAT_1)  # an engine record without the prompt
    recipe = recipe_from_metadata(read_png_metadata(path))
    assert recipe is not None and recipe.text == "a red fox, in the snow: at night"
    assert recipe.task == "generate" and recipe.settings["size"] == 128


def test_saving_a_format_1_record_writes_format_2(tmp_path: Path) -> None:
    path = save_png_atomic(scene("fox", 1, 64), tmp_path / "fox.png", FORMAT_1)
    with Image.open(path) as image:
        stored = json.loads(image.text["wegen"])
    assert stored["format"] == 2 and "request" not in stored
    assert stored["prompt"] == "a red fox, in the snow: at night"


def test_the_cli_writes_the_same_three_chunks(tmp_path: Path) -> None:
    from engine.api import ImageDone
    from engine.cli import save_png

    done = ImageDone("r", 0, scene("fox", 1, 64), dict(RECORD))
    path = save_png(done, tmp_path / "cli.png")
    meta = read_png_metadata(path)
    assert meta.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert meta.wegen == {**RECORD, "format": 2}
    assert meta.parameters == a1111_parameters(RECORD, 64, 64)
    assert meta.parameters.startswith("a red fox, in the snow: at night\nSteps: 20")
