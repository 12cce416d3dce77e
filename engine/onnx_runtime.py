"""The ONNX Runtime backend: the module calls of the turn, answered by onnxruntime sessions.

`OnnxModel` offers what the token loop asks of a model (`engine.generate.LanguageModel`),
`OnnxVision` what the engine asks of the vision tower, and `OnnxDetokenizer` the four calls of
`engine.decoder.DenoiseLoop`. The loop, embedding CFG, sampling, the scheduler and the decoder's
CFG stay the engine's own code: only the module calls differ from the PyTorch backend.

The turn loop's tensors stay PyTorch tensors on the CPU in float32; each call converts them to the
graph's input types and its outputs back. The KV cache lives in onnxruntime's own buffers
(`OnnxKVCache`): each decode step feeds the previous step's outputs straight back through IO
binding, without copying them through PyTorch.

`load_onnx` loads an ONNX model folder, or exports a PyTorch folder once into the user's cache
(keyed by the source's SHA-256) and loads that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.caches import cache_base
from engine.config import WeGenConfig
from engine.decoder import DenoiseLoop
from engine.errors import ModelFolderError, RuntimeChoiceError
from engine.model import fill_image_slots
from engine.onnx_folder import (
    GRAPHS,
    TOKENIZER,
    OnnxFolder,
    check_signature,
    is_onnx_folder,
    read_onnx_folder,
    source_files,
    source_sha256,
)
from engine.runtime import Runtime, onnx_providers
from engine.tokenizer import WeGenTokenizer
from engine.vision import preprocess

#: progress(done, total, what) of an export (engine.onnx_export.Progress)
Progress = Callable[[int, int, str], None]

_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class Graph:
    """One onnxruntime session, called with PyTorch tensors; returns float32/int64 CPU tensors."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_names = [a.name for a in session.get_inputs()]
        self.input_types = [_NUMPY[a.type] for a in session.get_inputs()]
        self.output_names = [a.name for a in session.get_outputs()]

    def feed(self, tensors: Sequence[torch.Tensor | np.ndarray]) -> dict[str, np.ndarray]:
        """The first ``len(tensors)`` inputs, converted to the graph's element types."""
        if len(tensors) > len(self.input_names):
            raise ValueError(f"the graph takes {self.input_names}, got {len(tensors)} tensors")
        return {
            name: _numpy(t, kind)
            for name, kind, t in zip(self.input_names, self.input_types, tensors, strict=False)
        }

    def __call__(self, *tensors: torch.Tensor | np.ndarray) -> list[torch.Tensor]:
        if len(tensors) != len(self.input_names):
            raise ValueError(f"the graph takes {self.input_names}, got {len(tensors)} tensors")
        outputs = self.session.run(None, self.feed(tensors))
        return [_torch(o) for o in outputs]


def _numpy(t: torch.Tensor | np.ndarray, kind: type) -> np.ndarray:
    array = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
    return np.ascontiguousarray(array, dtype=kind)


def _torch(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return torch.from_numpy(array)


# --- the LLM ------------------------------------------------------------------------------------
class OnnxKVCache:
    """The KV cache between graph calls: onnxruntime's output values of the last call."""

    def __init__(self) -> None:
        self.values: list[Any] | None = None  # OrtValues, (B, H, T, hd) each; None when empty
        self.length = 0


class OnnxModel:
    """A WeGen model whose modules are onnxruntime sessions (see the module docstring)."""

    def __init__(self, folder: OnnxFolder, graphs: dict[str, Graph], runtime: Runtime) -> None:
        self.folder = folder
        self.config: WeGenConfig = folder.config
        self.runtime = runtime
        self.graphs = graphs
        self.vision = OnnxVision(folder.config, graphs["vision"])
        self.decoder = OnnxDetokenizer(folder.config, graphs)
        self._device = _ort_device(runtime)  # where the KV cache stays between steps

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def parameter_counts(self) -> dict[str, int]:
        return dict(self.folder.parameters)

    def new_cache(self) -> OnnxKVCache:
        return OnnxKVCache()

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        shape = input_ids.shape
        (embeds,) = self.graphs["embed_tokens"](input_ids.reshape(1, -1))
        return embeds.reshape(*shape, -1)

    def embed(
        self,
        input_ids: torch.Tensor,
        image_features: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As `WeGenModel.embed`: token embeddings with the image slots replaced by projections."""
        return fill_image_slots(
            self.embed_tokens(input_ids),  # (B, T, D)
            image_features,
            image_mask,
            lambda f: self.graphs["input_proj"](f)[0],  # (N, D)
        )

    def __call__(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: OnnxKVCache | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `WeGenModel.forward` with ``last_only``: hidden (B, 1, D) and logits (B, 1, V) of the
        last position. The graphs compute the last position only, so ``last_only`` must be set."""
        if not last_only:
            raise ValueError("the ONNX graphs return the last position only: pass last_only=True")
        cache = cache if cache is not None else OnnxKVCache()
        b, t, _ = inputs_embeds.shape
        if attention_mask is None:
            attention_mask = torch.ones(b, cache.length + t, dtype=torch.long)
        if position_ids is None:
            position_ids = torch.arange(cache.length, cache.length + t).expand(b, t)
        if cache.values is None:
            graph = self.graphs["llm_prefill"]
            past: list[Any] = []
        else:
            if t != 1:
                raise ValueError("the decode graph takes one position per row")
            graph = self.graphs["llm_decode"]
            past = cache.values
        binding = graph.session.io_binding()
        feed = graph.feed([inputs_embeds, attention_mask, position_ids])
        for name, array in feed.items():
            binding.bind_cpu_input(name, array)
        for name, value in zip(graph.input_names[3:], past, strict=True):
            binding.bind_ortvalue_input(name, value)
        for name in graph.output_names:
            binding.bind_output(name, *self._device)
        graph.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        hidden, logits = (_torch(v.numpy()) for v in values[:2])
        cache.values, cache.length = values[2:], cache.length + t
        return hidden[:, None], logits[:, None]

    def features_to_embeds(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = hidden.shape[:-1]
        feature, embed = self.graphs["feedback"](hidden.reshape(-1, hidden.shape[-1]))
        return feature.reshape(*shape, -1), embed.reshape(*shape, -1)

    def output_proj(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.features_to_embeds(hidden)[0]


def _ort_device(runtime: Runtime) -> tuple[str, int]:
    """onnxruntime's name and index for the device the graphs run on."""
    kind, _, index = (runtime.onnx_device or "cpu").partition(":")
    name = {"cuda": "cuda", "tensorrt": "cuda", "npu": "cann"}.get(kind, "cpu")
    return name, int(index or 0) if name != "cpu" else 0


# --- the vision tower and the de-tokenizer ------------------------------------------------------
class OnnxVision:
    """What the engine asks of the vision tower: `preprocess` and a call to 64 features."""

    def __init__(self, config: WeGenConfig, graph: Graph) -> None:
        self.config = config.vision
        self.graph = graph

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return preprocess(images, self.config.image_size)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        (features,) = self.graph(pixels)
        return features


class OnnxDetokenizer(DenoiseLoop):
    """The de-tokenizer's sampling (`DenoiseLoop`) over the UNet and VAE graphs."""

    def __init__(self, config: WeGenConfig, graphs: dict[str, Graph]) -> None:
        self.config = config
        self.unet = graphs["unet"]
        self.vae_decoder = graphs["vae_decoder"]
        self.vae_encoder = graphs["vae_encoder"]

    def placement(self) -> tuple[torch.device, torch.dtype]:
        return torch.device("cpu"), torch.float32

    def forward(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        features: torch.Tensor,
        time_ids: torch.Tensor,
    ) -> torch.Tensor:
        (noise,) = self.unet(latents, timesteps, features, time_ids)
        return noise

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        (pixels,) = self.vae_decoder(latents)
        return pixels

    def encode_pixels(
        self, pixels: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if sample:
            raise ValueError("the ONNX VAE encoder returns the mean; sampling is for training")
        (latents,) = self.vae_encoder(pixels)
        return latents


# --- loading ------------------------------------------------------------------------------------
def open_session(path: Path, runtime: Runtime) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # as many CPU threads as PyTorch uses (torch.set_num_threads), so both backends compare
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        return ort.InferenceSession(str(path), options, providers=onnx_providers(runtime))
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise ModelFolderError(
            f"{path} could not be loaded by onnxruntime ({type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else e}); it may be truncated "
            "or from another export: export the model again"
        ) from None


def load_onnx_folder(folder: str | Path, runtime: Runtime) -> tuple[OnnxModel, WeGenTokenizer]:
    """Open every graph of an ONNX model folder, checked against config.json; all or nothing."""
    found = read_onnx_folder(folder)
    precision = "fp16" if runtime.dtype == torch.float16 else "fp32"
    if found.precision != precision and runtime.onnx_device == "cpu":
        raise RuntimeChoiceError(
            f"{found.path} holds {found.precision} graphs, which the CPU cannot run well: "
            "export an fp32 folder for the CPU"
        )
    tokenizer = WeGenTokenizer.load(found.path / TOKENIZER)
    graphs = {}
    for name in GRAPHS:
        info = found.graphs[name]
        session = open_session(found.path / info.file, runtime)
        check_signature(found.path, info, session.get_inputs(), session.get_outputs())
        graphs[name] = Graph(session)
    return OnnxModel(found, graphs, runtime), tokenizer


def cache_root() -> Path:
    """Where exports of PyTorch folders are kept (`engine.caches`)."""
    return cache_base() / "onnx"


def remembered_sha256(folder: Path) -> str:
    """`source_sha256` of a PyTorch folder, remembered in the cache while its files' names,
    sizes and modification times stay the same (hashing the 7B weights takes a while)."""
    memo = cache_root() / "sources.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in source_files(folder)]
    key = str(folder.resolve())
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("files") == stamp:
        return str(entry["sha256"])
    digest = source_sha256(folder)
    known[key] = {"files": stamp, "sha256": digest}
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps(known, indent=1), encoding="utf-8")
    return digest


def cached_export(model_dir: str | Path, precision: str = "fp32", progress: Any = None) -> Path:
    """The ONNX export of a PyTorch model folder, made once and kept under `cache_root`."""
    from engine.onnx_export import export_onnx

    digest = remembered_sha256(Path(model_dir))
    target = cache_root() / f"{digest[:24]}-{precision}"
    if target.is_dir():
        try:
            if read_onnx_folder(target).source_sha256 == digest:
                return target
        except ModelFolderError:
            pass
        import shutil

        shutil.rmtree(target)  # a damaged or stale cache entry: export it again
    return export_onnx(model_dir, target, precision=precision, progress=progress)


def load_onnx(
    model_dir: str | Path, runtime: Runtime, progress: Progress | None = None
) -> tuple[OnnxModel, WeGenTokenizer]:
    """The onnx backend's loader: an ONNX folder as it is, a PyTorch folder through the cache."""
    if is_onnx_folder(model_dir):
        return load_onnx_folder(model_dir, runtime)
    precision = "fp16" if runtime.dtype == torch.float16 else "fp32"
    return load_onnx_folder(cached_export(model_dir, precision, progress), runtime)
