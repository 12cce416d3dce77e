"""Configs: presets, JSON round-trip, unknown keys and versions refused with a message."""

from __future__ import annotations

import json

import pytest
import torch

from engine.config import CONFIG_VERSION, PRESETS, FeatureAlignment, WeGenConfig, preset, wegen_7b
from engine.errors import ModelFolderError
from engine.model import WeGenModel


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name, tmp_path):
    cfg = preset(name)
    cfg.save(tmp_path / "config.json")
    assert WeGenConfig.load(tmp_path / "config.json") == cfg
    assert json.loads((tmp_path / "config.json").read_text())["version"] == CONFIG_VERSION


def test_unknown_key_is_named():
    data = preset("wegen-tiny").to_dict()
    data["llm"]["hiden_size"] = 3
    with pytest.raises(ValueError, match="unknown key 'llm.hiden_size'"):
        WeGenConfig.from_dict(data)


def test_missing_key_bad_enum_and_newer_version():
    data = preset("wegen-tiny").to_dict()
    del data["vision"]["width"]
    with pytest.raises(ValueError, match="missing key 'vision.width'"):
        WeGenConfig.from_dict(data)
    data = preset("wegen-tiny").to_dict()
    data["decoder"]["feature_alignment"] = "sideways"
    with pytest.raises(ValueError, match="decoder.feature_alignment must be one of"):
        WeGenConfig.from_dict(data)
    data = preset("wegen-tiny").to_dict() | {"version": CONFIG_VERSION + 1}
    with pytest.raises(ValueError, match="newer than this WeGen understands"):
        WeGenConfig.from_dict(data)


def test_corrupt_config_file_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ModelFolderError, match="config.json is not valid JSON"):
        WeGenConfig.load(path)


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        preset("wegen-tiny").llm.hidden_size = 3  # type: ignore[misc]


def test_7b_preset_has_the_official_dimensions():
    cfg = wegen_7b()
    with torch.device("meta"):
        model = WeGenModel(cfg)
    counts = model.parameter_counts()
    assert cfg.llm.vocab_size == 32330 and cfg.feature_dim == 1792 and cfg.vision.image_size == 448
    assert (
        cfg.decoder.image_size == 1024
        and cfg.decoder.feature_alignment is FeatureAlignment.OFFICIAL
    )
    assert counts["unet"] == 2_525_520_644  # the official stage-1 UNet (reference manifest)
    assert counts["vision"] == 4_350_208_256 - 64 * 1792  # EVA-E less the 64 dropped key biases
    assert counts["projectors"] == 2 * 4096 * 1792


def test_a_conv_stem_replaces_the_patch_embedding_and_round_trips(tmp_path):
    from dataclasses import replace

    from engine.vision import VisionEncoder

    tiny = preset("wegen-tiny")
    assert tiny.vision.conv_stem  # the preset trains with one; EVA-CLIP has none
    cfg = replace(tiny, vision=replace(tiny.vision, conv_stem=(8, 16, 32)))
    cfg.save(tmp_path / "config.json")
    assert WeGenConfig.load(tmp_path / "config.json") == cfg
    torch.manual_seed(0)
    plain = VisionEncoder(replace(tiny.vision, conv_stem=()))
    stem = VisionEncoder(cfg.vision)
    pixels = torch.rand(2, 3, 128, 128)
    assert stem(pixels).shape == plain(pixels).shape == (2, 64, tiny.vision.width)
    keys = set(stem.state_dict()) - set(plain.state_dict())
    assert keys and all(k.startswith("tower.patch_embed.proj.") for k in keys)
    # the stem sees neighbouring patches: a change in one patch reaches the next token
    bumped = pixels.clone()
    bumped[:, :, :, 7] += 0.5  # the last pixel column of the first 8-pixel patches
    grid = lambda enc, x: enc.tower.patch_embed(x)  # noqa: E731
    assert not torch.allclose(grid(stem, pixels)[:, 1], grid(stem, bumped)[:, 1])
    assert torch.allclose(grid(plain, pixels)[:, 1], grid(plain, bumped)[:, 1])
    with pytest.raises(ValueError, match="log2"):
        replace(tiny.vision, conv_stem=(8, 16))
