"""The stage-0 check: linear probes of the vision tower's features."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from engine.config import wegen_tiny
from engine.testing import make_random_model_folder
from engine.vision import VisionEncoder
from training.checks.vision import check_vision, fit_probe, main, probe_accuracy
from training.model_card import card
from training.stages.vision import cell_features


def test_a_probe_reads_a_linearly_encoded_attribute_and_not_a_random_one():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (400,), generator=g)
    codes = torch.randn(5, 32, generator=g)
    x = codes[y] + 0.3 * torch.randn(400, 32, generator=g)
    weights = fit_probe(x[:300], y[:300], 5)
    assert probe_accuracy(weights, x[300:], y[300:]) == 1.0
    unrelated = torch.randint(0, 5, (400,), generator=g)
    weights = fit_probe(x[:300], unrelated[:300], 5)
    assert probe_accuracy(weights, x[300:], unrelated[300:]) < 0.45  # chance is 0.2


def test_cell_features_average_the_grid_over_the_three_by_three_scene_cells():
    feats = torch.zeros(1, 64, 2)
    feats[0, 0, 0] = 9.0  # top-left token: only the top-left cell sees it
    feats[0, 63, 1] = 9.0  # bottom-right token
    cells = cell_features(feats)
    assert cells.shape == (1, 9, 2)
    assert cells[0, 0, 0] > 0 and cells[0, 1:, 0].abs().sum() == 0
    assert cells[0, 8, 1] > 0 and cells[0, :8, 1].abs().sum() == 0


def test_even_an_untrained_tower_carries_colour_and_background(keep_threads):
    torch.manual_seed(0)
    # EVA's linear patch embedding (the preset's conv stem is not linear in the pixels)
    vision = VisionEncoder(replace(wegen_tiny().vision, conv_stem=()))
    result = check_vision(vision, n=120, n_eval=40)
    for name in ("shape", "colour", "size", "pattern", "position", "background", "style"):
        assert set(result[name]) == {"chance", "train", "heldout"}
        assert 0.0 < result[name]["chance"] < 1.0
    # patch embeddings are linear in the pixels: plain colour survives random layers
    assert result["colour"]["train"] > result["colour"]["chance"] + 0.3
    assert result["background"]["heldout"] > 0.9
    # its (random, small) position embeddings already say a little of which cell a feature is in
    assert result["position"]["heldout"] > result["position"]["chance"] + 0.1


def test_the_command_reads_a_model_folder_and_refuses_bad_input(tmp_path, capsys, keep_threads):
    folder = make_random_model_folder(tmp_path / "model")
    main(["--model", str(folder), "--n", "12", "--n-eval", "4", "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 12 and result["n_eval"] == 4
    # the model card shows it as a table
    text = card([], None, folder, checks={"vision": result})
    shape = result["shape"]
    row = f"| shape | {shape['chance']:.2f} | {shape['train']:.2f} | {shape['heldout']:.2f} |"
    assert row in text and "fitted on 12 training scenes" in text
    with pytest.raises(SystemExit, match="n >= 10"):
        main(["--model", str(folder), "--n", "3", "--device", "cpu"])
    with pytest.raises(SystemExit, match="cannot load"):
        main(["--model", str(tmp_path / "missing"), "--device", "cpu"])
