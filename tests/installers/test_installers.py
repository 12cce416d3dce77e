"""The installers, built for real and used as a new user would (packaging/build.py, smoke.sh).

One build per test run (the cpu variant's .deb and .tar.zst, from this checkout); the build
environment is kept in build/packaging between runs of the same checkout and made again when a
lock file changes. Deselect with ``-m "not packaging"`` for a quick run; CI runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
WORK = ROOT / "build" / "packaging"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux installers"),
    pytest.mark.skipif(
        not (shutil.which("dpkg-deb") and shutil.which("zstd")), reason="needs dpkg-deb and zstd"
    ),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, PACKAGING / "build.py", "deb", "archive", "--out", out, "--work", WORK],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (deb,) = out.glob("*.deb")
    (archive,) = out.glob("*.tar.zst")
    return {"deb": deb, "archive": archive, "report": WORK / "cpu" / "report.json"}


def test_smoke_deb_and_archive(built):
    """Installed into a throwaway root and unpacked: offline CLI turn, GUI 10 s, clean removal."""
    result = subprocess.run(
        ["bash", PACKAGING / "smoke.sh", built["deb"], built["archive"]],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "smoke: all passed" in result.stdout
    times = {}
    for name, seconds in re.findall(r"^smoke-time (\S+) ([\d.]+)$", result.stdout, re.M):
        times.setdefault(name, []).append(float(seconds))
    report = json.loads(built["report"].read_text())
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "installers.json").write_text(
        json.dumps({**report, "smoke_seconds": times}, indent=2) + "\n"
    )


def test_size_budget(built):
    """Below what a plain PyInstaller bundle of PySide6 + PyTorch + onnxruntime takes."""
    report = json.loads(built["report"].read_text())
    assert report["bundle_mib"] < 1100, report
    assert built["deb"].stat().st_size < 320 * 2**20
    assert built["archive"].stat().st_size < 320 * 2**20


def test_deb_declares_itself(built):
    info = subprocess.run(
        ["dpkg-deb", "--info", built["deb"]], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"^ Package: wegen$", info, re.M)
    assert re.search(r"^ Installed-Size: \d+$", info, re.M)
    assert "libxcb-cursor0" in info  # what Qt's xcb platform needs and names wrongly
    listing = subprocess.run(
        ["dpkg-deb", "--contents", built["deb"]], capture_output=True, text=True, check=True
    ).stdout
    for path in (
        "./usr/bin/wegen -> ../lib/wegen/wegen",
        "./usr/bin/wegen-cli -> ../lib/wegen/wegen-cli",
        "./usr/share/applications/org.wegen.WeGen.desktop",
        "./usr/share/icons/hicolor/scalable/apps/org.wegen.WeGen.svg",
        "./usr/share/metainfo/org.wegen.WeGen.metainfo.xml",
        "./usr/share/doc/wegen/copyright",
        "./usr/lib/wegen/LICENSES/THIRD-PARTY.md",
        "./usr/lib/wegen/_internal/wegen_resources/models/wegen-tiny/model.safetensors",
    ):
        assert path in listing, path
    # what a frozen app never needs was cut
    for cut in ("torch/include/", "/torch/test/", "PySide6/Qt/translations/", "libQt6Quick"):
        assert cut not in listing, cut


def _from_archive(archive: Path, *args: str) -> str:
    return subprocess.run(
        ["tar", "--zstd", *args, "-f", archive], capture_output=True, text=True, check=True
    ).stdout


def test_archive_is_one_folder_with_notices(built):
    names = _from_archive(built["archive"], "-t").splitlines()
    tops = {n.split("/")[0] for n in names}
    assert len(tops) == 1
    (top,) = tops
    for name in ("wegen", "wegen-cli", "README.txt", "install-desktop-entry.sh"):
        assert f"{top}/{name}" in names, name
    notices = _from_archive(built["archive"], "-xO", f"{top}/LICENSES/THIRD-PARTY.md")
    build = json.loads(
        _from_archive(built["archive"], "-xO", f"{top}/_internal/wegen_resources/build.json")
    )
    assert "PySide6" in notices and "LGPL" in notices and "torch" in notices
    assert "timm" not in notices and "torchvision" not in notices
    assert build["variant"] == "cpu" and build["version"]


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils")
def test_desktop_entry_validates():
    result = subprocess.run(
        ["desktop-file-validate", PACKAGING / "linux" / "org.wegen.WeGen.desktop"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="appstream")
def test_metainfo_validates(tmp_path):
    text = (PACKAGING / "linux" / "org.wegen.WeGen.metainfo.xml").read_text()
    (tmp_path / "org.wegen.WeGen.metainfo.xml").write_text(
        text.replace("@VERSION@", "0.1.0").replace("@DATE@", "2026-11-30")
    )
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", tmp_path / "org.wegen.WeGen.metainfo.xml"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_packaging_folder_is_not_a_package():
    """A package named `packaging` would shadow the library pip and transformers import."""
    assert not (PACKAGING / "__init__.py").exists()
    import packaging.version

    assert "site-packages" in packaging.version.__file__


def test_one_application_id_everywhere():
    """The app tells Wayland its desktop entry's name; the entry, icon and metainfo share it."""
    from desktop.main import DESKTOP_ID

    assert (PACKAGING / "linux" / f"{DESKTOP_ID}.desktop").is_file()
    metainfo = (PACKAGING / "linux" / f"{DESKTOP_ID}.metainfo.xml").read_text()
    assert f"<id>{DESKTOP_ID}</id>" in metainfo
    assert f'<launchable type="desktop-id">{DESKTOP_ID}.desktop</launchable>' in metainfo
    entry = (PACKAGING / "linux" / f"{DESKTOP_ID}.desktop").read_text()
    assert f"Icon={DESKTOP_ID}\n" in entry
    assert f'APP_ID = "{DESKTOP_ID}"' in (PACKAGING / "build.py").read_text()
