"""Which WeGen this is: its version and how this copy was built. Standard library only.

The version is the installed distribution's (``importlib.metadata``); without one (a frozen
bundle that left the metadata out, a checkout never installed) it is the build record's, else the
pyproject.toml's beside the packages, else "unknown".

The build is what the packaging scripts recorded in ``wegen_resources/build.json``, every key
optional and others ignored::

    {"version": "0.1.0", "variant": "cuda", "date": "2026-12-01", "commit": "1a2b3c4",
     "builder": "ci"}

Without that file a checkout says it runs from source, naming its git branch and commit (read
from ``.git`` beside the packages, no git process), and an installed copy (``pip install .``)
says it has no build record.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import wegen_resources

DISTRIBUTION = "wegen"
BUILD_KEYS = ("variant", "date", "commit", "builder")  # the build line's; and "version"
#: written by the packaging scripts; absent in a checkout and in a plain `pip install .`
BUILD_RECORD = wegen_resources.path("build.json")
#: a checkout's root, or site-packages (or a frozen bundle's folder) when installed
ROOT = Path(__file__).resolve().parent.parent


def version() -> str:
    """WeGen's version: the installed one, else build.json's, else pyproject.toml's, else
    "unknown"."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        record = _read_record()
        recorded = str(record.get("version") or "") if isinstance(record, dict) else ""
        return recorded or _pyproject_version(ROOT / "pyproject.toml") or "unknown"


def build() -> str:
    """One line saying how this copy was made, e.g. "cuda build of 2026-12-01, commit 1a2b3c4,
    by ci" or "from source (main at cd192de1f2a3)"."""
    record = _read_record()
    if isinstance(record, str):
        return record
    if record is not None:
        variant, date, commit, builder = (str(record.get(key) or "") for key in BUILD_KEYS)
        line = f"{variant or 'packaged'} build" + (f" of {date}" if date else "")
        line += f", commit {commit}" if commit else ""
        return line + (f", by {builder}" if builder else "")
    if not (ROOT / "pyproject.toml").is_file() and not (ROOT / ".git").exists():
        return "installed without a build record"
    head = _git_head(ROOT)
    if head is None:
        return "from source"
    branch, commit = head
    at = f"{branch} at {commit[:12]}" if branch and commit else branch or commit[:12]
    return f"from source ({at})" if at else "from source"


def _read_record() -> dict[str, object] | str | None:
    """build.json as a dict; what is wrong with it if it is unreadable; None if there is none."""
    if not BUILD_RECORD.is_file():
        return None
    try:
        record = json.loads(BUILD_RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"unreadable build record {BUILD_RECORD}: {e}"
    if not isinstance(record, dict):
        return f"unreadable build record {BUILD_RECORD}: not a JSON object"
    return record


def _pyproject_version(path: Path) -> str | None:
    """The ``version`` of a pyproject.toml whose project is WeGen (no TOML parser on 3.10)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if not re.search(rf'^name\s*=\s*"{DISTRIBUTION}"', text, re.M):
        return None
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    return found.group(1) if found else None


def _git_head(root: Path) -> tuple[str, str] | None:
    """(branch, commit) of the git checkout at ``root`` ("" for a detached HEAD's branch or an
    unborn branch's commit), read from the files under .git; None where there is none."""
    git = root / ".git"
    try:
        if git.is_file():  # a linked worktree or a submodule: "gitdir: PATH"
            pointer = git.read_text(encoding="utf-8").strip()
            if not pointer.startswith("gitdir:"):
                return None
            git = root / pointer.removeprefix("gitdir:").strip()
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return "", head
        ref = head.removeprefix("ref:").strip()
        branch = ref.removeprefix("refs/heads/")
        common = git  # a linked worktree keeps its branches in the main repository
        if (git / "commondir").is_file():
            common = git / (git / "commondir").read_text(encoding="utf-8").strip()
        for base in (git, common):
            if (base / ref).is_file():
                return branch, (base / ref).read_text(encoding="utf-8").strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                if line.endswith(" " + ref):
                    return branch, line.split()[0]
        return branch, ""
    except OSError:
        return None
