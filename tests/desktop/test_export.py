"""Exporting: a file name from the prompt, and files with the person's normal permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from desktop.database import Database
from desktop.export import (
    export_conversation,
    export_image,
    new_file_mode,
    suggested_file_name,
)


def test_suggested_names_come_from_the_prompt() -> None:
    assert suggested_file_name("A large red circle, at the top left!") == (
        "a-large-red-circle-at-the-top-left.png"
    )
    assert suggested_file_name("two   blue squares", 1) == "two-blue-squares-2.png"
    assert suggested_file_name("", 0) == "wegen-image.png"
    assert suggested_file_name("../../etc/passwd") == "etc-passwd.png"
    assert suggested_file_name("ein Hund im Schnee, Aquarell") == "ein-hund-im-schnee-aquarell.png"
    long = suggested_file_name("word " * 40)
    assert len(long) <= 64 and long.endswith("word.png")
    assert suggested_file_name("x" * 200) == "x" * 60 + ".png"
    assert suggested_file_name("a chat", 0, ".zip") == "a-chat.zip"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_exports_have_the_permissions_of_a_new_file(
    umask_022: None, db: Database, tmp_path: Path
) -> None:
    assert new_file_mode() == 0o644
    source = tmp_path / "source.png"
    Image.new("RGB", (4, 4)).save(source)
    image = export_image(source, tmp_path / "out.png")
    assert stat.S_IMODE(image.stat().st_mode) == 0o644
    conversation = db.create_conversation("a chat")
    archive = export_conversation(db, conversation.id, tmp_path / "chat.zip")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o644
    # replacing a file keeps that file's permissions
    os.chmod(image, 0o640)
    assert stat.S_IMODE(export_image(source, image).stat().st_mode) == 0o640
    assert not list(tmp_path.glob(".export.*"))


def test_a_stricter_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        source = tmp_path / "source.png"
        Image.new("RGB", (4, 4)).save(source)
        image = export_image(source, tmp_path / "private.png")
        assert stat.S_IMODE(image.stat().st_mode) == 0o600
    finally:
        os.umask(old)
