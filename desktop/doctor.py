"""``wegen --doctor``: what this machine lacks to open the window, said in packages to install.

Qt's xcb platform plugin (X11) links some twenty system libraries. When one is missing, Qt names
only the one it guesses (it says "xcb-cursor0 or libxcb-cursor0 is needed" even when that one is
installed and libxcb-icccm4 is what is missing) and aborts. Here ``ldd`` on the plugin lists every
library the loader cannot find, and `DEBIAN_PACKAGES` turns each into the package that has it.
The app runs the same check before it creates the window, so it can say it instead of Qt. No Qt
widgets; QtCore only to find the plugin folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: library (soname) -> the Debian/Ubuntu package that installs it, for what the xcb plugin and
#: Qt's GUI library load. Ubuntu 24.04 and Debian 13 renamed a few with a "t64" suffix; apt
#: finds those by the old name too.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

#: everything the xcb plugin needs on a fresh Debian/Ubuntu desktop, for the README and the
#: message (one apt-get line that fixes every case at once)
XCB_DEPENDENCIES = (
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libegl1",
    "libfontconfig1",
    "libdbus-1-3",
)

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """Qt's xcb platform plugin (``plugins/platforms/libqxcb.so``), if this Qt has one."""
    from PySide6.QtCore import QLibraryInfo

    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    plugin = folder / "libqxcb.so"
    return plugin if plugin.is_file() else None


def would_use_xcb(env: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will open the window through X11 here (Linux/BSD, no other platform chosen,
    not a Wayland session, which Qt 6 prefers)."""
    env = os.environ if env is None else env
    if sys.platform in ("win32", "darwin"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "") != "x11"
    return bool(env.get("DISPLAY")) and not wayland


def ldd(library: Path) -> str | None:
    """``ldd``'s report on ``library``; None where there is no ldd or it cannot run."""
    program = shutil.which("ldd")
    if program is None:
        return None
    try:
        result = subprocess.run(
            [program, str(library)], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout


def not_found(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as "not found", each once, in its order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def packages_for(libraries: list[str]) -> list[str]:
    """The Debian packages for ``libraries`` (a library we do not know stands for itself)."""
    return list(dict.fromkeys(DEBIAN_PACKAGES.get(name, name) for name in libraries))


def missing_xcb_libraries() -> list[str] | None:
    """The system libraries the xcb plugin cannot load; None where that cannot be checked."""
    plugin = xcb_plugin()
    if plugin is None:
        return None
    report = ldd(plugin)
    return None if report is None else not_found(report)


def missing_libraries_message(libraries: list[str]) -> str:
    packages = packages_for(libraries)
    return (
        "wegen: the window cannot open: Qt's X11 (xcb) platform plugin needs system libraries "
        f"that are not installed: {', '.join(libraries)}.\n"
        "On Debian or Ubuntu, install them with:\n"
        f"    sudo apt-get install {' '.join(packages)}\n"
        "(every library the window needs: sudo apt-get install "
        f"{' '.join(XCB_DEPENDENCIES)})\n"
        "Other systems name these packages similarly (xcb-util-wm, xcb-util-keysyms, "
        "libxkbcommon-x11...). `wegen --doctor` checks again."
    )


def report() -> tuple[str, bool]:
    """The ``--doctor`` text and whether everything needed is there."""
    from PySide6 import __version__ as pyside_version

    from desktop.paths import BUNDLED_MODEL, data_dir
    from engine.api import build, version

    lines = [
        f"WeGen {version()}, {build()}",
        f"Python {sys.version.split()[0]} on {sys.platform}, PySide6 {pyside_version}",
        f"data folder: {data_dir()}",
    ]
    ok = True
    if (BUNDLED_MODEL / "config.json").is_file():
        lines.append(f"bundled model: {BUNDLED_MODEL}")
    else:
        lines.append(f"bundled model: MISSING ({BUNDLED_MODEL})")
        ok = False
    display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
    lines.append(f"display: {display or 'none (set DISPLAY, or run under xvfb-run)'}")
    if sys.platform in ("win32", "darwin"):
        return "\n".join(lines), ok
    plugin = xcb_plugin()
    if plugin is None:
        lines.append("X11 (xcb) platform plugin: not in this Qt")
        return "\n".join(lines), ok
    lines.append(f"X11 (xcb) platform plugin: {plugin}")
    output = ldd(plugin)
    if output is None:
        lines.append("  cannot check its libraries: `ldd` is not available")
        return "\n".join(lines), ok
    missing = not_found(output)
    if missing:
        lines.append(missing_libraries_message(missing))
        return "\n".join(lines), False
    lines.append("  every library it needs is installed")
    return "\n".join(lines), ok
