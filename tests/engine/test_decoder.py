"""The de-tokenizer: reproducible seeds, zero-feature CFG, previews, cancel, conditioning."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from engine.bundled import BUNDLED_DIR
from engine.config import TimeIds
from engine.decoder import Detokenizer, spatial_grid
from engine.errors import Cancelled
from engine.folder import load_model_folder
from engine.runtime import Runtime


@pytest.fixture
def features(model):
    return torch.randn(2, 64, model.config.feature_dim, generator=torch.Generator().manual_seed(0))


def test_same_seed_same_image_and_batch_equals_single(model, features):
    dec = model.decoder
    a = dec.sample(features, seeds=[1, 2], steps=3, guidance=3.0)
    b = dec.sample(features[1:], seeds=[2], steps=3, guidance=3.0)
    c = dec.sample(features[:1], seeds=[7], steps=3, guidance=3.0)
    assert a.shape == (2, 3, 128, 128) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a[1:], b, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(a[:1], c)


def test_guidance_one_is_one_unguided_pass(model, features, monkeypatch):
    dec = model.decoder
    seen = []
    real = dec.forward
    monkeypatch.setattr(dec, "forward", lambda x, *a: seen.append(x.shape[0]) or real(x, *a))
    dec.sample(features[:1], seeds=[0], steps=2, guidance=1.0)
    assert seen == [1, 1]
    seen.clear()
    dec.sample(features[:1], seeds=[0], steps=2, guidance=2.0)
    assert seen == [2, 2]


def test_guidance_negative_is_all_zero_features(model, features):
    dec = model.decoder
    t = torch.tensor([500])
    lat = torch.randn(1, model.config.vae.latent_channels, 16, 16)
    tid = dec.time_ids(1, 128)
    zero = dec(lat, t, torch.zeros_like(features[:1]), tid)
    # guided with scale 0 is exactly the negative branch
    g = dec.sample(features[:1], seeds=[3], steps=2, guidance=0.0)
    n = dec.sample(torch.zeros_like(features[:1]), seeds=[3], steps=2, guidance=1.0)
    torch.testing.assert_close(g, n, atol=1e-5, rtol=1e-4)
    assert zero.shape == lat.shape


def test_time_ids_follow_the_config(model):
    assert model.config.decoder.time_ids is TimeIds.ZEROS
    assert model.decoder.time_ids(2, 128).abs().sum() == 0


def test_step_callback_previews_and_cancel(model, features):
    steps, flag = [], threading.Event()

    def on_step(i, total, preview):
        steps.append((i, total, None if preview is None else tuple(preview.shape)))
        if i == 2:
            flag.set()

    with pytest.raises(Cancelled):
        model.decoder.sample(
            features[:1],
            seeds=[0],
            steps=6,
            guidance=2.0,
            callback=on_step,
            previews=True,
            cancel=flag.is_set,
        )
    side = model.config.latent_size  # a preview per latent position
    assert steps == [(1, 6, (1, 3, side, side)), (2, 6, (1, 3, side, side))]


def test_preview_is_a_least_squares_fit_of_flat_colours(model):
    dec = model.decoder
    dec._preview_map = None
    colour = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 64, 64)
    preview = dec.preview(dec.encode_pixels(colour))
    side = 64 // model.config.vae.downsample
    assert preview.shape == (1, 3, side, side) and 0 <= preview.min() <= preview.max() <= 1
    assert dec._preview_map.shape == (model.config.vae.latent_channels + 1, 3)


def test_bad_sizes_are_refused(model, features):
    down = model.config.vae.downsample
    with pytest.raises(ValueError, match=f"multiple of {down}"):
        model.decoder.sample(features[:1], seeds=[0], steps=1, guidance=1.0, size=128 + down // 2)
    with pytest.raises(ValueError, match=f"at least {down * 8}"):
        model.decoder.sample(features[:1], seeds=[0], steps=1, guidance=1.0, size=down * 4)
    with pytest.raises(ValueError, match="one seed per image"):
        model.decoder.sample(features, seeds=[0], steps=1, guidance=1.0)


def test_spatial_grid_puts_each_token_over_its_cell():
    tokens = torch.arange(64.0).view(1, 64, 1)  # token value = its row-major index
    grid = spatial_grid(tokens, 16)
    assert grid.shape == (1, 1, 16, 16)
    for row, col in [(0, 0), (0, 7), (3, 5), (7, 7)]:
        cell = grid[0, 0, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2]
        assert (cell == row * 8 + col).all()


def _swap_two_tokens(features):
    swapped = features.clone()
    swapped[:, [0, 63]] = features[:, [63, 0]]
    return swapped


def test_spatial_context_makes_the_unet_see_where_each_token_is(model, features):
    """Cross-attention and the pooled mean cannot tell token order apart; the spatial grid can."""
    assert model.config.unet.spatial_context
    official_layout = model.config.replace(
        unet=dataclasses.replace(model.config.unet, spatial_context=False)
    )
    lat = torch.randn(1, model.config.vae.latent_channels, 16, 16)
    t = torch.tensor([700])
    for dec, sees_order in [(model.decoder, True), (Detokenizer(official_layout), False)]:
        tid = dec.time_ids(1, 128)
        with torch.no_grad():
            a = dec(lat, t, features[:1], tid)
            b = dec(lat, t, _swap_two_tokens(features[:1]), tid)
        assert a.shape == lat.shape
        assert (not torch.allclose(a, b, atol=1e-5)) == sees_order


def _count_passes(dec, monkeypatch):
    seen = []
    real = dec.forward
    monkeypatch.setattr(dec, "forward", lambda x, *a: seen.append(x.shape[0]) or real(x, *a))
    return seen


def test_denoise_strength_runs_the_last_steps_from_the_noised_start(model, features, monkeypatch):
    dec = model.decoder
    init = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    plain = dec.sample(features[:1], seeds=[4], steps=10, guidance=1.0)
    # strength 1 ignores the starting image: the same pixels as drawing from noise
    whole = dec.sample(features[:1], seeds=[4], steps=10, guidance=1.0, init=init, strength=1.0)
    torch.testing.assert_close(whole, plain, atol=0, rtol=0)
    seen, totals = _count_passes(dec, monkeypatch), []
    dec.sample(
        features[:1],
        seeds=[4],
        steps=10,
        guidance=1.0,
        init=init,
        strength=0.3,
        callback=lambda i, total, _: totals.append((i, total)),
    )
    assert seen == [1, 1, 1] and totals == [(1, 3), (2, 3), (3, 3)]
    seen.clear()
    dec.sample(features[:1], seeds=[4], steps=10, guidance=1.0, init=init, strength=0.01)
    assert seen == [1]  # at least one step always runs


@pytest.fixture(scope="module")
def bundled_decoder():
    """The bundled model's trained de-tokenizer (a random VAE decodes every latent to grey)."""
    model, _ = load_model_folder(BUNDLED_DIR, Runtime(torch.device("cpu"), torch.float32))
    return model.decoder


def test_lower_denoise_strength_keeps_more_of_the_starting_image(bundled_decoder):
    dec = bundled_decoder
    init = torch.zeros(1, 3, 128, 128)
    init[:, 0, 32:96, 32:96] = 1.0  # a red square on black
    features = torch.zeros(1, 64, dec.config.feature_dim)  # nothing said about the scene
    with torch.no_grad():
        kept = dec.decode_latents(dec.encode_pixels(init))  # all the VAE can keep

    def distance(strength):
        out = dec.sample(features, seeds=[2], steps=20, guidance=1.0, init=init, strength=strength)
        return (out - kept).abs().mean().item()

    near, mid, far = distance(0.1), distance(0.5), distance(1.0)
    assert near < mid < far and near < 0.25 * far


def test_bad_starting_images_and_strengths_are_refused(model, features):
    dec = model.decoder
    with pytest.raises(ValueError, match="starting image must be 128x128"):
        dec.sample(features[:1], seeds=[0], steps=2, guidance=1.0, init=torch.rand(1, 3, 64, 64))
    for strength in (0.0, 1.5):
        with pytest.raises(ValueError, match="strength must be in"):
            dec.sample(features[:1], seeds=[0], steps=2, guidance=1.0, strength=strength)
