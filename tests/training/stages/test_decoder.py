"""A run moved to the spatial context keeps its UNet: new input channels start at zero."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.model import WeGenModel
from engine.testing import random_model
from training.stages.decoder import CONV_IN, widen_unet_input


def test_widened_unet_draws_what_the_narrow_one_did_and_then_can_learn_the_grid():
    wide = random_model(seed=0)
    assert wide.config.unet.spatial_context
    narrow_config = wide.config.replace(
        unet=dataclasses.replace(wide.config.unet, spatial_context=False)
    )
    torch.manual_seed(1)
    narrow = WeGenModel(narrow_config)
    state = narrow.state_dict()
    in_channels = wide.decoder.unet.config.in_channels
    assert state[CONV_IN].shape[1] < in_channels
    with pytest.raises(RuntimeError, match="conv_in"):
        wide.load_state_dict(state)
    widened = widen_unet_input(state, in_channels)
    wide.load_state_dict(widened)
    assert widened[CONV_IN].shape[1] == in_channels
    assert state[CONV_IN].shape[1] < in_channels  # the input state is left as it was

    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 64, wide.config.feature_dim, generator=g)
    lat = torch.randn(2, wide.config.vae.latent_channels, 16, 16, generator=g)
    t, tid = torch.tensor([10, 900]), wide.decoder.time_ids(2, 128)
    with torch.no_grad():
        before = narrow.decoder(lat, t, features, tid)
        after = wide.decoder(lat, t, features, tid)
    torch.testing.assert_close(after, before)
    # the new channels get gradients, so training can start reading the grid
    wide.decoder.unet.conv_in.weight.requires_grad_(True)
    wide.decoder(lat, t, features, tid).pow(2).mean().backward()
    grad = wide.decoder.unet.conv_in.weight.grad[:, wide.config.vae.latent_channels :]
    assert grad.abs().sum() > 0


def test_a_state_that_already_fits_is_returned_as_it_is():
    model = random_model(seed=0)
    state = model.state_dict()
    assert widen_unet_input(state, model.decoder.unet.config.in_channels) is state


def test_a_unet_batch_carries_the_transformed_features_and_the_same_draws(keep_threads):
    from training.stages.decoder import encode_scenes, make_unet_batch, render_batch

    model = random_model(seed=0)
    decoder, vision = model.decoder, model.vision
    pixels = render_batch(model.config.decoder.image_size, 3, "unet", 0, 0, 0)

    def batch(transform=None):
        g = torch.Generator().manual_seed(5)
        return make_unet_batch(decoder, vision, pixels, g, 0.1, 0.0, transform=transform)

    plain, shifted = batch(), batch(lambda features: features + 1.0)
    torch.testing.assert_close(shifted["features"], plain["features"] + 1.0)
    for key in ("latents", "timesteps", "noise"):
        torch.testing.assert_close(shifted[key], plain[key])
    _, true = encode_scenes(decoder, vision, pixels)
    assert plain["features"].shape == true.shape
    assert not torch.allclose(plain["features"], true)  # the plain batch's conditions are noised
