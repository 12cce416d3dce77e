"""Where the bundled model lives, and what to tell a user when there is none."""

from __future__ import annotations

import os
from pathlib import Path

import wegen_resources
from engine.errors import ModelFolderError

ENV_MODEL = "WEGEN_MODEL"
BUNDLED_NAME = "wegen-tiny"
#: package data (`wegen_resources`): in a checkout, an installed wheel and a frozen bundle alike
BUNDLED_DIR = wegen_resources.path("models", BUNDLED_NAME)

HOW_TO_GET_A_MODEL = (
    "Get a model in one of three ways: restore the bundled one (install WeGen again; in a "
    "checkout, `git checkout -- wegen_resources/models/wegen-tiny`) or train it again with "
    "`python -m training.reproduce` (about an hour and a half on 2 CPU cores; "
    "`bash training/train_gpu.sh` on one GPU); "
    "convert the official WeGen checkpoint once with `wegen-cli convert wegen_mllm_ckpt OUT_DIR` "
    "(or use the wegen_mllm_ckpt folder as it is); then pass --model DIR or set WEGEN_MODEL."
)


def knows_only_shapes(model_name: str) -> bool:
    """Whether a model (by its config name) has only seen the shapes world: wegen-tiny, bundled
    or trained again with training/, draws and reads coloured shapes and nothing else."""
    return model_name == BUNDLED_NAME


def default_model_dir() -> Path:
    """The model to use when none is named: $WEGEN_MODEL, else the bundled wegen-tiny."""
    return Path(os.environ.get(ENV_MODEL) or BUNDLED_DIR)


def require_model_dir(path: str | Path | None) -> Path:
    """``path`` (or the default) if it exists, else a `ModelFolderError` saying how to get one."""
    folder = Path(path) if path else default_model_dir()
    if not folder.exists():
        what = "the bundled model" if folder == BUNDLED_DIR else "the model folder"
        raise ModelFolderError(f"{what} {folder} does not exist. {HOW_TO_GET_A_MODEL}")
    return folder
