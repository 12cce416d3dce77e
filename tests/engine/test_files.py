"""`engine.files.write_file_atomic` / `check_output_file`: a file is replaced whole or not at all."""

from __future__ import annotations

import os
import subprocess

import pytest
from PIL import Image

from engine.errors import OutputPathError
from engine.files import check_output_file, write_file_atomic, write_png_atomic


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_new_file_gets_the_permissions_the_umask_gives(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_file_atomic(tmp_path / "a.bin", lambda f: f.write(b"data"))
    finally:
        os.umask(old)
    assert path.read_bytes() == b"data" and (path.stat().st_mode & 0o777) == 0o640
    assert _names(tmp_path) == ["a.bin"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new, but only half")
        raise ValueError("the encoder broke")

    with pytest.raises(ValueError, match="the encoder broke"):  # not an OSError: passed on
        write_file_atomic(path, half_then_fail)
    assert path.read_bytes() == b"old" and _names(tmp_path) == ["a.png"]


def test_a_symbolic_link_is_followed(tmp_path):
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    write_png_atomic(Image.new("RGB", (4, 4)), link)
    with Image.open(target) as image:
        assert link.is_symlink() and image.size == (4, 4)
    assert check_output_file(link, {".png"}) == target


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(OutputPathError, match="its folder does not exist.*nothing was written"):
        write_file_atomic(tmp_path / "no" / "a.png", lambda f: f.write(b"x"))


@pytest.fixture
def full_disk(tmp_path):
    """A real full file system: a 64 KiB tmpfs (needs root and a machine that allows mounting)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_keeps_the_old_file_and_says_so(full_disk):
    path = full_disk / "image.png"
    path.write_bytes(b"old image")
    fd = os.open(full_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill what is left
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(OutputPathError) as caught:
        write_file_atomic(path, lambda f: f.write(os.urandom(64 * 1024)))
    assert "the disk is full" in str(caught.value)
    assert "the existing file was left as it was" in str(caught.value)
    assert path.read_bytes() == b"old image" and _names(full_disk) == ["filler", "image.png"]
