"""The stage-2 check: the LLM's generated features against the tower's, and what probes read."""

from __future__ import annotations

import json

import pytest
import torch

from engine.testing import make_random_model_folder
from training.checks.generation import agreement, main, t2i_samples
from training.model_card import card


def test_agreement_tells_a_copy_from_a_shrunk_or_an_unrelated_prediction():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(4, 64, 16, generator=g)
    assert agreement(true.clone(), true) == {"cosine": 1.0, "relative_mse": 0.0, "norm_ratio": 1.0}
    half = agreement(true * 0.5, true)  # regressed towards zero: right direction, too short
    assert half["cosine"] == pytest.approx(1.0) and half["norm_ratio"] == pytest.approx(0.5)
    assert half["relative_mse"] == pytest.approx(0.25, abs=1e-3)
    other = agreement(torch.randn(4, 64, 16, generator=g), true)
    assert abs(other["cosine"]) < 0.1 and other["relative_mse"] > 1.5


def test_requests_are_half_one_object_half_two_and_from_the_asked_split():
    samples = t2i_samples(5, 0, "heldout", 32)
    assert [len(s.target_scenes[-1].objects) for s in samples] == [1, 1, 1, 2, 2]
    assert {s.split for s in samples} == {"heldout"}
    assert {s.split for s in t2i_samples(2, 0, "train", 32)} == {"train"}


def test_the_command_reads_a_model_folder_and_refuses_bad_input(tmp_path, capsys, keep_threads):
    folder = make_random_model_folder(tmp_path / "model")
    main(["--model", str(folder), "--n", "2", "--n-fit", "12", "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and result["split"] == "heldout"
    assert -1 <= result["cosine"] <= 1 and result["relative_mse"] >= 0 < result["norm_ratio"]
    forced = result["teacher_forced"]
    assert set(forced) == {"cosine", "relative_mse", "norm_ratio"} and forced["relative_mse"] >= 0
    names = {"shape", "colour", "size", "pattern", "position", "background", "style"}
    for key in ("probe_true", "probe_generated"):
        assert set(result[key]) == names
        assert all(0 <= v <= 1 for v in result[key].values())
    # the model card shows it beside the true features' probes
    text = card([], None, folder, checks={"generation": result})
    shape = f"| shape | {result['probe_true']['shape']:.2f} | "
    assert shape + f"{result['probe_generated']['shape']:.2f} |" in text
    assert "on 2 held-out text-to-image requests" in text
    with pytest.raises(SystemExit):
        main(["--model", str(folder), "--n", "0"])
    with pytest.raises(SystemExit, match="cannot load"):
        main(["--model", str(tmp_path / "missing"), "--device", "cpu"])
