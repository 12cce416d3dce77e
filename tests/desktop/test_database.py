from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from desktop.database import MIGRATIONS, Database, DatabaseError, TurnStatus
from desktop.fake_engine import scene
from engine.api import ImageRole, Role, Task, save_png_atomic


def test_wal_and_schema_version(db: Database) -> None:
    mode = sqlite3.connect(db.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert db.schema_version == len(MIGRATIONS)


def test_conversation_turns_images_survive_reopen(data_dir: Path) -> None:
    db = Database(data_dir)
    conv = db.create_conversation("Foxes")
    user = db.add_turn(conv.id, "user", "draw a red fox", task="generate", settings={"seed": 7})
    reply = db.add_turn(conv.id, "assistant", "Here it is.")
    path = save_png_atomic(scene("fox", 7, 32), db.conversation_dir(conv.id) / "a.png")
    db.add_image(reply.id, path, width=32, height=32, metadata={"seed": 7})
    db.close()

    again = Database(data_dir)
    [conversation] = again.conversations()
    assert conversation.title == "Foxes"
    turns = again.turns(conv.id)
    assert [t.text for t in turns] == ["draw a red fox", "Here it is."]
    assert turns[0].settings == {"seed": 7} and turns[0].task == "generate"
    [image] = turns[1].images
    assert image.metadata == {"seed": 7}
    assert again.image_path(image).is_file()
    assert [t.id for t in turns] == [user.id, reply.id]
    again.close()


def test_search_matches_titles_and_turn_text(db: Database) -> None:
    fox = db.create_conversation("Foxes")
    cat = db.create_conversation("Cats")
    db.add_turn(cat.id, "user", "a cat on 100% wool_rug")
    assert [c.id for c in db.conversations("fox")] == [fox.id]
    assert [c.id for c in db.conversations("WOOL")] == [cat.id]
    assert [c.id for c in db.conversations("100%")] == [cat.id]
    assert db.conversations("50%") == []
    assert {c.id for c in db.conversations("")} == {fox.id, cat.id}


def test_delete_conversation_removes_rows_and_files(db: Database) -> None:
    conv = db.create_conversation("x")
    turn = db.add_turn(conv.id, "assistant")
    path = save_png_atomic(scene("x", 1, 16), db.conversation_dir(conv.id) / "x.png")
    db.add_image(turn.id, path, width=16, height=16)
    db.delete_conversation(conv.id)
    assert db.conversations() == []
    assert db.turn(turn.id) is None
    assert not db.conversation_dir(conv.id).exists()


def test_unfinished_turns_become_interrupted(data_dir: Path) -> None:
    db = Database(data_dir)
    conv = db.create_conversation("x")
    done = db.add_turn(conv.id, "assistant", "ok")
    queued = db.add_turn(conv.id, "assistant", status=TurnStatus.QUEUED)
    running = db.add_turn(conv.id, "assistant", status=TurnStatus.RUNNING)
    db.close()  # as if the process had been killed here
    again = Database(data_dir)
    assert sorted(again.recover_interrupted()) == sorted([queued.id, running.id])
    statuses = {t.id: t.status for t in again.turns(conv.id)}
    assert statuses == {done.id: "done", queued.id: "interrupted", running.id: "interrupted"}
    again.close()


def test_migrations_run_in_order_and_keep_data(data_dir: Path) -> None:
    db = Database(data_dir)
    db.create_conversation("kept")
    db.close()
    extra = (*MIGRATIONS, "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
    upgraded = Database(data_dir, migrations=extra)
    assert upgraded.schema_version == len(MIGRATIONS) + 1
    assert [c.title for c in upgraded.conversations()] == ["kept"]
    upgraded.close()


def test_newer_database_is_refused_with_a_clear_message(data_dir: Path) -> None:
    Database(data_dir).close()
    raw = sqlite3.connect(data_dir / "wegen.sqlite3")
    raw.execute("UPDATE schema_version SET version = 99")
    raw.commit()
    raw.close()
    with pytest.raises(DatabaseError, match="newer WeGen"):
        Database(data_dir)


def test_corrupt_database_is_reported(data_dir: Path) -> None:
    (data_dir / "wegen.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="cannot be opened"):
        Database(data_dir)


def test_settings_round_trip(db: Database) -> None:
    assert db.setting("x", 3) == 3
    db.set_setting("x", {"a": [1, 2]})
    db.set_setting("x", {"a": [3]})
    assert db.setting("x") == {"a": [3]}


def test_update_turn_rejects_unknown_columns(db: Database) -> None:
    conv = db.create_conversation("x")
    turn = db.add_turn(conv.id, "user", "hi")
    with pytest.raises(ValueError, match="position"):
        db.update_turn(turn.id, position=3)


def test_records_carry_enums_and_the_file_keeps_plain_values(data_dir: Path) -> None:
    db = Database(data_dir)
    conv = db.create_conversation("Roles")
    user = db.add_turn(conv.id, Role.USER, "restore this", task=Task.RESTORE)
    reply = db.add_turn(conv.id, Role.ASSISTANT, status=TurnStatus.QUEUED)
    path = save_png_atomic(scene("old", 1, 16), db.conversation_dir(conv.id) / "att.png")
    db.add_image(user.id, path, width=16, height=16, role=ImageRole.RESTORE)
    db.update_turn(reply.id, status=TurnStatus.FAILED)
    db.close()

    raw = sqlite3.connect(data_dir / "wegen.sqlite3")
    rows = raw.execute("SELECT role, task, status FROM turns ORDER BY position").fetchall()
    assert rows == [("user", "restore", "done"), ("assistant", "auto", "failed")]
    assert raw.execute("SELECT role FROM images").fetchall() == [("restore",)]
    # a row as an earlier version wrote it reads back as enums too
    raw.execute(
        "INSERT INTO turns (conversation_id, position, role, text, task, status, created) "
        "VALUES (?, 2, 'user', 'again', 'edit', 'interrupted', 0)",
        (conv.id,),
    )
    raw.commit()
    raw.close()

    again = Database(data_dir)
    first, second, third = again.turns(conv.id)
    assert (first.role, first.task, first.status) == (Role.USER, Task.RESTORE, TurnStatus.DONE)
    assert type(first.role) is Role and type(first.task) is Task
    assert type(first.status) is TurnStatus
    assert first.images[0].role is ImageRole.RESTORE
    assert second.role is Role.ASSISTANT and second.status is TurnStatus.FAILED
    assert second.status.retryable and not second.status.unfinished
    assert (third.role, third.task, third.status) == (
        Role.USER,
        Task.EDIT,
        TurnStatus.INTERRUPTED,
    )
    again.close()
