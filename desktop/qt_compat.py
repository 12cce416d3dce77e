"""Work-arounds for bugs in the Qt binding, applied once when the package is imported.

PySide6 6.12.0 on CPython 3.10/3.11 drops a reference to ``None`` every time a wrapped C++ method
that returns ``void`` is called (``QLabel.setText``, ``QCoreApplication.processEvents``...). On
CPython 3.12+ ``None`` is immortal, which hides the bug; on 3.10/3.11 the interpreter aborts with
"Fatal Python error: none_dealloc" after some ten thousand such calls, i.e. within seconds of
using the app. PySide6 6.11 does not have the bug. We detect it by its behaviour and, where it is
present, make ``None``, ``True`` and ``False`` effectively immortal, as CPython 3.12 does.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject

_IMMORTAL = 1 << 40  # references added; more void calls than any session makes


def void_calls_leak_none() -> bool:
    """Whether calling a ``void`` Qt method loses a reference to ``None`` (the PySide6 bug)."""
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - 8


def apply() -> bool:
    """Apply the work-around if this interpreter and binding need it; return whether it did."""
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):
        return False  # immortal singletons, or a debug build whose object layout differs
    if not void_calls_leak_none():
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every object in a release build of CPython < 3.12.
        ctypes.c_ssize_t.from_address(id(singleton)).value += _IMMORTAL
    return True


APPLIED = apply()
