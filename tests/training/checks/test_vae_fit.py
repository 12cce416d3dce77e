"""check_vae_fit: the VAE fitted to fixed scenes, their round trips scored as t2i_single."""

from __future__ import annotations

import json

import torch

from engine.bundled import BUNDLED_DIR
from training.checks.decoder import load_for_check, vae_ceilings
from training.checks.vae_fit import fit_vae, main


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


def test_decoder_only_fit_keeps_the_encoder_and_logs_the_edge_loss(keep_threads):
    model = load_for_check(str(BUNDLED_DIR), "cpu")
    vae = model.decoder.vae
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    rows = list(fit_vae(model, scenes=2, steps=2, every=2, batch=2, edge_weight=1.0,
                        decoder_only=True))  # fmt: skip
    assert rows[-1]["edge"] > 0
    after = vae.state_dict()
    encoder = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in before if k.startswith("decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)


def test_the_edge_term_scores_blurred_edges_that_pixel_losses_barely_see():
    from diffusers import AutoencoderKL

    from training.stages.decoder import VAEObjective, image_gradients

    stripes = torch.zeros(1, 3, 16, 16)
    stripes[..., ::2, :] = 1.0
    dx, dy = image_gradients(stripes)
    assert dx.shape == (1, 3, 16, 15) and dy.shape == (1, 3, 15, 16)
    assert dx.abs().sum() == 0 and dy.abs().min() == 1
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=4,
    ).eval()  # fmt: skip
    batch = {"pixels": torch.rand(2, 3, 16, 16), "noise": torch.zeros(2, 4, 16, 16)}
    plain, logs = VAEObjective(vae)(batch)
    sharp, sharp_logs = VAEObjective(vae, edge_weight=2.0)(batch)
    assert "edge" not in logs and sharp_logs["edge"] > 0
    torch.testing.assert_close(sharp - plain, 2.0 * sharp_logs["edge"])
