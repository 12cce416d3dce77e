"""Persistence: conversations, turns, images and app settings in SQLite (WAL), no Qt.

Images live as PNG files under ``<data>/images/<conversation id>/``; the database stores their
paths relative to the data folder, so the folder can be moved. Every change is committed at once:
a crash or a kill loses nothing that was finished. A turn that was queued or running when the app
died is marked ``interrupted`` the next time the database is opened (`recover_interrupted`).

The schema is versioned: ``schema_version`` holds the version and `MIGRATIONS` lists the SQL that
takes a database from one version to the next. A database newer than this code is refused.
"""

from __future__ import annotations

import enum
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.api import ImageRole, Role, Task

SCHEMA_VERSION = 1

#: MIGRATIONS[v] takes a database at version v to v + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        text TEXT NOT NULL DEFAULT '',
        rewrite TEXT NOT NULL DEFAULT '',
        task TEXT NOT NULL DEFAULT 'auto',
        settings TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'done',
        error TEXT NOT NULL DEFAULT '',
        request_id TEXT NOT NULL DEFAULT '',
        timings TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX turns_by_conversation ON turns(conversation_id, position);
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        path TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'image',
        source TEXT NOT NULL DEFAULT '',
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX images_by_turn ON images(turn_id, position);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)


class DatabaseError(Exception):
    """The database cannot be used; the message says why and what to do."""


class TurnStatus(str, enum.Enum):
    """A turn's status; the value is what ``turns.status`` stores."""

    DONE = "done"  # finished (every user turn, and assistant turns that completed)
    QUEUED = "queued"  # waiting in the queue
    RUNNING = "running"  # the engine is working on it
    CANCELLED = "cancelled"  # the user stopped it; what was finished is kept
    FAILED = "failed"  # the engine reported an error (``error`` says which)
    INTERRUPTED = "interrupted"  # the app stopped while it was queued or running

    @property
    def unfinished(self) -> bool:
        """Waiting or running: a crash leaves it interrupted, the user can cancel it."""
        return self in UNFINISHED

    @property
    def retryable(self) -> bool:
        """Ended without finishing: the user can run it again."""
        return self in RETRYABLE


UNFINISHED = (TurnStatus.QUEUED, TurnStatus.RUNNING)
RETRYABLE = (TurnStatus.CANCELLED, TurnStatus.FAILED, TurnStatus.INTERRUPTED)


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    created: float
    updated: float


@dataclass(frozen=True)
class ImageRecord:
    id: int
    turn_id: int
    position: int
    path: str  # relative to the data folder
    role: ImageRole
    source: str
    width: int
    height: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnRecord:
    id: int
    conversation_id: int
    position: int
    role: Role
    text: str
    rewrite: str
    task: Task  # the hint a user turn was sent with (``AUTO`` on assistant turns)
    settings: dict[str, Any]
    status: TurnStatus
    error: str
    request_id: str
    timings: dict[str, float]
    created: float
    images: tuple[ImageRecord, ...] = ()


class Database:
    """The app's store. One instance per process, used from the GUI thread only."""

    def __init__(self, data_dir: Path | str, migrations: Sequence[str] = MIGRATIONS) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "wegen.sqlite3"
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate(migrations)
        except sqlite3.DatabaseError as error:
            raise DatabaseError(
                f"The database {self.path} cannot be opened ({error}). Move it aside to start "
                "with an empty history, or restore it from a backup."
            ) from error

    def close(self) -> None:
        self._db.close()

    # --- schema ---------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        row = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
        ).fetchone()
        if row is None:
            return 0
        return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def _migrate(self, migrations: Sequence[str]) -> None:
        version = self.schema_version
        if version > len(migrations):
            raise DatabaseError(
                f"The database {self.path} was written by a newer WeGen (schema {version}, this "
                f"version understands up to {len(migrations)}). Update WeGen to open it."
            )
        for target in range(version + 1, len(migrations) + 1):
            with self.transaction() as db:
                db.executescript_in_tx(migrations[target - 1])
                db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version VALUES (?)", (target,))

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(self._db)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- conversations --------------------------------------------------------------------
    def create_conversation(self, title: str) -> ConversationRecord:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)",
            (title, now, now),
        )
        assert cur.lastrowid is not None
        return ConversationRecord(cur.lastrowid, title, now, now)

    def conversation(self, conversation_id: int) -> ConversationRecord | None:
        row = self._db.execute(
            "SELECT * FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return _conversation(row) if row else None

    def conversations(self, search: str = "") -> list[ConversationRecord]:
        """All conversations, most recently updated first; ``search`` matches titles and turns."""
        if not search.strip():
            rows = self._db.execute("SELECT * FROM conversations ORDER BY updated DESC, id DESC")
        else:
            pattern = (
                "%"
                + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            rows = self._db.execute(
                """SELECT * FROM conversations c WHERE c.title LIKE ?1 ESCAPE '\\'
                   OR EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id
                              AND (t.text LIKE ?1 ESCAPE '\\' OR t.rewrite LIKE ?1 ESCAPE '\\'))
                   ORDER BY updated DESC, id DESC""",
                (pattern,),
            )
        return [_conversation(row) for row in rows]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        self._db.execute(
            "UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
            (title, time.time(), conversation_id),
        )

    def touch_conversation(self, conversation_id: int) -> None:
        self._db.execute(
            "UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), conversation_id)
        )

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete the conversation, its turns and its image files."""
        self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        shutil.rmtree(self.conversation_dir(conversation_id), ignore_errors=True)

    def conversation_dir(self, conversation_id: int) -> Path:
        return self.data_dir / "images" / str(conversation_id)

    # --- turns ----------------------------------------------------------------------------
    def add_turn(
        self,
        conversation_id: int,
        role: Role,
        text: str = "",
        *,
        task: Task = Task.AUTO,
        settings: dict[str, Any] | None = None,
        status: TurnStatus = TurnStatus.DONE,
        request_id: str = "",
    ) -> TurnRecord:
        with self.transaction() as db:
            position = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM turns WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()[0]
            cur = db.execute(
                """INSERT INTO turns (conversation_id, position, role, text, task, settings,
                   status, request_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    conversation_id,
                    position,
                    Role(role).value,
                    text,
                    Task(task).value,
                    json.dumps(settings or {}),
                    TurnStatus(status).value,
                    request_id,
                    time.time(),
                ),
            )
            db.execute(
                "UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), conversation_id)
            )
        assert cur.lastrowid is not None
        turn = self.turn(cur.lastrowid)
        assert turn is not None
        return turn

    def turn(self, turn_id: int) -> TurnRecord | None:
        row = self._db.execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        return self._turn(row) if row else None

    def turns(self, conversation_id: int) -> list[TurnRecord]:
        rows = self._db.execute(
            "SELECT * FROM turns WHERE conversation_id = ? ORDER BY position", (conversation_id,)
        ).fetchall()
        return [self._turn(row) for row in rows]

    def update_turn(self, turn_id: int, **values: Any) -> None:
        """Set columns of a turn (``text``, ``rewrite``, ``status``, ``error``, ``timings``...)."""
        allowed = {"text", "rewrite", "status", "error", "timings", "settings", "request_id"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot update turn columns {sorted(unknown)}")
        if "status" in values:
            values["status"] = TurnStatus(values["status"]).value
        encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in values.items()}
        assignments = ", ".join(f"{key} = ?" for key in encoded)
        self._db.execute(
            f"UPDATE turns SET {assignments} WHERE id = ?", (*encoded.values(), turn_id)
        )

    def delete_images_of_turn(self, turn_id: int) -> None:
        for image in self.images(turn_id):
            (self.data_dir / image.path).unlink(missing_ok=True)
        self._db.execute("DELETE FROM images WHERE turn_id = ?", (turn_id,))

    def recover_interrupted(self) -> list[int]:
        """Mark turns left queued or running by a crash as interrupted; return their ids."""
        rows = self._db.execute(
            "SELECT id FROM turns WHERE status IN (?, ?)", [s.value for s in UNFINISHED]
        ).fetchall()
        ids = [row[0] for row in rows]
        self._db.execute(
            "UPDATE turns SET status = ? WHERE status IN (?, ?)",
            (TurnStatus.INTERRUPTED.value, *(s.value for s in UNFINISHED)),
        )
        return ids

    def _turn(self, row: sqlite3.Row) -> TurnRecord:
        data = _known(TurnRecord, row)
        data["settings"] = json.loads(data["settings"])
        data["timings"] = json.loads(data["timings"])
        data["role"] = Role(data["role"])
        data["task"] = Task(data["task"])
        data["status"] = TurnStatus(data["status"])
        return TurnRecord(**data, images=tuple(self.images(data["id"])))

    # --- images ---------------------------------------------------------------------------
    def add_image(
        self,
        turn_id: int,
        path: Path,
        *,
        width: int,
        height: int,
        role: ImageRole = ImageRole.IMAGE,
        source: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> ImageRecord:
        role = ImageRole(role)
        relative = Path(path).resolve().relative_to(self.data_dir.resolve()).as_posix()
        with self.transaction() as db:
            position = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM images WHERE turn_id = ?", (turn_id,)
            ).fetchone()[0]
            cur = db.execute(
                """INSERT INTO images (turn_id, position, path, role, source, width, height,
                   metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    turn_id,
                    position,
                    relative,
                    role.value,
                    source,
                    width,
                    height,
                    json.dumps(metadata or {}),
                ),
            )
        assert cur.lastrowid is not None
        return ImageRecord(
            cur.lastrowid, turn_id, position, relative, role, source, width, height, metadata or {}
        )

    def images(self, turn_id: int) -> list[ImageRecord]:
        rows = self._db.execute(
            "SELECT * FROM images WHERE turn_id = ? ORDER BY position", (turn_id,)
        ).fetchall()
        return [self._image(row) for row in rows]

    def image(self, image_id: int) -> ImageRecord | None:
        row = self._db.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        return self._image(row) if row else None

    def image_path(self, image: ImageRecord) -> Path:
        return self.data_dir / image.path

    def image_files(self) -> set[str]:
        """Every image file the database refers to (paths relative to the data folder)."""
        return {row[0] for row in self._db.execute("SELECT path FROM images")}

    @staticmethod
    def _image(row: sqlite3.Row) -> ImageRecord:
        data = _known(ImageRecord, row)
        data["metadata"] = json.loads(data["metadata"])
        data["role"] = ImageRole(data["role"])
        return ImageRecord(**data)

    # --- settings -------------------------------------------------------------------------
    def setting(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )


def _known(cls: type, row: sqlite3.Row) -> dict[str, Any]:
    """The row's columns that ``cls`` has fields for (later migrations may add columns)."""
    names = {f.name for f in fields(cls)}
    return {key: row[key] for key in row.keys() if key in names}  # noqa: SIM118 (Row iterates values)


def _conversation(row: sqlite3.Row) -> ConversationRecord:
    return ConversationRecord(**_known(ConversationRecord, row))


class _Tx:
    """The connection inside `Database.transaction` (statements only; no nested commits)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def executescript_in_tx(self, script: str) -> None:
        # executescript() would COMMIT first; run statement by statement to stay in the tx.
        for statement in script.split(";"):
            if statement.strip():
                self._db.execute(statement)
