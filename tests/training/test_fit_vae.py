"""fit_vae's object-weighted loss: where the objects are, and that their pixels count more."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from training.data.render import render_scene
from training.data.world import ObjectSpec, Scene
from training.fit_vae import crops_batch, object_mask
from training.stages.decoder import VAEObjective


def test_the_object_mask_covers_the_object_and_its_rim_only():
    circle = ObjectSpec("circle", "red", "small", "top left")
    scene = Scene((circle,), background="blue gradient", style="outline")
    tight, rimmed = object_mask(scene, 128, margin=0), object_mask(scene, 128)
    assert tight.shape == (1, 128, 128)
    ys, xs = torch.nonzero(tight[0], as_tuple=True)
    assert ys.max() < 128 // 3 and xs.max() < 128 // 3, "the object is in the top-left cell"
    assert 0.002 < tight.mean() < 0.05
    assert bool((rimmed >= tight).all()) and rimmed.sum() > tight.sum()  # the margin widens it
    bare = object_mask(Scene((), background="blue gradient", style="outline"), 128)
    assert bare.sum() == 0
    # a render the caller already made gives the same mask; a degraded one would not be clean
    torch.testing.assert_close(object_mask(scene, 128, render=render_scene(scene, 128)), rimmed)


def test_crops_carry_their_weights():
    pixels, weight = crops_batch(128, 128, 2, 1, seed=0, step=3, degraded=0.0, object_weight=9.0)
    assert pixels.shape == (2, 3, 128, 128) and weight.shape == (2, 1, 128, 128)
    assert set(weight.unique().tolist()) == {1.0, 10.0}
    same, ones = crops_batch(128, 128, 2, 1, seed=0, step=3, degraded=0.0)
    torch.testing.assert_close(same, pixels)
    assert bool((ones == 1).all())


def test_weighted_pixels_count_more_and_unit_weights_change_nothing():
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=4,
    ).eval()  # fmt: skip
    pixels = torch.rand(2, 3, 16, 16)
    noise = torch.zeros(2, 4, 16, 16)
    objective = VAEObjective(vae, edge_weight=1.0, sample_posterior=False)
    with torch.no_grad():
        plain, plain_logs = objective({"pixels": pixels, "noise": noise})
        unit, _ = objective({"pixels": pixels, "noise": noise, "weight": torch.ones(2, 1, 16, 16)})
        torch.testing.assert_close(unit, plain)
        recon = vae.decode(vae.encode(pixels * 2 - 1).latent_dist.mean).sample
        error = (recon - (pixels * 2 - 1)).abs().mean(1, keepdim=True)  # (2, 1, 16, 16)
        worst = (error >= error.flatten().quantile(0.9)).float()  # the worst tenth of pixels
        _, logs = objective({"pixels": pixels, "noise": noise, "weight": 1 + 50 * worst})
    assert logs["l1"] > 1.5 * plain_logs["l1"]  # the weighted pixels dominate
    assert logs["edge"] != plain_logs["edge"]
