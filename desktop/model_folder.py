"""Choosing and checking a model folder, and saying how to get one. No Qt widgets.

Verification is the engine's (`engine.api.verify_model_folder`, which imports the engine's folder
checks, and with them torch, only when called); when torch is not installed, a few file checks
stand in.
"""

from __future__ import annotations

from pathlib import Path

from desktop.i18n import tr
from desktop.paths import BUNDLED_MODEL

_CTX = "ModelFolder"


def how_to_get_a_model() -> str:
    return tr(
        _CTX,
        "WeGen needs a model folder. The installer ships the small bundled model in "
        "“{0}”; in a source checkout, create it by training wegen-tiny (see training/) or copy "
        "an exported folder there. To use the full model, open Settings and choose the official "
        "WeGen checkpoint folder (wegen_mllm_ckpt) or a folder converted with the WeGen CLI.",
    ).format(BUNDLED_MODEL)


def verify_model_folder(path: str | Path, *, use_engine: bool = True) -> list[str]:
    """Problems with the folder, each a sentence naming the file; empty when it is usable.

    ``use_engine=False`` runs only the file checks that need no engine (and no torch).
    """
    folder = Path(path)
    if not str(path).strip():
        return [tr(_CTX, "No model folder is chosen.")]
    if not folder.exists():
        return [tr(_CTX, "The model folder “{0}” does not exist.").format(folder)]
    if not folder.is_dir():
        return [tr(_CTX, "“{0}” is a file, not a model folder.").format(folder)]
    if not use_engine:
        return _basic_checks(folder)
    from engine.api import ModelFolderError, verify_model_folder

    try:
        return verify_model_folder(str(folder))
    except ImportError:  # no torch: the engine's checks cannot run
        return _basic_checks(folder)
    except ModelFolderError as error:
        return [str(error)]


def _basic_checks(folder: Path) -> list[str]:
    """Checks that need no engine: our format's files or the official layout's top folder."""
    if (folder / "wegen_mllm_ckpt").is_dir() or folder.name == "wegen_mllm_ckpt":
        return []
    problems = []
    if not (folder / "config.json").is_file():
        problems.append(tr(_CTX, "“{0}” has no config.json.").format(folder))
    if not any(folder.glob("*.safetensors")):
        problems.append(tr(_CTX, "“{0}” has no weights (*.safetensors).").format(folder))
    if not (folder / "tokenizer.json").is_file():
        problems.append(tr(_CTX, "“{0}” has no tokenizer.json.").format(folder))
    return problems
