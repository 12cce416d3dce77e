"""``wegen`` as a process: no display, a clean start and quit, no torch before the window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from desktop.main import EXIT_NO_DISPLAY, has_display, main
from desktop.paths import REPO_ROOT


def _env(**changes: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env.update(changes)
    return env


def test_no_display_is_reported_clearly(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if sys.platform in ("win32", "darwin"):
        return
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert not has_display()
    assert main([]) == EXIT_NO_DISPLAY
    err = capsys.readouterr().err
    assert "no display" in err and "xvfb-run" in err


def test_starts_and_quits_cleanly_without_a_model(tmp_path: Path) -> None:
    """A machine with no GPU and no model: the window opens, says so, and closes cleanly."""
    env = _env(
        QT_QPA_PLATFORM="offscreen", WEGEN_MODEL=str(tmp_path / "no-model"), CUDA_VISIBLE_DEVICES=""
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "desktop.main",
            "--data-dir",
            str(tmp_path / "data"),
            "--quit-after",
            "1500",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "wegen.sqlite3").is_file()
    assert "Traceback" not in result.stderr


def test_window_modules_do_not_import_torch() -> None:
    code = (
        "import sys, desktop.main, desktop.window, desktop.session, desktop.worker; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
