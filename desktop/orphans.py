"""Files in the data folder that no conversation references, removed at start. No Qt.

Images are written atomically (a ``.tmp`` file, then a rename) and recorded in the database once
written, so a crash or a kill -9 can leave, under ``images/``, a ``.tmp`` file of an unfinished
save or a finished image the database never heard of. Nothing else refers to them: at start,
before the worker writes anything, `remove_orphans` deletes them, and conversation folders left
empty with no conversation behind them.

Another WeGen running on the same data folder may be writing such files right now, so the
running app holds `DataFolderLock` for its lifetime and cleans up only when it got the lock. The
operating system releases the lock when a process dies, kill -9 included.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO

from desktop.database import Database

log = logging.getLogger(__name__)

#: what a save may leave: the images the app writes (attachments keep their own format) and the
#: temporary files of atomic writes
ORPHAN_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tmp")
LOCK_NAME = "wegen.lock"


class DataFolderLock:
    """An exclusive lock on the data folder, held while the app runs (a file lock the operating
    system drops when the process ends)."""

    def __init__(self, data_dir: Path | str) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> bool:
        """Take the lock if no other process (or other holder here) has it; whether it did."""
        if self._file is not None:
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 (kept open while the lock is held)
        try:
            _lock(handle)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


def _lock(handle: IO[bytes]) -> None:
    """Lock ``handle`` exclusively without waiting; OSError if it is taken."""
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def orphan_files(db: Database) -> list[Path]:
    """Image and ``.tmp`` files under the images folder that no image record points to."""
    root = db.data_dir / "images"
    if not root.is_dir():
        return []
    referenced = db.image_files()
    orphans = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not name.lower().endswith(ORPHAN_SUFFIXES) or path.is_symlink():
                continue
            if path.relative_to(db.data_dir).as_posix() not in referenced:
                orphans.append(path)
    return sorted(orphans)


def remove_orphans(db: Database) -> list[Path]:
    """Delete `orphan_files` and the empty folders of conversations that no longer exist;
    return the files deleted. Call it only while holding `DataFolderLock`, before any save."""
    removed = []
    for path in orphan_files(db):
        try:
            path.unlink()
        except OSError as error:
            log.warning("could not remove the unused file %s: %s", path, error)
        else:
            removed.append(path)
    root = db.data_dir / "images"
    if root.is_dir():
        for folder in root.iterdir():
            gone = not folder.name.isdigit() or db.conversation(int(folder.name)) is None
            if folder.is_dir() and gone and not any(folder.iterdir()):
                folder.rmdir()
    if removed:
        log.info("removed %d unused files left by an earlier crash", len(removed))
    return removed
