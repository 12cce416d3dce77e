"""The stage-0 shape-learning experiment runs for either tower and readout."""

from __future__ import annotations

import json

import pytest
import torch

from training.checks.shape_learning import ConvTower, main, shape_learning
from training.stages.vision import cell_features


@pytest.mark.parametrize(("tower", "readout"), [("vit", "mean"), ("cnn", "max"), ("cnn", "dense")])
def test_the_curve_has_one_point_per_window(tower, readout):
    curve = shape_learning(tower, readout, steps=5, batch_size=3, every=2)["curve"]
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


def test_the_dense_readout_trains_per_token_and_the_probe_reads_the_tower(keep_threads):
    result = shape_learning("vit", "dense", steps=3, batch_size=4, every=3, probe=12)
    assert result["readout"] == "dense" and len(result["curve"]) == 1
    assert set(result["probe_shape"]) == {"chance", "train", "heldout"}
    with pytest.raises(ValueError, match="ViT"):
        shape_learning("cnn", "dense", steps=1, batch_size=2, probe=12)


def test_the_vit_can_take_a_conv_stem_and_bad_stems_are_refused(capsys, keep_threads):
    result = shape_learning("vit", "mean", steps=2, batch_size=2, every=1, stem=(8, 8, 8))
    assert len(result["curve"]) == 2
    main(["--conv-stem", "none", "--steps", "1", "--batch", "2", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out)["curve"]
    for bad in (
        ["--conv-stem", "8,8"],
        ["--conv-stem", "a"],
        ["--tower", "cnn", "--conv-stem", "8,8,8"],
    ):
        with pytest.raises(SystemExit):
            main(bad)
        assert "conv-stem" in capsys.readouterr().err
