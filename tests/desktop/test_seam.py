"""The app reaches the engine through `engine.api` alone, and that module pulls in no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _engine_imports(path: Path) -> list[str]:
    """Every module under ``engine`` that a file imports, at any depth (function bodies too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "engine":
                names = [f"engine.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names if name == "engine" or name.startswith("engine.")]
    return found


def test_desktop_imports_the_engine_through_engine_api_only() -> None:
    files = sorted((ROOT / "desktop").glob("*.py"))
    assert len(files) > 10
    stray = {
        f"{path.name}: {name}"
        for path in files
        for name in _engine_imports(path)
        if name != "engine.api"
    }
    assert not stray, sorted(stray)


def test_the_seam_test_sees_a_stray_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from engine.api import Task\ndef f():\n    from engine.chat_engine import WeGenEngine\n"
        "import engine.images\nfrom engine import template\n"
    )
    assert sorted(_engine_imports(module)) == [
        "engine.api",
        "engine.chat_engine",
        "engine.images",
        "engine.template",
    ]


def test_importing_engine_api_pulls_in_no_torch() -> None:
    code = (
        "import sys, engine.api\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'diffusers', 'timm') "
        "if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_output_pixels_are_checked_in_one_place() -> None:
    """The NaN/infinity check of model output lives in `engine.images.from_model_output` only
    and nowhere in the app: pixels reach it already converted."""
    for path in sorted((ROOT / "desktop").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for copy in ("isfinite", "nan_to_num", "np.clip", "fromarray"):
            assert copy not in text, f"{path.name}: {copy}"
