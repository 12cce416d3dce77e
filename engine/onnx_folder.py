"""The ONNX model-folder format: ``config.json`` (``"format": "onnx"``), one graph per module and
``tokenizer.json``.

``config.json`` carries a schema version, the source model's own config (so the turn loop knows
the architecture), the SHA-256 of the source folder, the precision and quantization, the opset,
the exporter's and onnxruntime's versions, and per graph: its file(s), their byte sizes and
SHA-256, and its input and output names, element types and shapes (symbolic dimensions as
strings). `read_onnx_folder` checks what is cheap (schema, every file present at its recorded
size); `check_signature` compares a loaded session's inputs and outputs with the record;
`verify_onnx_folder` also re-hashes every file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import WeGenConfig
from engine.errors import ModelFolderError

FORMAT = "onnx"
SCHEMA_VERSION = 1
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
#: the graphs every ONNX model folder holds (engine/onnx_graphs.py builds them)
GRAPHS = (
    "vision",
    "embed_tokens",
    "input_proj",
    "feedback",
    "llm_prefill",
    "llm_decode",
    "unet",
    "vae_decoder",
    "vae_encoder",
)
#: what makes a PyTorch model folder what it is (hashed in this order, by name)
SOURCE_PATTERNS = ("config.json", "tokenizer.json", "*.safetensors", "*.safetensors.index.json")


@dataclass(frozen=True)
class GraphInfo:
    """One graph as config.json records it."""

    name: str
    files: dict[str, dict[str, Any]]  # file name -> {"bytes": int, "sha256": str}
    inputs: list[dict[str, Any]]  # [{"name", "type", "shape"}], in order
    outputs: list[dict[str, Any]]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "inputs": self.inputs, "outputs": self.outputs}


@dataclass(frozen=True)
class OnnxFolder:
    path: Path
    config: WeGenConfig
    precision: str
    quantize: str | None
    opset: int
    source_sha256: str
    parameters: dict[str, int]
    graphs: dict[str, GraphInfo]


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_files(folder: Path) -> list[Path]:
    found = {p for pattern in SOURCE_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.name)


def source_sha256(folder: str | Path) -> str:
    """One SHA-256 over a PyTorch model folder's config, tokenizer and weights (names and bytes)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in source_files(folder):
        digest.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def is_onnx_folder(folder: str | Path) -> bool:
    """Whether ``folder``'s config.json says it is an ONNX model folder (any schema version)."""
    path = Path(folder) / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def read_onnx_folder(folder: str | Path) -> OnnxFolder:
    """Read and check an ONNX model folder's config.json and the presence and size of its files."""
    folder = Path(folder)
    path = folder / CONFIG
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a folder: choose an ONNX model folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(
            f"{path} is missing: an ONNX model folder needs its config.json"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFolderError(
            f"{path} is not valid JSON ({e}): export the model again (wegen-cli export-onnx)"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFolderError(f"{path} does not describe an ONNX model folder (no format 'onnx')")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFolderError(
            f"{path} has ONNX schema version {version!r} but this WeGen reads version "
            f"{SCHEMA_VERSION}: export the model again with this WeGen (wegen-cli export-onnx)"
        )
    try:
        config = WeGenConfig.from_dict(data["model"])
        graphs = {
            name: GraphInfo(name, g["files"], g["inputs"], g["outputs"])
            for name, g in data["graphs"].items()
        }
        result = OnnxFolder(
            path=folder,
            config=config,
            precision=data["precision"],
            quantize=data.get("quantize"),
            opset=int(data["opset"]),
            source_sha256=data["source"]["sha256"],
            parameters={k: int(v) for k, v in data.get("parameters", {}).items()},
            graphs=graphs,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(
            f"{path} is incomplete or corrupt ({type(e).__name__}: {e}): export the model again"
        ) from None
    missing = [g for g in GRAPHS if g not in graphs]
    if missing:
        raise ModelFolderError(f"{path} lists no graph {missing[0]!r}: export the model again")
    if not (folder / TOKENIZER).is_file():
        raise ModelFolderError(f"{folder / TOKENIZER} is missing: export the model again")
    for info in graphs.values():
        for name, meta in info.files.items():
            file = folder / name
            if not file.is_file():
                raise ModelFolderError(
                    f"{file} is missing: the ONNX model folder is incomplete; export it again"
                )
            size = file.stat().st_size
            if size != meta["bytes"]:
                raise ModelFolderError(
                    f"{file} has {size} bytes but config.json records {meta['bytes']}: the file "
                    "is truncated or from another export; export the model again"
                )
    return result


def signature(inputs: list[Any], outputs: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs of an onnxruntime session (NodeArg lists) as config.json records them."""

    def record(args: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "type": a.type,
                "shape": [d if d is not None else "?" for d in a.shape],
            }
            for a in args
        ]

    return {"inputs": record(inputs), "outputs": record(outputs)}


def check_signature(folder: Path, info: GraphInfo, inputs: list[Any], outputs: list[Any]) -> None:
    """Raise if a loaded graph's inputs/outputs differ from config.json's record of them.

    Names, order, element types, ranks and every fixed dimension must agree (a graph exported
    from another model has other widths).
    """
    actual = signature(inputs, outputs)
    for kind in ("inputs", "outputs"):
        want, got = getattr(info, kind), actual[kind]
        problem = None
        if [a["name"] for a in want] != [a["name"] for a in got]:
            problem = (
                f"its {kind} are {[a['name'] for a in got]} but config.json records "
                f"{[a['name'] for a in want]}"
            )
        else:
            for w, g in zip(want, got, strict=True):
                fixed = [
                    (x, y)
                    for x, y in zip(w["shape"], g["shape"], strict=False)
                    if isinstance(x, int)
                ]
                if (
                    w["type"] != g["type"]
                    or len(w["shape"]) != len(g["shape"])
                    or any(x != y for x, y in fixed)
                ):
                    problem = (
                        f"its {kind[:-1]} {g['name']!r} is {g['type']} {g['shape']} but "
                        f"config.json records {w['type']} {w['shape']}"
                    )
                    break
        if problem:
            raise ModelFolderError(
                f"{folder / info.file} does not match {folder / CONFIG}: {problem}. The graph is "
                "from another model or export; export the model again"
            )


def verify_onnx_folder(folder: str | Path) -> list[str]:
    """Problems with an ONNX model folder, each naming the file; empty when it is intact.

    Besides `read_onnx_folder`'s checks, re-hashes every graph file against config.json.
    """
    try:
        found = read_onnx_folder(folder)
    except ModelFolderError as e:
        return [str(e)]
    problems = []
    for info in found.graphs.values():
        for name, meta in info.files.items():
            if sha256_file(found.path / name) != meta["sha256"]:
                problems.append(
                    f"{found.path / name} does not have the SHA-256 config.json records: it was "
                    "changed or comes from another export; export the model again"
                )
    return problems
