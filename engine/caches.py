"""Where the engine keeps what it makes once per machine and reuses on every later launch.

``$WEGEN_CACHE`` if set, else the platform's user cache folder (``~/.cache/wegen`` on Linux,
``~/Library/Caches/wegen`` on macOS, ``%LOCALAPPDATA%\\wegen`` on Windows):

* ``onnx/`` — ONNX exports of PyTorch model folders (`engine.onnx_runtime`);
* ``compile/`` — torch.compile's artefacts: Inductor's compiled graphs (its FX-graph and
  AOTAutograd caches) and Triton's kernels. torch keeps them in the system's temporary folder by
  default, which many systems empty at every boot, so a compiled backend would compile again
  after each restart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_base() -> Path:
    """The folder every engine cache lives under."""
    if env := os.environ.get("WEGEN_CACHE"):
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "wegen"


def use_compile_cache() -> Path:
    """Point torch.compile's on-disk caches at ``compile/`` under `cache_base` (call it before the
    first compile); a folder the user chose with ``TORCHINDUCTOR_CACHE_DIR`` or
    ``TRITON_CACHE_DIR`` is kept. Returns Inductor's folder."""
    root = cache_base() / "compile"
    inductor = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "inductor")))
    os.environ.setdefault("TRITON_CACHE_DIR", str(root / "triton"))
    return inductor
