"""Stage 0's targets and objective: per-cell attributes and the dense per-token coverage."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from engine.config import wegen_tiny
from engine.vision import VisionEncoder
from training.data.render import object_coverage, shape_mask
from training.data.splits import sample_scene
from training.data.world import SHAPES, SIZE_FRACTION, ObjectSpec, Scene
from training.stages.vision import (
    CELL_ATTRIBUTES,
    HEADS,
    VisionObjective,
    make_vision_batch,
    pixels_of,
    target_features,
    token_targets,
)


@pytest.mark.parametrize("shape", SHAPES)
def test_coverage_is_the_silhouette_area_in_the_objects_patches(shape):
    obj = ObjectSpec(shape, "red", "large", "centre")
    cover = object_coverage(Scene((obj,)), 8)
    assert cover.shape == (1, 8, 8) and cover.min() >= 0 and cover.max() <= 1
    silhouette = shape_mask(shape, (256, 256), (128, 128), obj.diameter * 256)
    # Pillow fills edge pixels too, a few per cent of a thin or spiky shape at this size
    assert cover.mean() == pytest.approx(silhouette.mean(), rel=0.06)
    # a centred object covers the middle patches only, the square one fills its core entirely
    assert cover[0, :2].sum() == 0 and cover[0, 6:].sum() == 0
    if shape == "square":
        side = SIZE_FRACTION["large"] / 3 * 8  # in patches
        assert cover[0, 3:5, 3:5].min() == 1.0 and cover.sum() == pytest.approx(side**2, rel=0.02)


def test_token_targets_share_each_patch_between_background_and_the_objects_values():
    rng = random.Random(3)
    for _ in range(20):
        scene = sample_scene(rng, "train")
        targets = token_targets(scene)
        assert set(targets) == set(HEADS)
        cover = object_coverage(scene, 8).reshape(len(scene.objects), 64)
        for name, share in targets.items():
            assert share.shape == (64, 1 + HEADS[name])
            assert torch.allclose(share.sum(1), torch.ones(64), atol=1e-5)
            for obj, c in zip(scene.objects, cover, strict=True):
                mostly = int(np.argmax(c))  # the patch the object covers most is labelled with it
                value = getattr(obj, name)
                idx = 1 + CELL_ATTRIBUTES[name].index(value)
                assert share[mostly, idx] >= c[mostly] - 1e-5
        empty = cover.sum(0) == 0
        assert torch.all(targets["shape"][torch.from_numpy(empty), 0] == 1)


def test_the_token_head_learns_from_its_targets(keep_threads):
    torch.manual_seed(0)
    objective = VisionObjective(VisionEncoder(wegen_tiny().vision))
    batch = make_vision_batch(128, 8, seed=0, step=0, rank=0)
    assert batch["shape_tokens"].shape == (8, 64, 1 + len(SHAPES))
    loss, logged = objective(batch)
    for name in HEADS:
        assert 0.0 <= float(logged[f"{name}_token_acc"]) <= 1.0
    loss.backward()
    assert objective.token_head.weight.grad.abs().sum() > 0
    # the dense loss falls when only the token head and the tower train on one batch
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
    first = None
    for _ in range(15):
        optimizer.zero_grad()
        _, logged = objective(batch)
        dense = logged["token_loss"]
        first = dense.item() if first is None else first
        dense.backward()
        optimizer.step()
    assert dense.item() < 0.7 * first


def test_target_features_are_the_towers_reading_of_each_target_render_in_any_chunks():
    from training.data.tasks import plan_sample

    torch.manual_seed(0)
    vision = VisionEncoder(wegen_tiny().vision).eval()
    rng = random.Random(0)
    samples = [plan_sample("t2i", rng).rendered(64) for _ in range(5)]
    features = target_features(vision, samples)
    assert features.shape == (5, 64, wegen_tiny().vision.width)
    assert features.dtype == torch.float32 and not features.requires_grad
    with torch.no_grad():
        pixels = pixels_of([s.images[-1] for s in samples])
        whole = vision(vision.preprocess_pixels(pixels)).float()
    torch.testing.assert_close(features, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(target_features(vision, samples, chunk=2), features)
