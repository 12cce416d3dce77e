"""Writing files safely: whole or not at all, with the user's permissions, and checked first.

Files leave through `write_file_atomic` (and `write_png_atomic`): a temporary file in the target's
folder, written, fsync'd, renamed over the target with ``os.replace``, then the folder fsync'd,
so a crash or a full disk leaves the old file whole (or no file), never part of one; the new file
gets the permissions any new file of the user's gets (0666 less the umask: `new_file_mode`), or
with ``keep_mode`` those of the file it replaces.
`check_output_file` says before any work whether a file can be written there at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO

from PIL import Image, PngImagePlugin

from engine.errors import OutputPathError

TEMP_SUFFIX = ".tmp"
"""Temporary files of `write_file_atomic` are ``.NAME.XXXXXXXX.tmp`` beside the target."""


def check_output_file(
    path: str | os.PathLike[str], suffixes: Collection[str] | None = None
) -> Path:
    """The file to write for ``path`` (a symbolic link is followed), or `OutputPathError` saying
    why nothing could be written there: it is a folder or a device, its folder is missing or is a
    file, the folder is not writable (tried by creating a temporary file in it), or, when
    ``suffixes`` is given (lower case, with the dot), its extension is not one of them.

    Nothing is left behind; an existing file is not touched.
    """
    given = Path(path)
    if not str(path):
        raise OutputPathError("no output file was given")
    target = Path(os.path.realpath(given))
    if target.is_dir():
        raise OutputPathError(
            f'"{given}" is a folder: give a file name in it, e.g. "{given / "image.png"}"'
        )
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        raise OutputPathError(f'"{given}" exists and is not a regular file: choose a file name')
    if suffixes is not None and target.suffix.lower() not in suffixes:
        wanted = " or ".join(sorted(suffixes))
        have = f"has the extension {target.suffix}" if target.suffix else "has no extension"
        raise OutputPathError(f'"{given}" {have}: name the file with {wanted}')
    folder = target.parent
    if not folder.exists():
        raise OutputPathError(
            f'the folder "{folder}" does not exist: create it first, or choose another folder'
        )
    if not folder.is_dir():
        raise OutputPathError(f'"{folder}" is a file, not a folder: choose a folder to write into')
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as err:
        raise OutputPathError(_write_problem(given, err, written=False)) from None
    os.close(fd)
    os.unlink(probe)
    return target


def write_file_atomic(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], None],
    *,
    keep_mode: bool = False,
) -> Path:
    """Write a file through ``write(handle)``, atomically (see the module docs); returns its path.

    The file gets `new_file_mode`, or with ``keep_mode`` the permissions of the file it replaces
    (an export over a file the user made private stays private).

    The folder must exist. A failure (``OSError`` from ``write`` or the file system: disk full,
    read-only, permission denied) removes the temporary file, leaves any old file as it was, and
    raises `OutputPathError` with a message that says so; other exceptions pass unchanged after
    the same cleanup. A symbolic link is followed: the file it points to is replaced.
    """
    given = Path(path)
    target = Path(os.path.realpath(given))
    existed = target.exists()
    mode = new_file_mode()
    if keep_mode and existed:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(target.stat().st_mode)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    except OSError as err:
        raise OutputPathError(_write_problem(given, err, written=existed)) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), mode)  # mkstemp made it 0600
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OutputPathError(_write_problem(given, err, written=existed)) from err
        raise
    _fsync_folder(target.parent)
    return target


def write_png_atomic(
    image: Image.Image,
    path: str | os.PathLike[str],
    pnginfo: PngImagePlugin.PngInfo | None = None,
) -> Path:
    """`write_file_atomic` of ``image`` as PNG, with ``pnginfo``'s text chunks."""
    return write_file_atomic(path, lambda f: image.save(f, format="PNG", pnginfo=pnginfo))


def new_file_mode() -> int:
    """The permissions a new file gets from this process's umask (e.g. 0o644)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where /proc says it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (a moment other threads could see)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has happened
    finally:
        os.close(fd)


_WRITE_PROBLEMS = {
    errno.ENOSPC: "the disk is full: free some space or choose another drive",
    errno.EDQUOT: "the disk quota is used up: free some space or choose another drive",
    errno.EFBIG: "the file is larger than this system allows a file to be",
    errno.EROFS: "the drive is read-only: choose a folder on a writable drive",
    errno.EACCES: "permission to write in that folder was denied: choose another folder",
    errno.EPERM: "permission to write in that folder was denied: choose another folder",
    errno.ENOENT: "its folder does not exist: create it first, or choose another folder",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder: give a file name in it",
}


def _write_problem(path: Path, err: OSError, *, written: bool) -> str:
    problem = _WRITE_PROBLEMS.get(err.errno or 0) or (err.strerror or str(err))
    kept = "the existing file was left as it was" if written else "nothing was written"
    return f'cannot write "{path}": {problem} ({kept})'
