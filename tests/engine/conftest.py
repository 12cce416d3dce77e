"""Shared fixtures: one seeded random tiny model per session (the real architecture, small)."""

from __future__ import annotations

import pytest
import torch

from engine.chat_engine import WeGenEngine
from engine.runtime import Runtime
from engine.testing import make_random_model_folder, random_model, tiny_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def model():
    return random_model(seed=0)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory):
    return make_random_model_folder(tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture
def engine(model, tokenizer):
    eng = WeGenEngine()
    eng.attach(model, tokenizer, Runtime(torch.device("cpu"), torch.float32), "tiny-random")
    return eng
