"""Where things live: the app-data folder, the bundled resources and the bundled model.

The resources are package data (`wegen_resources`), found the same way from a checkout, an
installed wheel and a frozen bundle; there is no repository root to count on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import wegen_resources
from engine.api import BUNDLED_DIR

#: Set this to keep all of the app's data (database, images) in another folder (tests do).
DATA_DIR_ENV = "WEGEN_DATA_DIR"

RESOURCES = wegen_resources.path()
BUNDLED_MODEL = BUNDLED_DIR
ICONS = wegen_resources.path("icons")
STYLES = wegen_resources.path("styles")
TRANSLATIONS = wegen_resources.path("translations")


def data_dir() -> Path:
    """The app-data folder, created if needed.

    ``$WEGEN_DATA_DIR`` if set; otherwise the platform's per-user data folder
    (``%APPDATA%\\WeGen``, ``~/Library/Application Support/WeGen``, ``$XDG_DATA_HOME/wegen``).
    Computed without Qt so that the database can be used from scripts and tests.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = Path(override)
    elif sys.platform == "win32":
        path = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "WeGen"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / "WeGen"
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(xdg) / "wegen"
    path.mkdir(parents=True, exist_ok=True)
    return path
