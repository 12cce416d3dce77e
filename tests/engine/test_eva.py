"""engine.eva is timm's Eva, as engine.vision configures it: same keys, same features.

timm is a development dependency only (it imports torchvision, which has no CPU build for
x86-64 Linux on PyPI); here it is the reference the hand-written tower is held to.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from engine.eva import Eva

timm_eva = pytest.importorskip("timm.models.eva")

SIZES = dict(image_size=32, patch_size=8, width=48, depth=3, num_heads=3, mlp_ratio=8 / 3)


def _timm(post_norm: bool) -> nn.Module:
    return timm_eva.Eva(
        img_size=SIZES["image_size"],
        patch_size=SIZES["patch_size"],
        embed_dim=SIZES["width"],
        depth=SIZES["depth"],
        num_heads=SIZES["num_heads"],
        mlp_ratio=SIZES["mlp_ratio"],
        qkv_bias=True,
        use_post_norm=post_norm,
        use_post_transformer_norm=False,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_classes=0,
        global_pool="token",
    )


@pytest.mark.parametrize("post_norm", [True, False])
def test_same_keys_and_features_as_timm(post_norm):
    torch.manual_seed(0)
    reference = _timm(post_norm).eval()
    ours = Eva(**SIZES, post_norm=post_norm, eps=1e-6).eval()
    # every weight random, biases and norms included, so that a wrong place shows
    state = {k: torch.randn_like(v) * 0.2 for k, v in reference.state_dict().items()}
    reference.load_state_dict(state)
    assert ours.load_state_dict(state, strict=True)  # same names, nothing missing or left over
    x = torch.randn(2, 3, SIZES["image_size"], SIZES["image_size"])
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference.forward_features(x), rtol=1e-5, atol=1e-5)
    assert ours.num_prefix_tokens == reference.num_prefix_tokens


def test_key_bias_is_zero_and_not_saved():
    ours = Eva(**SIZES, post_norm=True, eps=1e-6)
    assert not any(k.endswith("k_bias") for k in ours.state_dict())
    assert torch.count_nonzero(ours.blocks[0].attn.k_bias) == 0


def test_initialisation_matches_timm_statistics():
    """A tower trained from nothing starts as timm's did: the same per-tensor spread."""
    torch.manual_seed(0)
    reference = _timm(True).state_dict()
    ours = Eva(**{**SIZES, "depth": 3}, post_norm=True, eps=1e-6).state_dict()
    for key, tensor in reference.items():
        if key.startswith("patch_embed"):
            continue  # torch's Conv2d default in both
        assert ours[key].std().item() == pytest.approx(tensor.std().item(), rel=0.25, abs=1e-6), key
