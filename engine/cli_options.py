"""What the command lines accept, and what they check before any model loads.

The runtime and generation-setting options are defined here once, for ``wegen-cli`` and
``wegen-eval``; their help states the ranges `GenerationSettings.validate` allows. Importing this
module costs the standard library and engine.api only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import api
from engine.errors import OutputPathError


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --precision, --backend, --memory: shared by wegen-cli's commands and
    wegen-eval (the app's settings offer the same choices: engine.api)."""
    parser.add_argument(
        "--model", help="model folder (default: $WEGEN_MODEL or the bundled wegen-tiny)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto, cuda, cuda:N, npu, mps or cpu (tensorrt with --backend onnx)",
    )
    parser.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument(
        "--backend",
        default=api.RuntimeRequest.backend,
        choices=api.BACKENDS,
        help="auto (compiled on CUDA, else eager), eager (PyTorch), compiled (a static token "
        "loop, captured on CUDA, and torch.compile of the UNet) or onnx (ONNX Runtime; a "
        "PyTorch folder is exported once into the cache)",
    )
    parser.add_argument(
        "--memory",
        default=api.RuntimeRequest.memory,
        choices=api.MEMORY_MODES,
        help="auto (the first mode that fits the GPU's free memory), normal (all on the device), "
        "low (each part on the device only while it runs) or int8 (low, with an int8 language "
        "model); on the CPU all but int8 are normal",
    )


def runtime_request(args: argparse.Namespace) -> api.RuntimeRequest:
    """The `api.RuntimeRequest` the options of `add_runtime_options` ask for."""
    return api.RuntimeRequest(
        args.device, args.precision, args.backend, getattr(args, "memory", "auto")
    )


def add_setting_options(
    parser: argparse.ArgumentParser,
    names: tuple[str, ...] = (
        "seed",
        "steps",
        "guidance",
        "embedding_cfg",
        "denoise_strength",
        "size",
        "psr",
        "temperature",
    ),
) -> None:
    """The generation settings ``names`` as options, with the ranges `GenerationSettings.validate`
    allows in their help."""

    def span(name: str) -> str:
        return api.SETTING_RANGES[name].span()

    options: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
        "seed": (
            ("--seed",),
            dict(type=int, help=f"seed, {span('seed')}, to repeat an image (default: random)"),
        ),
        "steps": (
            ("--steps",),
            dict(type=int, help=f"denoising steps, {span('steps')} (default: the model's)"),
        ),
        "guidance": (
            ("--guidance",),
            dict(
                type=float,
                help=f"de-tokenizer guidance scale, {span('guidance')} (1 = off; default: the "
                "model's)",
            ),
        ),
        "embedding_cfg": (
            ("--embedding-cfg",),
            dict(
                type=float,
                default=1.0,
                help=f"LLM embedding-space guidance, {span('embedding_cfg')} (1 = off)",
            ),
        ),
        "denoise_strength": (
            ("--denoise-strength",),
            dict(
                type=float,
                default=1.0,
                help=f"share of the image worked on to redraw, {span('denoise_strength')} "
                "(1 = anew; lower keeps more of it)",
            ),
        ),
        "size": (
            ("--size",),
            dict(type=int, help="output side in pixels (default: the model's; see info)"),
        ),
        "psr": (
            ("--psr",),
            dict(action="store_true", help="Prompt Self-Rewriting: rewrite, then generate"),
        ),
        "temperature": (
            ("--temperature",),
            dict(
                type=float,
                default=0.0,
                help=f"text sampling, {span('temperature')} (0 = greedy)",
            ),
        ),
    }
    for name in names:
        flags, kwargs = options[name]
        parser.add_argument(*flags, **kwargs)  # type: ignore[arg-type]


#: what the CLI writes: PNG, whose text chunks carry the prompt and settings
OUTPUT_SUFFIXES = (".png",)
_LOSSY = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WebP"}


def check_output(path: str | Path) -> Path:
    """The PNG file to write for ``-o`` / ``/save``, or `OutputPathError` saying why not."""
    from engine.files import check_output_file

    suffix = Path(path).suffix.lower()
    if suffix in _LOSSY:
        raise OutputPathError(
            f'"{path}": wegen-cli writes PNG only, so that the file carries the prompt and '
            f"settings that reproduce it; a {_LOSSY[suffix]} file would not. Name it "
            f'"{Path(path).with_suffix(".png")}" (and convert it afterwards if you need '
            f"{_LOSSY[suffix]})"
        )
    return check_output_file(path, OUTPUT_SUFFIXES)


def settings_from_args(args: argparse.Namespace) -> api.GenerationSettings:
    """The settings the arguments ask for, validated (`SettingsError` names the first bad one),
    with the image size checked against the model folder's config when it has one."""
    settings = api.GenerationSettings(
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        embedding_cfg=args.embedding_cfg,
        denoise_strength=args.denoise_strength,
        size=args.size,
        psr=args.psr,
        temperature=args.temperature,
    ).validate()
    if settings.size is not None:
        _check_size(model_dir_from_args(args), settings.size)
    return settings


def model_dir_from_args(args: argparse.Namespace) -> Path:
    from engine.bundled import require_model_dir

    return require_model_dir(args.model)


def _check_size(folder: Path, size: int) -> None:
    """Refuse a size the model cannot draw, from its config alone (as the engine would, later)."""
    from engine.config import WeGenConfig

    if not (folder / "config.json").is_file():
        return  # the official layout: its preset is checked when it loads
    config = WeGenConfig.load(folder / "config.json")
    api.check_size(size, config.decoder.image_size, config.vae.downsample, config.name)
