"""`wegen_resources.path`: real files on disk wherever the package is, and a clear refusal where
there are none (a zip)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import wegen_resources


def test_resources_are_real_files_in_the_package() -> None:
    config = wegen_resources.path("models", "wegen-tiny", "config.json")
    assert isinstance(config, Path) and config.is_file()
    assert wegen_resources.path() == Path(wegen_resources.__file__).parent
    for folder in ("icons", "styles", "translations"):
        assert wegen_resources.path(folder).is_dir()


def test_a_zipped_package_is_refused_with_what_to_do(tmp_path: Path) -> None:
    archive = tmp_path / "wegen.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(wegen_resources.__file__, "wegen_resources/__init__.py")
    code = (
        f"import sys; sys.path.insert(0, {str(archive)!r}); import wegen_resources\n"
        "try:\n    wegen_resources.path('models')\nexcept RuntimeError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert "inside an archive" in done.stdout and "pip install" in done.stdout
