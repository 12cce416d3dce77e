"""The one place that decides device, precision and backend.

Everything else takes a resolved `Runtime`. ``torch_npu`` is imported here and only here. Each
impossible choice raises `RuntimeChoiceError` saying what to install or change.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from engine.api import RuntimeRequest
from engine.errors import RuntimeChoiceError

DEVICES = ("auto", "cuda", "npu", "mps", "cpu")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BACKENDS = ("eager", "compiled")
MEMORY_MODES = ("normal", "low")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    backend: str = "eager"
    memory: str = "normal"

    @property
    def precision(self) -> str:
        return next(name for name, dt in PRECISIONS.items() if dt == self.dtype)

    def describe(self) -> str:
        return f"{self.device} · {self.precision} · {self.backend}"


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
    device = _resolve_device(request.device)
    dtype = _resolve_dtype(request.precision, device)
    if request.backend not in BACKENDS:
        raise RuntimeChoiceError(
            f"unknown backend {request.backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    if request.memory not in MEMORY_MODES:
        raise RuntimeChoiceError(f"unknown memory mode {request.memory!r}; choose normal or low")
    return Runtime(device=device, dtype=dtype, backend=request.backend, memory=request.memory)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (for timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize()


def park(module: torch.nn.Module, runtime: Runtime) -> None:
    """In the low-memory mode, keep ``module`` on the CPU until `borrowed`."""
    if runtime.memory == "low" and runtime.device.type != "cpu":
        module.to("cpu")


@contextlib.contextmanager
def borrowed(module: torch.nn.Module, runtime: Runtime) -> Iterator[torch.nn.Module]:
    """Use a parked module on the runtime's device, then park it again and free the memory."""
    if runtime.memory != "low" or runtime.device.type == "cpu":
        yield module
        return
    module.to(runtime.device)
    try:
        yield module
    finally:
        module.to("cpu")
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()
