"""WeGen's version and build line: from the installed metadata, a packaging script's build.json,
or the checkout's git files, each read without running anything."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from engine import build_info
from engine.build_info import build, version

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in checkout (pyproject.toml and .git on the branch main) and no build.json."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "wegen"\nversion = "9.8.7"\n')
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    monkeypatch.setattr(build_info, "ROOT", tmp_path)
    monkeypatch.setattr(build_info, "BUILD_RECORD", tmp_path / "none" / "build.json")
    return tmp_path


def _not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(build_info.metadata, "version", missing)


def test_the_version_is_the_installed_distributions() -> None:
    assert version() == metadata.version("wegen")


def test_without_metadata_the_version_is_the_records_else_the_pyprojects_else_unknown(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _not_installed(monkeypatch)
    record = checkout / "build.json"
    record.write_text(json.dumps({"version": "9.9.0", "variant": "cpu"}))
    monkeypatch.setattr(build_info, "BUILD_RECORD", record)
    assert version() == "9.9.0"  # a frozen bundle that left the metadata out
    record.unlink()
    assert version() == "9.8.7"  # a checkout never installed
    (checkout / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "1.0"\n')
    assert version() == "unknown"
    (checkout / "pyproject.toml").unlink()
    assert version() == "unknown"


def test_the_packaging_record_names_variant_date_commit_and_builder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "build.json"
    monkeypatch.setattr(build_info, "BUILD_RECORD", record)
    fields = {"variant": "cuda", "date": "2026-12-01", "commit": "1a2b3c4", "builder": "ci"}
    record.write_text(json.dumps({**fields, "later": "ignored"}))
    assert build() == "cuda build of 2026-12-01, commit 1a2b3c4, by ci"
    record.write_text(json.dumps({"variant": "cpu"}))
    assert build() == "cpu build"
    record.write_text("{not json")
    assert build().startswith(f"unreadable build record {record}")
    record.write_text("[]")
    assert build() == f"unreadable build record {record}: not a JSON object"


def test_a_checkout_runs_from_source_at_its_commit(checkout: Path) -> None:
    assert build() == f"from source (main at {SHA[:12]})"
    (checkout / ".git" / "HEAD").write_text(SHA + "\n")  # detached
    assert build() == f"from source ({SHA[:12]})"


def test_a_branch_only_in_packed_refs_is_found(checkout: Path) -> None:
    (checkout / ".git" / "refs" / "heads" / "main").unlink()
    (checkout / ".git" / "packed-refs").write_text(
        f"# pack-refs with: peeled fully-peeled sorted\n{SHA} refs/heads/main\n"
    )
    assert build() == f"from source (main at {SHA[:12]})"


def test_a_linked_worktree_reads_its_branch_from_the_main_repository(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    main_git = checkout / ".git"
    worktree = tmp_path_factory.mktemp("worktree")
    own = main_git / "worktrees" / "feature"
    own.mkdir(parents=True)
    (own / "HEAD").write_text("ref: refs/heads/main\n")
    (own / "commondir").write_text("../..\n")
    (worktree / ".git").write_text(f"gitdir: {own}\n")
    assert build_info._git_head(worktree) == ("main", SHA)


def test_source_without_git_and_an_install_without_a_record(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (checkout / ".git" / "HEAD").unlink()
    assert build() == "from source"
    monkeypatch.setattr(build_info, "ROOT", tmp_path_factory.mktemp("site-packages"))
    assert build() == "installed without a build record"


def test_this_checkout_names_its_own_commit() -> None:
    if not (build_info.ROOT / ".git").exists() or build_info.BUILD_RECORD.is_file():
        pytest.skip("not a git checkout, or a packaging script left a build.json")
    assert build().startswith("from source (")
