"""The one place that decides device, precision and backend.

Everything else takes a resolved `Runtime`. ``torch_npu`` is imported here and only here. Each
impossible choice raises `RuntimeChoiceError` saying what to install or change.

The ``onnx`` backend runs the model's graphs on onnxruntime: the device picks the execution
provider (`onnx_providers`: cpu -> CPU, cuda -> CUDA or TensorRT, npu -> CANN), checked against
the providers the installed onnxruntime offers rather than against PyTorch's devices.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from engine import api
from engine.api import RuntimeRequest
from engine.errors import RuntimeChoiceError

DEVICES = tuple(d for d in api.DEVICES if d != "tensorrt")  # tensorrt: the onnx backend only
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BACKENDS = api.BACKENDS
MEMORY_MODES = api.MEMORY_MODES


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    backend: str = "eager"
    #: one of api.MEMORY_MODES; "auto" until `resolve_memory` sees the model
    memory: str = "normal"
    #: the token loop: "auto" (static with the compiled backend), "static" or "reference"
    loop: str = "auto"
    #: onnx backend: where the graphs run ("cpu", "cuda:0", "tensorrt:0", "npu:0"); ``device`` is
    #: then the CPU, where the turn loop's own tensors live
    onnx_device: str | None = None

    @property
    def precision(self) -> str:
        return next(name for name, dt in PRECISIONS.items() if dt == self.dtype)

    @property
    def device_name(self) -> str:
        """Where the model runs, as a person reads it."""
        return self.onnx_device or str(self.device)

    @property
    def static_loop(self) -> bool:
        """Whether the token loop runs on a static KV cache with the embedding-CFG streams batched
        (by default with the compiled backend; eager keeps the reference loop)."""
        if self.loop not in ("auto", "static", "reference"):
            raise RuntimeChoiceError(f"unknown token loop {self.loop!r}")
        return self.loop == "static" or (self.loop == "auto" and self.backend == "compiled")

    @property
    def captures_decode(self) -> bool:
        """Whether the decode step is captured as a CUDA graph (torch.compile's
        reduce-overhead): the compiled backend on CUDA with every part resident (the low modes'
        offload hooks move weights, which a captured graph cannot)."""
        return (
            self.backend == "compiled"
            and self.static_loop
            and self.device.type == "cuda"
            and self.memory == "normal"
        )

    def describe(self) -> str:
        # the memory mode once resolved to one that moves or shrinks the model
        memory = f" · memory {self.memory}" if self.memory in ("low", "int8") else ""
        return f"{self.device_name} · {self.precision} · {self.backend}{memory}"


def _npu_available() -> bool:
    try:
        importlib.import_module("torch_npu")
    except ImportError:
        return False
    return bool(getattr(torch, "npu", None)) and torch.npu.is_available()


def available_devices() -> list[str]:
    """Devices usable on this machine, best first."""
    found = []
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _npu_available():
        found.append("npu")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def _resolve_device(name: str) -> torch.device:
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise RuntimeChoiceError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if kind == "auto":
        return torch.device(available_devices()[0])
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeChoiceError(
                "no CUDA GPU is usable: install an NVIDIA driver and a CUDA build of PyTorch "
                "(pip install torch --index-url for your CUDA version), or choose device 'cpu'"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise RuntimeChoiceError(
                f"there is no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device("cuda", index)
    if kind == "npu":
        if not _npu_available():
            raise RuntimeChoiceError(
                "no Ascend NPU is usable: install the CANN toolkit and torch_npu matching your "
                "PyTorch (pip install 'wegen[npu]'), or choose device 'cpu'"
            )
        return torch.device(name)
    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise RuntimeChoiceError("Apple MPS is not available on this machine; choose 'cpu'")
        return torch.device("mps")
    return torch.device("cpu")


def _resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type in ("npu", "mps"):
            return torch.float16
        return torch.float32
    if precision not in PRECISIONS:
        raise RuntimeChoiceError(
            f"unknown precision {precision!r}; choose auto, fp32, fp16 or bf16"
        )
    dtype = PRECISIONS[precision]
    if device.type == "cpu" and dtype == torch.float16:
        raise RuntimeChoiceError("fp16 is very slow or unsupported on the CPU; choose fp32 or bf16")
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise RuntimeChoiceError(
            f"{torch.cuda.get_device_name(device)} has no bf16 support; choose fp16"
        )
    return dtype


def select_runtime(request: RuntimeRequest | None = None) -> Runtime:
    request = request or RuntimeRequest()
    if request.backend not in BACKENDS:
        raise RuntimeChoiceError(
            f"unknown backend {request.backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    if request.backend not in api.usable_backends():
        raise RuntimeChoiceError(api.FROZEN_NO_COMPILE)
    if request.memory not in MEMORY_MODES:
        raise RuntimeChoiceError(
            f"unknown memory mode {request.memory!r}; choose one of {', '.join(MEMORY_MODES)}"
        )
    if request.backend == "onnx":
        return _select_onnx_runtime(request)
    device = _resolve_device(request.device)
    dtype = _resolve_dtype(request.precision, device)
    backend = auto_backend(device) if request.backend == "auto" else request.backend
    return Runtime(device=device, dtype=dtype, backend=backend, memory=request.memory)


def auto_backend(device: torch.device) -> str:
    """``backend: auto``: compiled on CUDA where this copy can compile (the static token loop
    with a captured decode step, the UNet compiled; ../shared/docs/PERFORMANCE.md), eager
    elsewhere: on the CPU compiling pays for itself only after many turns (docs/benchmarks.md)."""
    if device.type == "cuda" and "compiled" in api.usable_backends():
        return "compiled"
    return "eager"


# --- ONNX Runtime ---------------------------------------------------------------------------------
#: device kind -> (execution provider, the package that brings it)
ONNX_PROVIDERS = {
    "cpu": ("CPUExecutionProvider", "onnxruntime (pip install 'wegen[onnx]')"),
    "cuda": ("CUDAExecutionProvider", "onnxruntime-gpu (pip install 'wegen[gpu]')"),
    "tensorrt": (
        "TensorrtExecutionProvider",
        "onnxruntime-gpu with NVIDIA TensorRT (pip install 'wegen[gpu]' tensorrt)",
    ),
    "npu": ("CANNExecutionProvider", "onnxruntime-cann with the Ascend CANN toolkit"),
}


def _onnx_available_providers() -> list[str]:
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        raise RuntimeChoiceError(
            "the onnx backend needs onnxruntime: pip install 'wegen[onnx]' (CPU) or "
            "'wegen[gpu]' (NVIDIA GPUs), or choose backend 'eager'"
        ) from None
    return list(ort.get_available_providers())


def _select_onnx_runtime(request: RuntimeRequest) -> Runtime:
    name = request.device
    kind = name.split(":")[0]
    tensorrt = kind == "tensorrt"
    if tensorrt:
        kind, name = "cuda", name.replace("tensorrt", "cuda", 1)
    available = _onnx_available_providers()
    if kind == "auto":
        kind = next((k for k in ("cuda", "npu") if ONNX_PROVIDERS[k][0] in available), "cpu")
        name = kind
    if kind not in ONNX_PROVIDERS:
        raise RuntimeChoiceError(
            f"the onnx backend runs on cpu, cuda (or tensorrt) and npu, not {request.device!r}"
        )
    provider, package = ONNX_PROVIDERS["tensorrt" if tensorrt else kind]
    if provider not in available:
        raise RuntimeChoiceError(
            f"onnxruntime's {provider} is not installed (this onnxruntime offers "
            f"{', '.join(available)}): install {package}, or choose device 'cpu'"
        )
    precision = "fp32" if request.precision == "auto" and kind == "cpu" else request.precision
    if precision == "auto":
        precision = "fp16"
    if precision not in ("fp32", "fp16"):
        raise RuntimeChoiceError(
            f"the onnx backend runs fp32 or fp16 graphs, not {precision}; choose fp32 or fp16"
        )
    if kind == "cpu" and precision == "fp16":
        raise RuntimeChoiceError("fp16 graphs are slow or unsupported on the CPU; choose fp32")
    index = int(name.split(":")[1]) if ":" in name else 0
    where = "cpu" if kind == "cpu" else f"{'tensorrt' if tensorrt else kind}:{index}"
    return Runtime(
        device=torch.device("cpu"),
        dtype=PRECISIONS[precision],
        backend="onnx",
        memory=request.memory,
        onnx_device=where,
    )


def onnx_providers(runtime: Runtime) -> list[str | tuple[str, dict[str, object]]]:
    """The onnxruntime execution providers for ``runtime``, best first (CPU as the fallback)."""
    kind, _, index = (runtime.onnx_device or "cpu").partition(":")
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    options: dict[str, object] = {"device_id": int(index or 0)}
    chosen: list[str | tuple[str, dict[str, object]]] = []
    if kind == "tensorrt":
        chosen.append((ONNX_PROVIDERS["tensorrt"][0], dict(options)))
        kind = "cuda"
    chosen.append((ONNX_PROVIDERS[kind][0], options))
    return [*chosen, "CPUExecutionProvider"]


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (for timings)."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize()


# --- memory modes -----------------------------------------------------------------------------
def resolve_memory(
    runtime: Runtime, model: nn.Module, free_bytes: int | None = None
) -> tuple[Runtime, api.MemoryAdvice]:
    """``runtime`` with its memory mode resolved for ``model`` (a `WeGenModel`), and the advice.

    ``auto`` takes the first of normal, low, int8 whose planned peak (engine.placement) fits the
    device's free memory; ``free_bytes`` overrides what the device reports (tests, the dialog's
    "what if"). Memory on the device is only measured on CUDA; elsewhere auto is normal. The ONNX
    backend places its own sessions: there every mode is normal.
    """
    from engine import placement

    if runtime.memory not in MEMORY_MODES:
        raise RuntimeChoiceError(
            f"unknown memory mode {runtime.memory!r}; choose one of {', '.join(MEMORY_MODES)}"
        )
    device = runtime.device_name
    if runtime.backend == "onnx":
        advice = api.MemoryAdvice(
            device, None, (), "normal", "normal", "the onnx backend places its own graphs: normal"
        )
        return replace(runtime, memory="normal"), advice
    plan = placement.plan(model.config, runtime.precision, model=model)  # type: ignore[arg-type]
    needs = tuple((m.mode, m.needs_bytes) for m in plan.modes)
    if free_bytes is None and runtime.device.type != "cpu":
        free_bytes = placement.free_device_memory(runtime.device)
        if free_bytes is not None:  # a model already placed there counts as free for the plan
            free_bytes += _bytes_on(model, runtime.device)
    if runtime.device.type == "cpu":
        free_bytes, auto = None, "normal"
        why = "on the CPU the model lives in RAM: low places it as normal does (its hooks run, "
        why += "moving nothing)"
    elif free_bytes is None:
        auto = "normal"
        why = f"free memory is not measured on {runtime.device.type}: auto keeps it all there"
    else:
        auto = plan.choose(free_bytes) or "int8"
        why = (
            f"{placement.gib(free_bytes)} free: {plan.sentence(auto, free_bytes)}"
            if plan.choose(free_bytes)
            else f"nothing fits {placement.gib(free_bytes)} free; int8 needs the least"
        )
    chosen = auto if runtime.memory == "auto" else runtime.memory
    note = f"memory: {chosen}" + (" (auto)" if runtime.memory == "auto" else "") + f" — {why}"
    advice = api.MemoryAdvice(device, free_bytes, needs, auto, chosen, note)
    return replace(runtime, memory=chosen), advice


def _bytes_on(model: nn.Module, device: torch.device) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors if t.device == device)


def apply_memory_mode(model: nn.Module, runtime: Runtime) -> Offloader | None:
    """Put ``model`` (a `WeGenModel`, on the CPU or the device) where ``runtime.memory`` (already
    resolved) wants it. int8 quantizes the LLM's linear layers first. low and int8 return the
    `Offloader` whose hooks move each part onto the device when it runs (on the CPU too, where
    they move nothing); normal moves everything to the device and returns None."""
    if runtime.memory not in ("normal", "low", "int8"):
        raise RuntimeChoiceError(f"resolve the memory mode first (got {runtime.memory!r})")
    if runtime.memory == "int8":
        quantize_llm_int8(model.llm, runtime)  # type: ignore[arg-type]
    if runtime.memory == "normal":
        model.to(runtime.device)
        return None
    return Offloader(model, runtime.device)


# accelerate imports are deferred: the CPU-only normal path never needs them
class Offloader:
    """The low-memory mode, with accelerate's offload hooks: each part (the vision tower, the LLM,
    the UNet, the VAE) waits on the CPU until one of its modules runs; then the others go back
    to the CPU and it comes onto the device (`accelerate.cpu_offload_with_hook`'s CpuOffload,
    driven by a small hook on every module the engine calls: the LLM is called through
    ``llm.model``, its embedding and ``lm_head``, the VAE through its encoder and decoder). The
    projectors (a few MB) stay on the device: the token loop's tensors live there.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        from accelerate import cpu_offload_with_hook
        from accelerate.hooks import add_hook_to_module

        self.device = device
        self.entered: list[str] = []  # the parts in the order they were asked for (tests)
        model.input_proj.to(device)  # type: ignore[union-attr]
        model.output_proj.to(device)  # type: ignore[union-attr]
        llm, decoder = model.llm, model.decoder
        vae = decoder.vae  # type: ignore[union-attr]
        parts: dict[str, tuple[nn.Module, list[nn.Module]]] = {
            "vision": (model.vision, [model.vision]),  # type: ignore[list-item]
            "llm": (llm, [llm.model, llm.model.embed_tokens, llm.lm_head]),  # type: ignore[union-attr, list-item]
            "unet": (decoder.unet, [decoder.unet]),  # type: ignore[union-attr, list-item]
            "vae": (
                vae,
                [
                    m
                    for m in (vae.encoder, vae.decoder, vae.quant_conv, vae.post_quant_conv)
                    if isinstance(m, nn.Module)
                ],
            ),
        }
        self.roots: dict[str, nn.Module] = {}
        self.hooks: dict[str, Any] = {}
        for name, (root, entries) in parts.items():
            for entry in entries:
                add_hook_to_module(entry, _on_enter_hook(self, name), append=True)
            _, self.hooks[name] = cpu_offload_with_hook(root, device)
            self.roots[name] = root
        decoder.execution_device = device  # type: ignore[union-attr]

    def on_device(self, name: str) -> bool:
        first = next(self.roots[name].parameters(), None)
        return first is None or first.device == self.device

    def enter(self, name: str) -> None:
        """``name`` is about to run: the other parts back to the CPU, this one onto the device."""
        if not self.entered or self.entered[-1] != name:
            self.entered.append(name)
        if self.on_device(name):
            return
        from accelerate.utils import clear_device_cache

        for other, hook in self.hooks.items():
            if other != name and self.on_device(other):
                hook.offload()
        clear_device_cache()
        self.hooks[name].hook.pre_forward(self.roots[name])


def _on_enter_hook(offloader: Offloader, part: str) -> Any:
    """An accelerate hook: before a module of ``part`` runs, `Offloader.enter` it and bring the
    tensors it is given to the device (the vision tower's pixels are prepared on the CPU)."""
    from accelerate.hooks import ModelHook

    class OnEnter(ModelHook):  # type: ignore[misc]
        @torch.compiler.disable  # moves weights: never inside a compiled UNet's graph
        def pre_forward(self, module: nn.Module, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            offloader.enter(part)
            return _to(args, offloader.device), _to(kwargs, offloader.device)

    return OnEnter()


def _to(value: Any, device: torch.device) -> Any:
    """Tensors in ``value`` (nested in tuples, lists and dicts) on ``device``; anything else
    (a KV cache) as it is."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


# --- int8 ---------------------------------------------------------------------------------------
def int8_method(device: torch.device) -> str:
    """How the LLM is quantized on ``device``: ``torchao`` (weight-only int8, any device) when it
    is installed, else ``dynamic`` (torch.ao's dynamic int8 linears, CPU only, deprecated in
    torch but working), else a `RuntimeChoiceError` saying what to install."""
    try:
        importlib.import_module("torchao.quantization")
    except ImportError:
        if device.type == "cpu":
            return "dynamic"
        raise RuntimeChoiceError(
            "the int8 memory mode on a GPU needs torchao: pip install torchao, or choose low"
        ) from None
    return "torchao"


def quantize_llm_int8(llm: nn.Module, runtime: Runtime) -> str:
    """Quantize the LLM's linear layers (lm_head included) to int8 in place; returns the method.

    torchao's ``Int8WeightOnlyConfig`` stores each weight in int8 with one scale per output
    channel (what engine.placement counts). Without torchao, on the CPU, torch.ao's
    ``quantize_dynamic`` does it (weights int8 per channel, activations quantized on the fly:
    float32 only)."""
    method = int8_method(runtime.device)
    if method == "torchao":
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torchao's own, on import
            quantize_(llm, Int8WeightOnlyConfig())
        return method
    if runtime.dtype != torch.float32:
        raise RuntimeChoiceError(
            "the int8 memory mode on the CPU without torchao runs in fp32 only: choose precision "
            "fp32, or pip install torchao"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.ao.quantization is deprecated": see int8_method
        torch.ao.quantization.quantize_dynamic(llm, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return method
