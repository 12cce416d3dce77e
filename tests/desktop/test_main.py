"""``wegen`` as a process: no display, a clean start and quit, no torch before the window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.main import EXIT_MISSING_LIBRARIES, EXIT_NO_DISPLAY, has_display, main

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout the tests run in


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


def test_the_window_paints_before_the_model_loads(tmp_path: Path) -> None:
    """The engine starts loading only once the window has painted (the report's order)."""
    env = _env(QT_QPA_PLATFORM="offscreen", WEGEN_MODEL=str(tmp_path / "no-model"))
    result = subprocess.run(
        [sys.executable, "-m", "desktop.main", "--data-dir", str(tmp_path / "d"), "--report-start"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["first-paint", "model failed", "closing"]


QUIT_WHILE_LOADING = """
import sys, threading
from desktop.fake_engine import FakeEngine
from desktop.main import main
import desktop.worker

loading = threading.Event()

class StuckEngine(FakeEngine):
    def load(self, model_dir, runtime):
        loading.set()
        threading.Event().wait()  # a load that never ends (and cannot be cancelled)

main(
    ["--data-dir", sys.argv[1], "--model", sys.argv[2], "--quit-after", "1500"],
    engine_factory=StuckEngine,
)
print("main returned: the process would have waited for the load", flush=True)
"""


def test_quit_does_not_wait_for_a_model_load(tmp_path: Path) -> None:
    """Closing the window while the engine loads ends the process (the worker thread cannot be
    joined), with the database closed and no Qt abort about a running thread. (The worker is
    busy at the quit either verifying the bundled folder, which imports torch, or in the load
    that never ends.)"""
    from desktop.paths import BUNDLED_MODEL

    result = subprocess.run(
        [sys.executable, "-c", QUIT_WHILE_LOADING, str(tmp_path / "d"), str(BUNDLED_MODEL)],
        cwd=REPO_ROOT,
        env=_env(QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "main returned" not in result.stdout
    assert "QThread" not in result.stderr and "Traceback" not in result.stderr
    log = (tmp_path / "d" / "wegen.log").read_text()
    assert "quitting while the engine is busy" in log
    from desktop.database import Database

    Database(tmp_path / "d").close()  # intact


def test_missing_xcb_libraries_are_named_with_their_packages(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from desktop import doctor

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(
        doctor, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    )
    assert main(["--data-dir", str(tmp_path / "d")]) == EXIT_MISSING_LIBRARIES
    err = capsys.readouterr().err
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in err
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in err
    assert "xcb-cursor0 or" not in err


LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibweird.so.9 => not found
"""


def test_ldd_report_becomes_debian_packages() -> None:
    from desktop.doctor import not_found, packages_for

    missing = not_found(LDD_OUTPUT)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libweird.so.9"]
    assert packages_for(missing) == ["libxcb-icccm4", "libxcb-keysyms1", "libweird.so.9"]
    assert packages_for(["libxkbcommon-x11.so.0", "libxcb-cursor.so.0"]) == [
        "libxkbcommon-x11-0",
        "libxcb-cursor0",
    ]


@pytest.mark.parametrize(
    ("env", "xcb"),
    [
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "w", "XDG_SESSION_TYPE": "x11"}, True),
        ({}, False),
    ],
)
def test_which_starts_use_xcb(
    env: dict[str, str], xcb: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop.doctor import would_use_xcb

    monkeypatch.setattr(sys, "platform", "linux")
    assert would_use_xcb(env) is xcb


def test_doctor_checks_the_real_plugin(tmp_path: Path) -> None:
    """``wegen --doctor`` runs ldd on this Qt's xcb plugin and says what it found."""
    result = subprocess.run(
        [sys.executable, "-m", "desktop.main", "--doctor", "--data-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    from engine.api import version

    assert result.stdout.startswith(f"WeGen {version()}, ")
    if sys.platform.startswith("linux"):
        assert "libqxcb.so" in result.stdout
        from desktop.doctor import ldd, not_found, xcb_plugin

        plugin = xcb_plugin()
        report = ldd(plugin) if plugin is not None else None
        if report is not None and not_found(report):
            assert result.returncode == 1 and "sudo apt-get install" in result.stdout
        elif report is not None:
            assert "every library it needs is installed" in result.stdout
