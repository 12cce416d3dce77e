"""`GenerationSettings.validate`: one table of ranges, every bad value refused with what is allowed."""

from __future__ import annotations

import math

import pytest
import torch

from engine import api
from engine.errors import SettingsError, WeGenError

NAN, INF = math.nan, math.inf


def test_defaults_and_the_ends_of_every_range_are_allowed():
    assert api.GenerationSettings().validate() == api.GenerationSettings()
    for name, allowed in api.SETTING_RANGES.items():
        for value in (allowed.low, allowed.high):
            value = int(value) if allowed.integer else float(value)
            api.GenerationSettings(**{name: value}).validate()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("guidance", NAN, "guidance must be a number from 1 to 20"),
        ("guidance", INF, "guidance must be a number from 1 to 20"),
        ("guidance", -INF, "guidance must be a number from 1 to 20"),
        ("guidance", 0.5, "(1 = off)"),
        ("embedding_cfg", NAN, "embedding CFG scale must be a number from 1 to 10"),
        ("temperature", NAN, "temperature must be a number from 0 to 5"),
        ("temperature", INF, "temperature must be a number from 0 to 5"),
        ("temperature", -0.1, "(0 = greedy)"),
        ("top_p", 0.0, "top_p must be a number from 0.01 to 1"),
        ("top_p", NAN, "top_p"),
        ("denoise_strength", NAN, "redraw (denoise) strength must be a number from 0.05 to 1"),
        ("denoise_strength", 0.0, "from 0.05 to 1"),
        ("steps", 0, "steps must be a whole number from 1 to 1000"),
        ("steps", 1001, "from 1 to 1000"),
        ("steps", 2.5, "whole number"),
        ("steps", True, "whole number"),
        ("seed", 2**70, "seed must be a whole number from 0 to 2147483647, or none for a random"),
        ("seed", -1, "from 0 to 2147483647"),
        ("seed", 2**31, "from 0 to 2147483647"),
        ("size", 0, "image size must be a whole number from 16 to 4096"),
        ("max_new_tokens", 0, "max_new_tokens"),
        ("psr", 1, "psr must be true or false"),
        ("previews", None, "previews must be true or false"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting_and_the_range(field, value, says):
    with pytest.raises(SettingsError) as caught:
        api.GenerationSettings(**{field: value}).validate()
    assert says in str(caught.value)
    assert isinstance(caught.value, WeGenError) and repr(value) in str(caught.value)


def test_every_seed_in_range_is_one_torch_generators_take():
    for seed in (api.SEED_RANGE.low, api.SEED_RANGE.high):
        torch.Generator().manual_seed(int(seed) + 3)  # + a reply's image index


def test_the_table_names_only_real_fields():
    fields = set(api.GenerationSettings.__dataclass_fields__)
    assert set(api.SETTING_RANGES) <= fields
    assert all(r.low <= r.high for r in api.SETTING_RANGES.values())


def test_the_engine_refuses_bad_settings_before_any_work(engine):
    events = []
    engine.run(
        api.Request(api.Turn.user("a red circle"), settings=api.GenerationSettings(guidance=NAN)),
        events.append,
    )
    assert len(events) == 1 and isinstance(events[0], api.Failed)
    assert "guidance must be a number from 1 to 20" in events[0].message
