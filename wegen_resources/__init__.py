"""The files WeGen ships beside its code: icons, styles, translations and the bundled model.

They are package data, so a checkout, an installed wheel and a PyInstaller one-folder bundle all
carry them, and `path` finds them in each. No torch, no Qt: the engine and the app both use it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def path(*parts: str) -> Path:
    """The file or folder ``wegen_resources/<parts>`` as a real path on disk (it may not exist).

    A real path, not an `importlib.resources` Traversable: the bundled model is memory-mapped.
    Raises RuntimeError when the package sits inside a zip archive, where no such path exists.
    """
    root = files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(
            f"WeGen's resources are inside an archive ({root}), but the bundled model must be a "
            "file on disk: install WeGen unzipped (`pip install` does; a PyInstaller bundle "
            "must collect wegen_resources as data files)"
        )
    return root.joinpath(*parts)
