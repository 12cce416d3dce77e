"""The README's two commands are what they claim: CI runs its test command, and every page and
picture it links to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_block_after(heading_text: str) -> str:
    start = README.index(heading_text)
    block = re.search(r"```bash\n(.*?)```", README[start:], re.S)
    assert block, f"no bash block after {heading_text!r}"
    return block.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = code_block_after("Set up and run the tests")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == command


def test_the_readme_starts_with_the_two_commands():
    first = README.index("## Two commands for a fresh machine")
    assert first < README.index("## Install")
    assert "wegen" in code_block_after("Set up and run the app").split("&&")[-1]


def test_every_local_link_and_picture_exists():
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert "docs/images/wegen-window.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing
