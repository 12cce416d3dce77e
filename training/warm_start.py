"""Start a run folder from the weights of earlier runs, so that ``training.reproduce`` trains only
what has to change.

    python -m training.warm_start --out runs/gpu3 --base wegen_resources/models/wegen-tiny \\
        --take vision.=runs/stem1 --done vae
    python -m training.reproduce --plan P --out runs/gpu3 --stages vision,unet,mllm,sft

The folder gets the preset's config, the base's tokenizer (the LLM's ids must not move) and a
``model.safetensors`` in which every tensor comes from the base, except those whose names start
with a ``--take`` prefix, which come from that source. A tensor no source holds in the preset's
shape starts from the preset's initialisation, and is listed. ``--done`` marks stages finished
(reproduce skips them): a kept autoencoder also keeps the latent scale of the folder its tensors
come from. ``--preset`` names a preset (``training.presets`` too) or a config.json; a new
autoencoder from ``training.fit_vae`` goes into a model with

    python -m training.warm_start --out runs/dec --base wegen_resources/models/wegen-tiny \
        --preset runs/vae --take decoder.vae.=runs/vae --done vision,vae,mllm,sft

A source is a model folder (possibly sharded) or a run folder (``model.safetensors``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.config import WeGenConfig
from engine.errors import ModelFolderError
from engine.folder import CONFIG, TOKENIZER, WEIGHTS, weight_files
from engine.model import WeGenModel
from training.config import STAGES
from training.loop import stage_done
from training.presets import architecture

VAE_PREFIX = "decoder.vae."


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """What `warm_start` wrote: which tensors came from where, and which start fresh."""

    sources: dict[str, int]  # source folder -> tensors taken from it
    fresh: tuple[str, ...]  # tensors no source had in the preset's shape


def read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, path in weight_files(folder).items():
        with safe_open(str(path), framework="pt") as f:
            tensors[name] = f.get_tensor(name)
    return tensors


def source_of(name: str, base: Path, take: Sequence[tuple[str, Path]]) -> Path:
    """The longest ``--take`` prefix of ``name`` wins; otherwise the base."""
    best = max((p for p in take if name.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    return best[1] if best else base


def warm_start(
    out: Path,
    base: Path,
    take: Sequence[tuple[str, Path]] = (),
    done: tuple[str, ...] = (),
    config: WeGenConfig | None = None,
    dtype: torch.dtype = torch.float32,
) -> WarmStart:
    unknown = set(done) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {STAGES}")
    if (out / WEIGHTS).is_file() or any(stage_done(out, s) for s in STAGES):
        raise ValueError(f"{out} already holds a run: choose a new --out")
    for folder in [base, *(src for _, src in take)]:
        if not folder.is_dir():
            raise ValueError(f"no folder {folder}: give a model folder or a run folder")
    if not (base / TOKENIZER).is_file():
        raise ValueError(f"{base} has no {TOKENIZER}: the base must be a model or run folder")
    config = config or architecture("wegen-tiny")
    if "vae" in done:  # the kept autoencoder's latents keep the scale of the folder it is from
        vae_folder = source_of(VAE_PREFIX, base, take)
        if not (vae_folder / CONFIG).is_file():
            raise ValueError(f"{vae_folder} has no {CONFIG}: the kept VAE's latent scale is in it")
        kept_vae = WeGenConfig.load(vae_folder / CONFIG).vae
        config = config.replace(
            vae=dataclasses.replace(config.vae, scaling_factor=kept_vae.scaling_factor)
        )
    with torch.device("meta"):
        expected = {k: (v.shape, v.dtype) for k, v in WeGenModel(config).state_dict().items()}
    loaded = {folder: read_tensors(folder) for folder in {base, *(src for _, src in take)}}
    fresh_model = None
    state: dict[str, torch.Tensor] = {}
    sources = {str(f): 0 for f in loaded}
    fresh = []
    for name, (shape, kind) in expected.items():
        folder = source_of(name, base, take)
        tensor = loaded[folder].get(name)
        if tensor is None or tensor.shape != shape:
            if fresh_model is None:
                torch.manual_seed(0)
                fresh_model = WeGenModel(config).state_dict()
            tensor = fresh_model[name]
            fresh.append(name)
        else:
            sources[str(folder)] += 1
        cast = dtype if tensor.is_floating_point() else kind
        state[name] = tensor.to(cast).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / WEIGHTS))
    config.save(out / CONFIG)
    (out / TOKENIZER).write_bytes((base / TOKENIZER).read_bytes())
    for stage in done:
        (out / stage).mkdir(exist_ok=True)
        (out / stage / "done.json").write_text(json.dumps({"steps": 0, "warm_start": str(base)}))
    if "vae" in done:
        (out / "vae" / "scale.json").write_text(
            json.dumps({"scaling_factor": config.vae.scaling_factor})
        )
    return WarmStart(sources, tuple(fresh))


def parse_take(spec: str) -> tuple[str, Path]:
    prefix, sep, folder = spec.partition("=")
    if not sep or not prefix or not folder:
        raise argparse.ArgumentTypeError(
            f"--take wants PREFIX=FOLDER (vision.=runs/x), not {spec!r}"
        )
    return prefix, Path(folder)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, help="the new run folder")
    ap.add_argument("--base", required=True, help="model or run folder most tensors come from")
    ap.add_argument(
        "--take",
        type=parse_take,
        action="append",
        default=[],
        help="PREFIX=FOLDER: tensors whose names start with PREFIX come from FOLDER (repeatable)",
    )
    ap.add_argument("--done", default="", help="comma-separated stages to mark finished")
    ap.add_argument(
        "--preset",
        default="wegen-tiny",
        help="the architecture: a preset (training.presets too) or a config.json or its folder",
    )
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    args = ap.parse_args(argv)
    try:
        result = warm_start(
            Path(args.out),
            Path(args.base),
            args.take,
            tuple(s for s in args.done.split(",") if s),
            architecture(args.preset),
            getattr(torch, args.dtype),
        )
    except (ValueError, ModelFolderError) as e:
        raise SystemExit(str(e)) from None
    for folder, n in result.sources.items():
        print(f"{n} tensors from {folder}")
    if result.fresh:
        print(f"{len(result.fresh)} fresh: " + ", ".join(result.fresh))


if __name__ == "__main__":
    main()
