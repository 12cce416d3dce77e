"""The one place that decides device, precision and backend.

Everything else takes a resolved `Runtime`. ``torch_npu`` is imported here and only here. Each
impossible choice raises `RuntimeChoiceError` saying what to install or change.

The ``onnx`` backend runs the model's graphs on onnxruntime: the device picks the execution
provider (`onnx_providers`: cpu -> CPU, cuda -> CUDA or TensorRT, npu -> CANN), checked against
the providers the installed onnxruntime offers rather than against PyTorch's devices.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

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
    memory: str = "normal"
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

    def describe(self) -> str:
        return f"{self.device_name} · {self.precision} · {self.backend}"


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
        raise RuntimeChoiceError(f"unknown memory mode {request.memory!r}; choose normal or low")
    if request.backend == "onnx":
        return _select_onnx_runtime(request)
    device = _resolve_device(request.device)
    dtype = _resolve_dtype(request.precision, device)
    return Runtime(device=device, dtype=dtype, backend=request.backend, memory=request.memory)


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


def _parks(module: object, runtime: Runtime) -> bool:
    """Whether the low-memory mode moves ``module`` (ONNX sessions stay where they are)."""
    return (
        runtime.memory == "low"
        and runtime.device.type != "cpu"
        and isinstance(module, torch.nn.Module)
    )


def park(module: torch.nn.Module, runtime: Runtime) -> None:
    """In the low-memory mode, keep ``module`` on the CPU until `borrowed`."""
    if _parks(module, runtime):
        module.to("cpu")


@contextlib.contextmanager
def borrowed(module: torch.nn.Module, runtime: Runtime) -> Iterator[torch.nn.Module]:
    """Use a parked module on the runtime's device, then park it again and free the memory."""
    if not _parks(module, runtime):
        yield module
        return
    module.to(runtime.device)
    try:
        yield module
    finally:
        module.to("cpu")
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()
