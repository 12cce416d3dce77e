"""Where the engine's per-machine caches go (engine.caches)."""

from __future__ import annotations

import os
import sys

import pytest

from engine.caches import cache_base, use_compile_cache
from engine.onnx_runtime import cache_root


@pytest.fixture
def no_cache_env(monkeypatch):
    for name in ("WEGEN_CACHE", "XDG_CACHE_HOME", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_wegen_cache_wins_and_onnx_exports_live_under_it(no_cache_env, tmp_path):
    no_cache_env.setenv("WEGEN_CACHE", str(tmp_path))
    assert cache_base() == tmp_path
    assert cache_root() == tmp_path / "onnx"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG layout is Linux's")
def test_the_user_cache_folder_by_default(no_cache_env, tmp_path):
    no_cache_env.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_base() == tmp_path / "wegen"
    no_cache_env.delenv("XDG_CACHE_HOME")
    no_cache_env.setenv("HOME", str(tmp_path / "home"))
    assert cache_base() == tmp_path / "home" / ".cache" / "wegen"


def test_compile_caches_move_out_of_the_temporary_folder(no_cache_env, tmp_path):
    no_cache_env.setenv("WEGEN_CACHE", str(tmp_path))
    assert use_compile_cache() == tmp_path / "compile" / "inductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "compile" / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "compile" / "triton")


def test_a_compile_cache_the_user_chose_is_kept(no_cache_env, tmp_path):
    no_cache_env.setenv("WEGEN_CACHE", str(tmp_path))
    no_cache_env.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    no_cache_env.setenv("TRITON_CACHE_DIR", str(tmp_path / "kernels"))
    assert use_compile_cache() == tmp_path / "mine"
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "kernels")
