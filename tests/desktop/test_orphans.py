"""Leftovers of a crash: a kill -9 in the middle of a save, then the next start cleans up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from desktop.database import Database
from desktop.fake_engine import FakeEngine
from desktop.orphans import DataFolderLock, orphan_files, remove_orphans
from desktop.session import Session
from engine.api import save_png_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout the tests run in

#: a stand-in for the app: it records one image, finishes a second one it never records (killed
#: before the GUI thread could), and is killed while a third is being synced to disk
CHILD = """
import os, sys, threading
from pathlib import Path
from PIL import Image
from desktop.database import Database
from desktop.orphans import DataFolderLock
from engine.api import save_png_atomic

db = Database(sys.argv[1])
assert DataFolderLock(db.data_dir).acquire()
conversation = db.create_conversation("kept")
turn = db.add_turn(conversation.id, "assistant")
folder = db.conversation_dir(conversation.id)
kept = save_png_atomic(Image.new("RGB", (8, 8), "red"), folder / "turn2-aaaa-0.png")
db.add_image(turn.id, kept, width=8, height=8)
save_png_atomic(Image.new("RGB", (8, 8), "blue"), folder / "turn4-bbbb-0.png")

def fsync_then_hang(fd):
    print("saving", flush=True)
    threading.Event().wait()

os.fsync = fsync_then_hang
save_png_atomic(Image.new("RGB", (64, 64), "green"), folder / "turn4-bbbb-1.png")
"""


def test_a_kill_during_a_save_is_cleaned_up_at_the_next_start(data_dir: Path, qtbot: QtBot) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "saving\n"
        finally:
            child.kill()  # SIGKILL: no cleanup of any kind runs
            child.wait(timeout=30)
    folder = data_dir / "images" / "1"
    names = sorted(p.name for p in folder.iterdir())
    assert "turn2-aaaa-0.png" in names and "turn4-bbbb-0.png" in names
    [tmp] = [n for n in names if n.endswith(".tmp")]
    kept = folder / "turn2-aaaa-0.png"
    kept_bytes = kept.read_bytes()

    db = Database(data_dir)  # the next start
    session = Session(db, engine_factory=FakeEngine, verifier=lambda _p: [])
    try:
        assert sorted(p.name for p in session.removed_files) == sorted(["turn4-bbbb-0.png", tmp])
        assert sorted(p.name for p in folder.iterdir()) == ["turn2-aaaa-0.png"]
        assert kept.read_bytes() == kept_bytes
        [turn] = [t for t in db.turns(1) if t.images]
        assert db.image_path(turn.images[0]) == kept
    finally:
        session.shutdown()
        db.close()


def test_nothing_is_removed_while_another_wegen_holds_the_folder(db: Database) -> None:
    folder = db.conversation_dir(db.create_conversation("x").id)
    save_png_atomic(Image.new("RGB", (4, 4)), folder / "unrecorded.png")
    other = DataFolderLock(db.data_dir)
    assert other.acquire()  # another instance, running
    try:
        session = Session(db, engine_factory=FakeEngine, verifier=lambda _p: [])
        assert session.removed_files == [] and (folder / "unrecorded.png").is_file()
        session.shutdown()
    finally:
        other.release()
    session = Session(db, engine_factory=FakeEngine, verifier=lambda _p: [])
    assert [p.name for p in session.removed_files] == ["unrecorded.png"]
    session.shutdown()


def test_what_counts_as_an_orphan(db: Database) -> None:
    conversation = db.create_conversation("c")
    turn = db.add_turn(conversation.id, "user")
    folder = db.conversation_dir(conversation.id)
    recorded = save_png_atomic(Image.new("RGB", (4, 4)), folder / "att1-0.png")
    db.add_image(turn.id, recorded, width=4, height=4)
    (folder / "notes.txt").write_text("not ours to judge")
    (folder / ".att1-1.png.x1y2.tmp").write_bytes(b"half")
    (folder / "att1-2.JPG").write_bytes(b"jpeg")
    gone = db.data_dir / "images" / "99"  # a deleted conversation's folder, left empty
    gone.mkdir(parents=True)
    (db.data_dir / "stray.png").write_bytes(b"outside images/: not touched")
    assert [p.name for p in orphan_files(db)] == [".att1-1.png.x1y2.tmp", "att1-2.JPG"]
    remove_orphans(db)
    assert sorted(os.listdir(folder)) == ["att1-0.png", "notes.txt"]
    assert not gone.exists() and (db.data_dir / "stray.png").is_file()
