"""Architecture rules that must hold: no Qt in the engine; runtime choices explained."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from engine.api import RuntimeRequest
from engine.errors import RuntimeChoiceError
from engine.runtime import auto_backend, select_runtime


def test_importing_the_engine_never_imports_qt():
    code = (
        "import sys, engine.chat_engine, engine.cli, engine.official, engine.api; "
        "print([m for m in sys.modules if m.startswith('PySide6')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_importing_the_api_does_not_load_torch():
    code = "import sys, engine.api; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_cpu_runtime_and_impossible_choices():
    rt = select_runtime(RuntimeRequest(device="cpu"))
    assert str(rt.device) == "cpu" and rt.precision == "fp32"
    with pytest.raises(RuntimeChoiceError, match="fp16 is very slow"):
        select_runtime(RuntimeRequest(device="cpu", precision="fp16"))
    with pytest.raises(RuntimeChoiceError, match="unknown device 'tpu'"):
        select_runtime(RuntimeRequest(device="tpu"))
    with pytest.raises(RuntimeChoiceError, match="unknown backend"):
        select_runtime(RuntimeRequest(backend="magic"))


def test_an_installed_app_refuses_to_compile_and_says_why(monkeypatch):
    """A frozen bundle has no compiler nor torch's headers: compiled is not offered there."""
    from engine.api import BACKENDS, usable_backends

    assert usable_backends() == BACKENDS
    assert select_runtime(RuntimeRequest(device="cpu", backend="compiled")).backend == "compiled"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert usable_backends() == ("auto", "eager", "onnx")
    with pytest.raises(RuntimeChoiceError, match="cannot compile models.*Choose eager, or onnx"):
        select_runtime(RuntimeRequest(device="cpu", backend="compiled"))
    assert select_runtime(RuntimeRequest(device="cpu")).backend == "eager"
    assert auto_backend(torch.device("cuda", 0)) == "eager"  # auto never picks what cannot run


def test_auto_backend_is_the_optimised_path_on_cuda_and_eager_on_the_cpu():
    from engine.runtime import Runtime

    assert auto_backend(torch.device("cuda", 0)) == "compiled"
    assert auto_backend(torch.device("cpu")) == "eager"
    assert select_runtime(RuntimeRequest(device="cpu")).backend == "eager"
    gpu = Runtime(torch.device("cuda", 0), torch.float16, backend="compiled")
    assert gpu.static_loop and gpu.captures_decode
    low = Runtime(torch.device("cuda", 0), torch.float16, backend="compiled", memory="low")
    assert low.static_loop and not low.captures_decode  # the offload hooks move weights
    cpu = Runtime(torch.device("cpu"), torch.float32, backend="compiled")
    assert cpu.static_loop and not cpu.captures_decode
    eager = Runtime(torch.device("cuda", 0), torch.float16, backend="eager")
    assert not eager.static_loop and not eager.captures_decode


def test_missing_accelerators_say_what_to_install():
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeChoiceError, match="CUDA build of PyTorch"):
            select_runtime(RuntimeRequest(device="cuda"))
    with pytest.raises(RuntimeChoiceError, match="torch_npu"):
        select_runtime(RuntimeRequest(device="npu"))
