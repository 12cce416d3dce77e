"""The stage-0 shape-learning experiment runs for either tower and readout."""

from __future__ import annotations

import json

import pytest
import torch

from training.shape_learning import ConvTower, main, shape_learning
from training.stage0_vision import cell_features


@pytest.mark.parametrize(("tower", "readout"), [("vit", "mean"), ("cnn", "max")])
def test_the_curve_has_one_point_per_window(tower, readout):
    curve = shape_learning(tower, readout, steps=5, batch_size=3, every=2)
    assert [p["step"] for p in curve] == [2, 4, 5]
    assert all(0.0 <= p["shape_accuracy"] <= 1.0 for p in curve)


def test_the_conv_tower_gives_the_grid_the_readout_expects():
    feats = ConvTower(192)(torch.rand(2, 3, 128, 128))
    assert feats.shape == (2, 64, 192)


def test_max_readout_keeps_the_strongest_token_of_each_cell():
    feats = torch.zeros(1, 64, 1)
    feats[0, 0, 0] = 4.0  # one top-left token
    assert cell_features(feats, "max")[0, 0, 0] == 4.0
    assert cell_features(feats, "mean")[0, 0, 0] < 1.0  # averaged with the cell's other tokens
    with pytest.raises(ValueError, match="mean"):
        cell_features(feats, "median")


def test_the_command_prints_json_and_refuses_bad_input(capsys):
    main(["--tower", "cnn", "--steps", "2", "--batch", "2", "--every", "1", "--device", "cpu"])
    out = json.loads(capsys.readouterr().out)
    assert out["tower"] == "cnn" and len(out["curve"]) == 2
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
