"""The bundled model: present, valid, small, documented, and what the README's headless command
uses on a fresh machine."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from engine.bundled import BUNDLED_DIR
from engine.config import WeGenConfig, wegen_tiny
from engine.folder import verify_model_folder

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout the tests run in

MAX_BYTES = 40 * 1024 * 1024


def test_bundled_model_is_a_valid_small_wegen_tiny():
    assert verify_model_folder(BUNDLED_DIR) == []
    config = WeGenConfig.load(BUNDLED_DIR / "config.json")
    preset = wegen_tiny()
    # the preset's architecture (its conv stem included); only the measured latent scale differs
    assert config.llm == preset.llm
    assert config.vision == preset.vision and config.vision.conv_stem
    assert config.unet == preset.unet and config.decoder == preset.decoder
    assert config.scheduler == preset.scheduler
    assert config.vae == dataclasses.replace(preset.vae, scaling_factor=config.vae.scaling_factor)
    size = sum(f.stat().st_size for f in BUNDLED_DIR.iterdir() if f.is_file())
    assert size <= MAX_BYTES


def test_bundled_model_card_has_training_and_evaluation():
    text = (BUNDLED_DIR / "README.md").read_text(encoding="utf-8")
    for heading in (
        "## Intended use and limits",
        "## Training data",
        "## Training procedure",
        "## Evaluation",
        "## How to reproduce",
    ):
        assert heading in text
    assert "| t2i_single |" in text and "| psr_diversity_ratio |" in text


def test_readme_headless_command_uses_the_bundled_model(tmp_path):
    """`wegen-cli generate ...` with no --model, as the README's first command shows it."""
    out = tmp_path / "out.png"
    env = {k: v for k, v in os.environ.items() if k != "WEGEN_MODEL"}
    env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="2")
    cmd = [sys.executable, "-m", "engine.cli", "generate", "a large red circle at the top left"]
    done = subprocess.run(
        [*cmd, "--seed", "1", "-o", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    image = Image.open(out)
    assert image.size == (128, 128)
    meta = json.loads(image.text["wegen"])
    assert meta["model"] == "wegen-tiny" and meta["settings"]["seed"] == 1
    assert np.asarray(image.convert("L")).std() > 1.0  # a drawing, not a flat field
