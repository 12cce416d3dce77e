"""Build WeGen's installers from this checkout into dist/.

    python packaging/build.py deb archive            # the cpu variant: a .deb and a .tar.zst
    python packaging/build.py deb --variant cuda     # PyTorch's CUDA build (runs where a GPU is)
    python packaging/build.py bundle                 # only the one-folder app, in build/packaging

Steps: a build environment from the variant's lock file (packaging/requirements/VARIANT.txt,
every package pinned, installed without resolving so nothing newer slips in), the project as a
wheel built from the last commit as a clean checkout has it (``--worktree``: from the tracked
files as they are now; the bundled model and the other resources travel as package data),
PyInstaller's one-folder bundle (packaging/wegen.spec), then the installers. The environment is kept in build/packaging
and made again only when a lock file changes. This folder is a set of scripts, never a package:
a package named `packaging` would shadow the library pip, setuptools and transformers import.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP_ID = "org.wegen.WeGen"
VARIANTS = ("cpu", "cuda")
FORMATS = ("bundle", "archive", "deb")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
PREFIX = "usr/lib/wegen"  # where the .deb puts the bundle
#: Debian packages the frozen Qt needs on a desktop (xcb platform, fonts, GL); the rest is inside
DEB_DEPENDS = (
    "libc6 (>= 2.28), libstdc++6, libgl1, libegl1, libfontconfig1, libfreetype6, libdbus-1-3, "
    "libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, "
    "libxcb-shape0, libxcb-xkb1, libxcb-render-util0, libxcb-image0, libx11-xcb1"
)


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def run(*args: str | Path, **kw: object) -> None:
    subprocess.run([str(a) for a in args], check=True, **kw)  # type: ignore[call-overload]


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    for line in text.splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit("packaging: no version in pyproject.toml")


def git_commit() -> tuple[str, bool]:
    """(short commit, whether the work tree differs from it); ("", False) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except OSError:
        return "", False
    return commit, dirty


class Build:
    def __init__(
        self, variant: str, work: Path, out: Path, lock: Path | None = None, worktree: bool = False
    ) -> None:
        self.variant = variant
        self.worktree = worktree
        self.lock = lock or HERE / "requirements" / f"{variant}.txt"
        self.work = work / variant
        self.out = out
        self.version = project_version()
        self.env = self.work / "env"
        self.python = self.env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        self.bundle = self.work / "dist" / "wegen"
        machine = os.uname().machine if hasattr(os, "uname") else "x86_64"
        self.arch = ARCH.get(machine, machine)
        self.machine = machine
        self.timings: dict[str, float] = {}

    # -- the pinned environment -------------------------------------------------------------
    def locks(self) -> list[Path]:
        return [self.lock, HERE / "requirements" / "build.txt"]

    def environment(self) -> None:
        stamp = self.env / "lock.sha256"
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in self.locks())).hexdigest()
        if stamp.exists() and stamp.read_text() == digest and self.python.exists():
            log(f"build environment {self.env} is up to date")
            return
        log(f"making the build environment {self.env} from {', '.join(map(str, self.locks()))}")
        shutil.rmtree(self.env, ignore_errors=True)
        venv.create(self.env, with_pip=True, clear=True)
        for lock in self.locks():
            # --no-deps: the lock is the whole list, so nothing is resolved or upgraded
            run(self.python, "-m", "pip", "install", "-q", "--no-deps", "-r", lock)
        run(self.python, "-m", "pip", "check")
        stamp.write_text(digest)

    def install_project(self) -> None:
        wheels, source = self.work / "wheel", self.work / "source"
        for folder in (wheels, source):
            shutil.rmtree(folder, ignore_errors=True)
        source.mkdir(parents=True)
        if self.worktree:  # the files git tracks, as they are now
            listed = subprocess.run(
                ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
            ).stdout.decode()
            for name in filter(None, listed.split("\0")):
                if (ROOT / name).is_file():
                    (source / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / name, source / name)
        else:  # the last commit, as a clean checkout has it
            archive = subprocess.run(
                ["git", "archive", "--format=tar", "HEAD"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            ).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(source, filter="data")
        run(
            self.python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
            "-w", wheels, source,
        )  # fmt: skip
        (wheel,) = wheels.glob("wegen-*.whl")
        run(self.python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel)
        site = subprocess.run(
            # -I: the installed package, never the checkout's (the current folder is not on the path)
            [self.python, "-I", "-c", "import wegen_resources, os; print(os.path.dirname(wegen_resources.__file__))"],
            capture_output=True, text=True, check=True, cwd=self.work,
        ).stdout.strip()  # fmt: skip
        assert Path(site).resolve() != (ROOT / "wegen_resources").resolve(), site
        commit, dirty = git_commit()
        dirty = dirty and self.worktree  # from HEAD, the build is the commit whatever the tree
        info = {
            "version": self.version,
            "variant": self.variant,
            "date": datetime.date.today().isoformat(),
            "commit": commit + ("-dirty" if dirty else ""),
            "builder": "packaging/build.py",
            "platform": f"{sys.platform}-{self.machine}",
        }
        Path(site, "build.json").write_text(json.dumps(info, indent=2) + "\n")
        log(f"installed {wheel.name}; build {info}")

    # -- the one-folder bundle --------------------------------------------------------------
    def freeze(self) -> None:
        shutil.rmtree(self.work / "dist", ignore_errors=True)
        icons = self.work / "icons"
        run(self.python, HERE / "icons.py", icons)
        run(
            self.python, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
            "--distpath", self.work / "dist", "--workpath", self.work / "pyinstaller",
            HERE / "wegen.spec",
            cwd=self.work, env={**os.environ, "WEGEN_ICON_DIR": str(icons)},
        )  # fmt: skip
        if sys.platform.startswith("linux"):
            (self.bundle / "wegen-cli").symlink_to("wegen")
        self.notices(self.bundle / "LICENSES")

    def notices(self, folder: Path) -> None:
        """The licence files of every bundled distribution, and a table of them."""
        script = HERE / "notices.py"
        run(self.python, script, folder, ROOT / "wegen_resources" / "models" / "wegen-tiny")

    # -- installers -------------------------------------------------------------------------
    def name(self, suffix: str) -> str:
        return f"wegen-{self.version}-linux-{self.machine}-{self.variant}{suffix}"

    def share(self, root: Path) -> None:
        """The desktop entry, icon and AppStream metadata under ``root``/share."""
        (root / "applications").mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "linux" / f"{APP_ID}.desktop", root / "applications")
        icons = root / "icons" / "hicolor" / "scalable" / "apps"
        icons.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "wegen_resources" / "icons" / "wegen.svg", icons / f"{APP_ID}.svg")
        (root / "metainfo").mkdir(parents=True, exist_ok=True)
        metainfo = (HERE / "linux" / f"{APP_ID}.metainfo.xml").read_text()
        metainfo = metainfo.replace("@VERSION@", self.version).replace(
            "@DATE@", datetime.date.today().isoformat()
        )
        (root / "metainfo" / f"{APP_ID}.metainfo.xml").write_text(metainfo)

    def archive(self) -> Path:
        top = f"wegen-{self.version}"
        stage = self.work / "archive" / top
        shutil.rmtree(stage.parent, ignore_errors=True)
        shutil.copytree(self.bundle, stage, symlinks=True)
        self.share(stage / "share")
        shutil.copy(HERE / "linux" / "install-desktop-entry.sh", stage)
        shutil.copy(HERE / "linux" / "README-archive.txt", stage / "README.txt")
        target = self.out / self.name(".tar.zst")
        plain = target.with_suffix("")  # .tar
        with tarfile.open(plain, "w") as tar:
            tar.add(stage, arcname=top)
        run("zstd", "-q", "-f", "-T0", "-12", "--rm", plain, "-o", target)
        return target

    def deb(self) -> Path:
        stage = self.work / "deb"
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(self.bundle, stage / PREFIX, symlinks=True)
        (stage / "usr/bin").mkdir(parents=True)
        for program in ("wegen", "wegen-cli"):  # relative, so an unpacked root works as well
            (stage / "usr/bin" / program).symlink_to(f"../lib/wegen/{program}")
        self.share(stage / "usr/share")
        doc = stage / "usr/share/doc/wegen"
        doc.mkdir(parents=True)
        shutil.copy(HERE / "linux" / "copyright", doc / "copyright")
        for path in stage.rglob("*"):  # as dpkg expects, whatever the umask was
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        size_kib = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file()) // 1024
        control = stage / "DEBIAN"
        control.mkdir()
        (control / "control").write_text(
            f"Package: wegen{'-cuda' if self.variant == 'cuda' else ''}\n"
            f"Version: {self.version}\n"
            f"Architecture: {self.arch}\n"
            "Maintainer: WeGen desktop developers <wegen@users.noreply.github.com>\n"
            f"Installed-Size: {size_kib}\n"
            f"Depends: {DEB_DEPENDS}\n"
            + ("Conflicts: wegen\n" if self.variant == "cuda" else "Conflicts: wegen-cuda\n")
            + "Section: graphics\n"
            "Priority: optional\n"
            "Homepage: https://github.com/wegen-desktop/wegen\n"
            "Description: create, refine, restore and restyle images by chatting, locally\n"
            " WeGen desktop runs the WeGen multimodal model on this computer: ask for an\n"
            " image, refine it in later turns, restore or restyle a photo, or ask about it.\n"
            " Nothing leaves the machine. It ships a small model, wegen-tiny, that draws a\n"
            " world of coloured shapes; larger WeGen models are opened from a folder.\n"
        )
        md5 = []
        for path in sorted(stage.rglob("*")):
            if path.is_file() and not path.is_symlink() and "DEBIAN" not in path.parts:
                digest = hashlib.md5(path.read_bytes()).hexdigest()
                md5.append(f"{digest}  {path.relative_to(stage).as_posix()}")
        (control / "md5sums").write_text("\n".join(md5) + "\n")
        target = (
            self.out
            / f"wegen{'-cuda' if self.variant == 'cuda' else ''}_{self.version}_{self.arch}.deb"
        )
        run("dpkg-deb", "--root-owner-group", "-Zzstd", "-z12", "--build", stage, target)
        return target

    def timed(self, step: str, fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = fn()
        self.timings[step] = round(time.perf_counter() - start, 1)
        log(f"{step}: {self.timings[step]} s")
        return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("formats", nargs="+", choices=FORMATS)
    ap.add_argument("--variant", choices=VARIANTS, default="cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "packaging")
    ap.add_argument("--lock", type=Path, help="another lock file (Windows, macOS: lock.py --out)")
    ap.add_argument(
        "--worktree",
        action="store_true",
        help="build the app from the tracked files as they are now (default: the last commit)",
    )
    ap.add_argument(
        "--reuse-bundle", action="store_true", help="skip the freeze if a bundle exists"
    )
    args = ap.parse_args(argv)
    if not sys.platform.startswith("linux") and set(args.formats) - {"bundle"}:
        raise SystemExit(
            "packaging: build.py makes the Linux installers; on Windows and macOS build the "
            "bundle here and the installer with packaging/windows or packaging/macos"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    build = Build(args.variant, args.work.resolve(), args.out.resolve(), args.lock, args.worktree)
    if not (args.reuse_bundle and (build.bundle / "wegen").exists()):
        build.timed("environment", build.environment)
        build.timed("project", build.install_project)
        build.timed("freeze", build.freeze)
    made = []
    if "archive" in args.formats:
        made.append(build.timed("archive", build.archive))
    if "deb" in args.formats:
        made.append(build.timed("deb", build.deb))
    bundle_mb = (
        sum(p.stat().st_size for p in build.bundle.rglob("*") if p.is_file() and not p.is_symlink())
        / 2**20
    )
    report = {
        "variant": args.variant,
        "bundle_mib": round(bundle_mb, 1),
        "artifacts": {p.name: round(p.stat().st_size / 2**20, 1) for p in made},
        "seconds": build.timings,
    }
    (build.work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report))
    for path in made:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
