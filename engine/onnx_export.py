"""Export a PyTorch model folder to an ONNX model folder (engine/onnx_folder.py describes it).

    python -m engine.onnx_export MODEL_DIR OUT_DIR [--precision fp32|fp16] [--quantize int8]

Each graph is exported with the PyTorch exporter (``torch.onnx.export(..., dynamo=True)``) around
the wrapper modules of engine/onnx_graphs.py, then loaded once in onnxruntime to record its inputs
and outputs. The folder is written beside ``OUT_DIR`` and renamed into place at the end: an export
that fails or is interrupted leaves no half-written folder behind.

``--precision fp16`` converts the exported graphs to float16 (the VAE stays float32 when the
config says ``force_upcast``; inputs and outputs stay float32); it is meant for GPUs.
``--quantize int8`` quantizes the LLM's weights to int8 (onnxruntime's dynamic quantization):
about 4x smaller, at a cost in quality to measure with wegen-eval.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.errors import ModelFolderError, OutputPathError, SettingsError
from engine.folder import TOKENIZER as TORCH_TOKENIZER
from engine.folder import load_model_folder
from engine.model import WeGenModel
from engine.onnx_folder import (
    CONFIG,
    FORMAT,
    GRAPHS,
    SCHEMA_VERSION,
    TOKENIZER,
    is_onnx_folder,
    sha256_file,
    signature,
    source_sha256,
)
from engine.onnx_graphs import GraphSpec, graph_specs
from engine.runtime import Runtime

DEFAULT_OPSET = 18
#: graphs over this many bytes of weights keep them in a separate ``.onnx.data`` file (protobuf
#: cannot hold a file over 2 GB)
EXTERNAL_DATA_BYTES = 1 << 30
#: the graphs ``--quantize int8`` quantizes: the LLM. The UNet is left in fp32: int8 made the
#: bundled model's 20 denoising steps about 2x slower on 2 CPU cores (its convolutions become
#: ConvInteger, slower than the fp32 kernels); the rest are small or precision-sensitive
QUANTIZED_GRAPHS = ("llm_prefill", "llm_decode")

#: progress(done, total, what): called before each graph and once at the end (done == total)
Progress = Callable[[int, int, str], None]


def export_onnx(
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    precision: str = "fp32",
    quantize: str | None = None,
    opset: int = DEFAULT_OPSET,
    progress: Progress | None = None,
) -> Path:
    """Export the PyTorch model folder ``model_dir`` as an ONNX model folder at ``out_dir``."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if precision not in ("fp32", "fp16"):
        raise SettingsError(f"precision must be fp32 or fp16, not {precision!r}")
    if quantize not in (None, "int8"):
        raise SettingsError(f"quantize must be int8 or None, not {quantize!r}")
    if quantize and precision != "fp32":
        raise SettingsError("int8 quantization starts from fp32 graphs: use --precision fp32")
    if is_onnx_folder(model_dir):
        raise ModelFolderError(f"{model_dir} is already an ONNX model folder: export its source")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise OutputPathError(f"{out_dir} exists and is not empty: choose a new folder")
    report = progress or (lambda done, total, what: None)
    total = len(GRAPHS) + 1

    report(0, total, "reading the model")
    source_hash = source_sha256(model_dir)
    model, _ = load_model_folder(model_dir, Runtime(torch.device("cpu"), torch.float32))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        graphs: dict[str, dict[str, Any]] = {}
        specs = {s.name: s for s in graph_specs(model)}
        for i, name in enumerate(GRAPHS):
            report(i + 1, total, f"exporting {name}")
            spec = specs[name]
            export_graph(spec, staging / spec.file, opset)
            graphs[name] = describe_graph(staging, spec.file)
        shutil.copyfile(model_dir / TORCH_TOKENIZER, staging / TOKENIZER)
        write_config(staging, model, graphs, precision, None, opset, model_dir, source_hash)
        if quantize:
            report(len(GRAPHS), total, "quantizing to int8")
            quantize_folder(staging)
        if precision == "fp16":
            report(len(GRAPHS), total, "converting to fp16")
            fp16_folder(staging)
        share_llm_weights(staging)
        staging.chmod(0o755)
        if out_dir.exists():
            out_dir.rmdir()
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report(total, total, "done")
    return out_dir


def export_graph(spec: GraphSpec, path: Path, opset: int) -> None:
    """Export one graph to ``path`` (with ``path.data`` beside it when its weights are large)."""
    params = {id(p): p for p in spec.module.parameters()}
    nbytes = sum(p.numel() * p.element_size() for p in params.values())
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            spec.module.eval(),
            spec.inputs,
            dynamo=True,
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
            dynamic_shapes=spec.dynamic_shapes,
            opset_version=opset,
            optimize=True,
            verbose=False,
        )
        assert program is not None
        program.save(str(path), external_data=nbytes > EXTERNAL_DATA_BYTES)


def quantize_int8(path: Path) -> None:
    """Replace the graph at ``path`` by one with int8 weights (onnxruntime dynamic quantization)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".int8.onnx")
    data = path.with_name(path.name + ".data")
    large = data.exists()
    with _quiet():
        quantize_dynamic(path, tmp, weight_type=QuantType.QInt8, use_external_data_format=large)
    if large:  # re-save so that the weights file is named after the graph again
        model = onnx.load(str(tmp))
        data.unlink()
        save_graph(model, path, large=True)
        for leftover in (tmp, tmp.with_name(tmp.name + ".data")):
            leftover.unlink(missing_ok=True)
    else:
        tmp.replace(path)


def save_graph(model: Any, path: Path, large: bool) -> None:
    """Save an ONNX model, its weights in ``path.data`` beside it when ``large``."""
    import onnx

    onnx.save(model, str(path), save_as_external_data=large, location=path.name + ".data")


def share_llm_weights(folder: Path) -> None:
    """Point the decode graph at the prefill graph's weights file instead of its own copy.

    Both graphs hold the same LLM weights; for a model large enough to keep its weights in
    ``.onnx.data`` files (the 7B preset) this halves the LLM's size on disk. A tensor is shared
    only if its type, shape and bytes agree; the decode graph's own file is deleted once
    nothing refers to it. Small models, whose weights sit inside each ``.onnx``, are left as
    they are.
    """
    import onnx
    from onnx.external_data_helper import uses_external_data

    source, target = folder / "llm_prefill.onnx", folder / "llm_decode.onnx"
    src = onnx.load(str(source), load_external_data=False)
    tgt = onnx.load(str(target), load_external_data=False)

    def where(tensor: Any) -> dict[str, str]:
        return {e.key: e.value for e in tensor.external_data}

    def read(info: dict[str, str]) -> bytes:
        with (folder / info["location"]).open("rb") as f:
            f.seek(int(info.get("offset", 0)))
            return f.read(int(info["length"]))

    def key(tensor: Any) -> tuple[int, tuple[int, ...], str]:
        digest = hashlib.sha256(read(where(tensor))).hexdigest()
        return tensor.data_type, tuple(tensor.dims), digest

    # the optimizer folds transposes into new, differently named tensors: match by content
    shared = {key(t): t for t in src.graph.initializer if uses_external_data(t)}
    changed = False
    for tensor in tgt.graph.initializer:
        if not uses_external_data(tensor):
            continue
        other = shared.get(key(tensor))
        if other is None:
            continue
        del tensor.external_data[:]
        tensor.external_data.extend(other.external_data)
        changed = True
    if not changed:
        return
    own = target.name + ".data"
    still_used = any(
        uses_external_data(t) and where(t)["location"] == own for t in tgt.graph.initializer
    )
    onnx.save(tgt, str(target))
    if not still_used:
        (folder / own).unlink()
    path = folder / CONFIG
    data = json.loads(path.read_text(encoding="utf-8"))
    data["graphs"]["llm_decode"] = describe_graph(folder, target.name)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def quantize_folder(folder: Path) -> None:
    """Quantize an fp32 ONNX model folder's `QUANTIZED_GRAPHS` to int8 weights, in place."""
    path = folder / CONFIG
    data = json.loads(path.read_text(encoding="utf-8"))
    if data["precision"] != "fp32" or data.get("quantize"):
        raise ValueError(f"{folder} is not an unquantized fp32 export")
    for name in QUANTIZED_GRAPHS:
        file = f"{name}.onnx"
        quantize_int8(folder / file)
        data["graphs"][name] = describe_graph(folder, file)
    data["quantize"] = "int8"
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def fp16_folder(folder: Path) -> None:
    """Convert an fp32 ONNX model folder's weights and arithmetic to float16, in place.

    The graphs keep float32 inputs and outputs (the turn loop's tensors stay float32). The VAE
    stays float32 when the config says ``force_upcast`` (the SDXL VAE overflows in float16).
    Converting the exported fp32 graph, rather than exporting a float16 module, avoids the
    exporter's missing casts where PyTorch promotes mixed float16/float32 operands (the UNet's
    added time embedding).
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = folder / CONFIG
    data = json.loads(path.read_text(encoding="utf-8"))
    if data["precision"] != "fp32" or data.get("quantize"):
        raise ValueError(f"{folder} is not an unquantized fp32 export")
    keep = ("vae_decoder", "vae_encoder") if data["model"]["vae"]["force_upcast"] else ()
    for name in GRAPHS:
        if name in keep:
            continue
        file = folder / f"{name}.onnx"
        with _quiet():
            converted = convert_float_to_float16(onnx.load(str(file)), keep_io_types=True)
        external = file.with_name(file.name + ".data")
        large = external.exists()
        external.unlink(missing_ok=True)
        save_graph(converted, file, large)
        data["graphs"][name] = describe_graph(folder, file.name)
    data["precision"] = "fp16"
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def describe_graph(folder: Path, file: str) -> dict[str, Any]:
    """config.json's record of one graph: its files with sizes and hashes, and its signature."""
    import onnx
    import onnxruntime as ort
    from onnx.external_data_helper import uses_external_data

    proto = onnx.load(str(folder / file), load_external_data=False)
    locations = {
        e.value
        for t in proto.graph.initializer
        if uses_external_data(t)
        for e in t.external_data
        if e.key == "location"
    }
    files = [folder / file, *(folder / name for name in sorted(locations))]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(folder / file), options, providers=["CPUExecutionProvider"])
    return {
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files},
        **signature(session.get_inputs(), session.get_outputs()),
    }


def write_config(
    folder: Path,
    model: WeGenModel,
    graphs: dict[str, dict[str, Any]],
    precision: str,
    quantize: str | None,
    opset: int,
    source: Path,
    source_hash: str,
) -> None:
    import onnx
    import onnxruntime
    import onnxscript

    data = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": model.config.name,
        "precision": precision,
        "quantize": quantize,
        "opset": opset,
        "source": {"folder": source.name, "sha256": source_hash},
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "parameters": model.parameter_counts(),
        "model": model.config.to_dict(),
        "graphs": graphs,
    }
    (folder / CONFIG).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporter prints its steps and warns about axis names: keep the CLI's output clean."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        _logging_level("onnxscript", logging.ERROR),
        _logging_level("torch.onnx", logging.ERROR),
        _logging_level("", logging.ERROR),  # onnxruntime.quantization logs to the root logger
    ):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _logging_level(name: str, level: int) -> Any:
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.onnx_export MODEL_DIR OUT_DIR ...``: the same as ``wegen-cli
    export-onnx``."""
    from engine.cli import main as cli

    return cli(["export-onnx", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
