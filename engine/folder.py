"""Our model-folder format: ``config.json`` + ``*.safetensors`` + ``tokenizer.json``.

Self-describing and loadable without executing code. Large models are sharded
(``model-00001-of-00004.safetensors`` + ``model.safetensors.index.json``). Loading follows gpt-fast:
build the model with empty parameters, read the tensors (memory-mapped), check every name and
shape against the config, assign them, then move once to the runtime's device and dtype.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from accelerate import init_empty_weights
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.config import WeGenConfig
from engine.errors import ModelFolderError
from engine.runtime import Runtime
from engine.tokenizer import WeGenTokenizer

if TYPE_CHECKING:  # engine.model brings transformers and diffusers: imported where a model is built
    from engine.model import WeGenModel

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
SHARD_BYTES = 4 * 1024**3


def save_model_folder(
    model: WeGenModel,
    tokenizer: WeGenTokenizer,
    folder: str | Path,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` as a model folder (weights cast to ``dtype`` if given)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer.vocab_size > model.config.llm.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} ids but the model only "
            f"{model.config.llm.vocab_size}"
        )
    model.config.save(folder / CONFIG)
    tokenizer.save(folder / TOKENIZER)
    state = {
        k: (v.to(dtype) if dtype and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    write_weights(state, folder)
    return folder


def write_weights(state: dict[str, torch.Tensor], folder: Path) -> None:
    with ShardWriter(folder) as writer:
        for name, tensor in state.items():
            writer.add(name, tensor)


class ShardWriter:
    """Writes tensors into ``model.safetensors``, or into shards of at most ``SHARD_BYTES`` plus
    an index once more than one shard is needed. A shard is written as soon as it is full."""

    def __init__(self, folder: Path, shard_bytes: int = SHARD_BYTES) -> None:
        self.folder, self.shard_bytes = folder, shard_bytes
        self.pending: dict[str, torch.Tensor] = {}
        self.size = 0
        self.written: list[tuple[Path, list[str]]] = []

    def __enter__(self) -> ShardWriter:
        return self

    def add(self, name: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self.pending and self.size + nbytes > self.shard_bytes:
            self._flush()
        self.pending[name] = tensor.detach().cpu().contiguous()
        self.size += nbytes

    def _flush(self) -> None:
        path = self.folder / f"shard-{len(self.written) + 1:05d}.tmp"
        save_file(self.pending, str(path), metadata={"format": "pt"})
        self.written.append((path, list(self.pending)))
        self.pending, self.size = {}, 0

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            for path, _ in self.written:
                path.unlink(missing_ok=True)
            return
        if self.pending or not self.written:
            self._flush()
        if len(self.written) == 1:
            self.written[0][0].replace(self.folder / WEIGHTS)
            return
        weight_map = {}
        n = len(self.written)
        for i, (path, names) in enumerate(self.written, 1):
            final = f"model-{i:05d}-of-{n:05d}.safetensors"
            path.replace(self.folder / final)
            weight_map.update(dict.fromkeys(names, final))
        (self.folder / INDEX).write_text(
            json.dumps({"weight_map": weight_map}, indent=1), encoding="utf-8"
        )


def weight_files(folder: Path) -> dict[str, Path]:
    """Tensor name -> the file holding it."""
    if (folder / INDEX).is_file():
        try:
            weight_map = json.loads((folder / INDEX).read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError) as e:
            raise ModelFolderError(
                f"{folder / INDEX} is corrupt ({e}); restore it from the model's original download"
            ) from None
        return {k: folder / v for k, v in weight_map.items()}
    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelFolderError(
            f"{path} is missing: the model folder has no weights (expected {WEIGHTS} or {INDEX})"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict.fromkeys(f.keys(), path)
    except (SafetensorError, OSError) as e:
        raise ModelFolderError(
            f"{path} is not a readable safetensors file ({e}); it may be "
            "truncated: download or convert the model again"
        ) from None


def verify_model_folder(folder: str | Path) -> list[str]:
    """Problems a person can fix, each naming the file; an empty list means the folder is usable.

    Reads only headers (config, tokenizer, tensor names and shapes): no weights are loaded. An
    ONNX model folder is checked as `engine.onnx_folder.verify_onnx_folder` checks it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    from engine.onnx_folder import is_onnx_folder, verify_onnx_folder

    if is_onnx_folder(folder):
        return verify_onnx_folder(folder)
    if not (folder / CONFIG).is_file():
        from engine.official import check_official_folder, is_official_folder

        if is_official_folder(folder):
            return check_official_folder(folder)
    problems: list[str] = []
    try:
        config = WeGenConfig.load(folder / CONFIG)
    except ModelFolderError as e:
        return [str(e)]
    try:
        tok = WeGenTokenizer.load(folder / TOKENIZER)
        if tok.vocab_size > config.llm.vocab_size:
            problems.append(
                f"{folder / TOKENIZER} has {tok.vocab_size} tokens but config.json "
                f"allows {config.llm.vocab_size}: they are from different models"
            )
    except ModelFolderError as e:
        problems.append(str(e))
    try:
        _check_shapes(folder, config)
    except ModelFolderError as e:
        problems.append(str(e))
    return problems


#: the model's parts by tensor-name prefix, as `WeGenModel.parameter_counts` reports them
PARTS = {
    "llm.": "llm",
    "vision.": "vision",
    "input_proj.": "projectors",
    "output_proj.": "projectors",
    "decoder.unet.": "unet",
    "decoder.vae.": "vae",
}


def tensor_shapes(folder: str | Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape in a model folder, from the safetensors headers alone."""
    shapes: dict[str, tuple[int, ...]] = {}
    files = weight_files(Path(folder))
    for path in sorted(set(files.values())):
        try:
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    shapes[name] = tuple(f.get_slice(name).get_shape())
        except (SafetensorError, OSError) as e:
            raise ModelFolderError(
                f"{path} is not a readable safetensors file ({e}); it may be "
                "truncated: download or convert the model again"
            ) from None
    return shapes


def count_parameters(shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """Parameters per part (llm, vision, projectors, unet, vae) from tensor shapes, counted as
    `WeGenModel.parameter_counts` counts a loaded model."""
    counts = dict.fromkeys(dict.fromkeys(PARTS.values()), 0)
    for name, shape in shapes.items():
        part = next((p for prefix, p in PARTS.items() if name.startswith(prefix)), None)
        if part is not None:
            counts[part] += math.prod(shape)
    return counts


def expected_shapes(config: WeGenConfig) -> dict[str, tuple[int, ...]]:
    from engine.model import WeGenModel

    with torch.device("meta"):
        model = WeGenModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_shapes(folder: Path, config: WeGenConfig) -> dict[str, Path]:
    files = weight_files(folder)
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in files]
    if missing:
        raise ModelFolderError(
            f"the weights in {folder} lack {len(missing)} tensor(s) the config "
            f"needs, e.g. {missing[0]!r}: the weights and config.json are from "
            "different models, or a file is incomplete"
        )
    unexpected = [k for k in files if k not in expected]
    if unexpected:
        raise ModelFolderError(
            f"{files[unexpected[0]]} holds {unexpected[0]!r}, which config.json's "
            "model does not have: the weights and config are from different models"
        )
    by_file: dict[Path, list[str]] = {}
    for name, path in files.items():
        by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        try:
            with safe_open(str(path), framework="pt") as f:
                for name in names:
                    shape = tuple(f.get_slice(name).get_shape())
                    if shape != expected[name]:
                        raise ModelFolderError(
                            f"{path}: tensor {name!r} has shape {shape} but config.json needs "
                            f"{expected[name]}: the weights and config are from different models"
                        )
        except (SafetensorError, OSError) as e:
            raise ModelFolderError(
                f"{path} is not a readable safetensors file ({e}); it may be "
                "truncated: download or convert the model again"
            ) from None
    return files


def load_model_folder(folder: str | Path, runtime: Runtime) -> tuple[WeGenModel, WeGenTokenizer]:
    """Load a model folder onto the runtime's device and dtype, checking every tensor."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a folder: choose a WeGen model folder")
    config = WeGenConfig.load(folder / CONFIG)
    tokenizer = WeGenTokenizer.load(folder / TOKENIZER)
    if tokenizer.vocab_size > config.llm.vocab_size:
        raise ModelFolderError(
            f"{folder / TOKENIZER} has {tokenizer.vocab_size} tokens but "
            f"config.json allows {config.llm.vocab_size}: they are from different models"
        )
    files = _check_shapes(folder, config)
    from engine.model import WeGenModel

    with init_empty_weights(include_buffers=False):
        model = WeGenModel(config)
    state: dict[str, torch.Tensor] = {}
    for path in sorted(set(files.values())):
        try:
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    state[name] = f.get_tensor(name)
        except (SafetensorError, OSError) as e:
            raise ModelFolderError(
                f"{path} could not be read ({e}); it may be truncated: "
                "download or convert the model again"
            ) from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFolderError(
                f"{files[name]}: tensor {name!r} contains NaN or infinite "
                "values: the file is corrupt"
            )
    model.load_state_dict(state, strict=True, assign=True)
    return place(model, runtime), tokenizer


def place(model: WeGenModel, runtime: Runtime) -> WeGenModel:
    """Move to the runtime's device and dtype; the VAE stays float32 when it needs upcasting."""
    model.to(runtime.device, runtime.dtype)
    if model.config.vae.force_upcast and runtime.dtype != torch.float32:
        model.decoder.vae.to(torch.float32)
    return model.eval().requires_grad_(False)
