"""The composer's setting controls offer exactly what the engine accepts."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from desktop.composer import Composer
from engine.api import SETTING_RANGES


def test_controls_use_the_engine_ranges(qtbot: QtBot) -> None:
    composer = Composer()
    qtbot.addWidget(composer)
    boxes = {
        "seed": composer.seed,
        "steps": composer.steps,
        "guidance": composer.guidance,
        "embedding_cfg": composer.embedding_cfg,
        "denoise_strength": composer.denoise_strength,
    }
    for name, box in boxes.items():
        allowed = SETTING_RANGES[name]
        assert (box.minimum(), box.maximum()) == (allowed.low, allowed.high), name
    for _ in range(20):
        settings = composer.settings()  # a fresh random seed each time
        assert settings.validate() == settings  # the engine accepts what the app sends
        for name in boxes:
            assert SETTING_RANGES[name].allows(getattr(settings, name)), name
