"""check_vae_fit: the VAE fitted to fixed scenes, their round trips scored as t2i_single."""

from __future__ import annotations

import json

import torch

from engine.bundled import BUNDLED_DIR
from training.check_decoder import load_for_check, vae_ceilings
from training.check_vae_fit import fit_vae, main


def test_fit_starts_at_the_vae_ceiling_and_trains_the_vae(keep_threads):
    model = load_for_check(str(BUNDLED_DIR), "cpu")
    ceiling = vae_ceilings(model, n=4, seed=1)["t2i_single"]["vae"]
    before = {k: v.clone() for k, v in model.decoder.vae.state_dict().items()}
    unet = {k: v.clone() for k, v in model.decoder.unet.state_dict().items()}
    rows = list(fit_vae(model, scenes=4, steps=3, every=2, batch=2))
    assert [r["step"] for r in rows] == [0, 2, 3]
    # step 0 scores the same scenes the same way as the evaluation's own ceiling
    assert rows[0]["share"] == ceiling
    assert all(0 <= r["share"] <= 1 for r in rows) and rows[-1]["l1"] > 0
    after = model.decoder.vae.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(v, model.decoder.unet.state_dict()[k]) for k, v in unet.items())


def test_command_prints_a_json_line_per_check(capsys, keep_threads):
    main(["--model", str(BUNDLED_DIR), "--scenes", "2", "--steps", "1", "--device", "cpu"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["step"] for row in lines] == [0, 1]
