"""A normal install works: the wheel carries every resource, and the installed ``wegen-cli`` draws
with the bundled model from a fresh environment, away from this checkout.

The wheel is built from a copy of the checkout's files (those git tracks or would track: a
``build.json`` left by a packaging run stays out), so nothing is written into the checkout. The
fresh venv sees the dev venv's third-party packages through a ``.pth`` line naming its
site-packages: a directory named that way is only put on sys.path, its own ``.pth`` files (the
editable install of this checkout among them) are not run, so ``engine`` is the installed one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from engine.png_metadata import read_png_metadata

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "desktop", "training", "wegen_resources")


def _run(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def _source_files() -> list[str]:
    """The checkout's files as git sees them (tracked, or untracked and not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to know which files are the project's")
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return [f for f in listed.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The wheel of this checkout, and the files under wegen_resources it should carry."""
    files = _source_files()
    src = tmp_path_factory.mktemp("src")
    for name in files:
        if "/" not in name or name.split("/", 1)[0] in PACKAGES:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", out, src)  # fmt: skip
    (built,) = out.glob("wegen-*.whl")
    return built, [f for f in files if f.startswith("wegen_resources/")]


def test_the_wheel_carries_every_resource(wheel: tuple[Path, list[str]]) -> None:
    built, resources = wheel
    names = set(zipfile.ZipFile(built).namelist())
    assert "wegen_resources/models/wegen-tiny/model.safetensors" in resources
    missing = sorted(set(resources) - names)
    assert not missing


def test_the_installed_cli_draws_with_the_bundled_model(
    wheel: tuple[Path, list[str]], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel[0])
    fresh_site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    dev_site = sysconfig.get_paths()["purelib"]
    (Path(fresh_site.stdout.strip()) / "wegen_dev_venv.pth").write_text(dev_site + "\n")

    home, data, work = (tmp_path / d for d in ("home", "data", "work"))
    for folder in (home, data, work):
        folder.mkdir()
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "WEGEN_MODEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        HOME=str(home), WEGEN_DATA_DIR=str(data), CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="2"
    )

    where = _run(
        python,
        "-c",
        "import engine, wegen_resources, desktop.paths as p\n"
        "print(engine.__file__, wegen_resources.__file__, p.BUNDLED_MODEL, p.STYLES, sep='\\n')",
        cwd=work,
        env=env,
    ).stdout.split("\n")[:4]
    for path in map(Path, where):
        assert path.is_relative_to(venv) and not path.is_relative_to(ROOT), path
    assert (Path(where[2]) / "model.safetensors").is_file()
    assert (Path(where[3]) / "dark.qss").is_file()

    cli = venv / ("Scripts/wegen-cli.exe" if os.name == "nt" else "bin/wegen-cli")
    # two denoising steps: this checks the install, not the drawing (tests/engine/test_bundled.py)
    _run(cli, "generate", "a red circle", "--seed", "1", "--steps", "2", "-o", "out.png",
         cwd=work, env=env)  # fmt: skip
    meta = read_png_metadata(work / "out.png")
    assert meta.wegen is not None and meta.wegen["model"] == "wegen-tiny"
    assert meta.wegen["settings"]["seed"] == 1

    info = _run(cli, "info", cwd=work, env=env).stdout
    version = wheel[0].name.split("-")[1]  # wegen-VERSION-py3-none-any.whl
    assert info.startswith(f"wegen      {version}, installed without a build record\n"), info
    assert str(venv) in info  # the bundled model's folder
