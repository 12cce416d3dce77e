"""The view state against the fake engine: send, stream, cancel, queue, retry, delete, restart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from desktop.attachment import Attachment
from desktop.database import Database, TurnStatus
from desktop.fake_engine import FakeEngine
from desktop.model_folder import verify_model_folder
from desktop.session import ModelState, Session
from engine.api import (
    GenerationSettings,
    ImageRole,
    Role,
    Task,
    read_png_metadata,
    recipe_from_metadata,
)

Wait = Callable[[Session], None]


def test_send_streams_text_and_saves_an_image(
    session: Session, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    streamed: list[str] = []
    session.text_streamed.connect(lambda _turn, text: streamed.append(text))
    phases: set[str] = set()
    session.progress.connect(lambda _turn, phase, _d, _t: phases.add(phase))
    previews: list[object] = []
    session.preview.connect(lambda _turn, image: previews.append(image))

    reply = session.send("draw a red fox", [], GenerationSettings(seed=5), Task.GENERATE)
    assert reply is not None and reply.status == TurnStatus.QUEUED
    wait_idle(session)

    assert "".join(streamed) == fake_engine.reply_text
    assert phases == {"tokens", "denoise"}
    assert len(previews) == fake_engine.steps
    user, assistant = session.turns()
    assert (user.role, user.text, user.task) == ("user", "draw a red fox", "generate")
    assert assistant.status == TurnStatus.DONE and assistant.text == fake_engine.reply_text
    [image] = assistant.images
    path = session.image_path(image)
    meta = read_png_metadata(path)
    recipe = recipe_from_metadata(meta)
    assert recipe is not None and recipe.text == "draw a red fox" and recipe.settings["seed"] == 5
    [request] = fake_engine.requests
    assert request.task is Task.GENERATE and request.history == ()
    assert [c.title for c in session.conversations()] == ["draw a red fox"]


def test_a_random_seed_is_chosen_and_recorded(session: Session, wait_idle: Wait) -> None:
    session.send("a fox", [], GenerationSettings(seed=None))
    wait_idle(session)
    user, assistant = session.turns()
    assert isinstance(user.settings["seed"], int)
    assert assistant.images[0].metadata["settings"]["seed"] == user.settings["seed"]


def test_history_and_attachments_reach_the_engine(
    session: Session, fake_engine: FakeEngine, tmp_path: Path, wait_idle: Wait
) -> None:
    session.send("a fox", [], GenerationSettings(seed=1))
    wait_idle(session)
    photo = tmp_path / "old photo.jpg"
    Image.new("RGB", (40, 30), (120, 80, 60)).save(photo)
    attachment = Attachment.from_file(photo, ImageRole.RESTORE)
    session.send("restore this", [attachment], GenerationSettings(seed=2), Task.RESTORE)
    wait_idle(session)

    second = fake_engine.requests[1]
    assert [t.role for t in second.history] == [Role.USER, Role.ASSISTANT]
    assert second.history[1].text == fake_engine.reply_text
    assert len(second.history[1].images) == 1
    [part] = second.message.images
    assert part.role is ImageRole.RESTORE and part.source == "old photo.jpg"
    assert part.image.size == (40, 30)
    turns = session.turns()
    stored = turns[2].images[0]
    assert session.image_path(stored).is_file() and stored.role == "restore"
    # the comparison view pairs the restored image with the photo it came from
    assert session.before_image(turns[3].images[0]) == stored


def test_cancel_stops_at_the_next_step(
    session: Session, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    fake_engine.step_delay = 0.05
    fake_engine.steps = 200
    reply = session.send("a long one", [], GenerationSettings(seed=1))
    assert reply is not None
    qtbot.waitUntil(lambda: fake_engine.steps_run >= 3, timeout=5000)
    before = fake_engine.steps_run
    assert session.cancel_running()
    wait_idle(session)
    # the step running when cancel came may finish, and one may have begun just before it
    assert fake_engine.steps_run - before <= 2
    turn = session.db.turn(reply.id)
    assert turn is not None and turn.status == TurnStatus.CANCELLED


def test_queue_reorder_and_cancel_waiting(
    session: Session,
    fake_engine: FakeEngine,
    engine_gate: threading.Event,
    qtbot: QtBot,
    wait_idle: Wait,
) -> None:
    session.send("first", [], GenerationSettings(seed=1))
    qtbot.waitUntil(lambda: session.running_job() is not None, timeout=5000)
    session.send("second", [], GenerationSettings(seed=1))
    session.send("third", [], GenerationSettings(seed=1))
    session.send("fourth", [], GenerationSettings(seed=1))
    pending = session.pending_jobs()
    assert [j.message.text for j in pending] == ["second", "third", "fourth"]
    session.move_job(pending[2].request_id, -2)
    session.cancel(pending[1].request_id)  # "third", still waiting
    assert [j.message.text for j in session.pending_jobs()] == ["fourth", "second"]
    engine_gate.set()
    wait_idle(session)
    assert [r.message.text for r in fake_engine.requests] == ["first", "fourth", "second"]
    statuses = {t.text: t.status for t in session.turns() if t.role == "user"}
    assert statuses == {"first": "done", "second": "done", "third": "done", "fourth": "done"}
    replies = [t.status for t in session.turns() if t.role == "assistant"]
    assert replies == ["done", "done", "cancelled", "done"]


def test_failure_is_shown_and_retry_reruns(
    session: Session, fake_engine: FakeEngine, wait_idle: Wait
) -> None:
    fake_engine.fail_message = "The prompt is empty: type what to draw."
    reply = session.send("x", [], GenerationSettings(seed=3))
    assert reply is not None
    wait_idle(session)
    turn = session.db.turn(reply.id)
    assert turn is not None and turn.status == TurnStatus.FAILED
    assert turn.error == "The prompt is empty: type what to draw."
    fake_engine.fail_message = None
    assert session.retry(reply.id)
    wait_idle(session)
    turn = session.db.turn(reply.id)
    assert turn is not None and turn.status == TurnStatus.DONE and len(turn.images) == 1
    assert fake_engine.requests[1].settings.seed == 3


def test_engine_exception_becomes_a_failed_turn(
    session: Session, fake_engine: FakeEngine, wait_idle: Wait
) -> None:
    fake_engine.raise_error = RuntimeError("CUDA out of memory")
    reply = session.send("x", [], GenerationSettings(seed=3))
    assert reply is not None
    wait_idle(session)
    turn = session.db.turn(reply.id)
    assert turn is not None and turn.status == TurnStatus.FAILED
    assert "CUDA out of memory" in turn.error


def test_delete_conversation_while_generating(
    session: Session, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    fake_engine.step_delay = 0.02
    session.send("a fox", [], GenerationSettings(seed=1))
    qtbot.waitUntil(lambda: session.running_job() is not None, timeout=5000)
    conversation_id = session.conversation_id
    assert conversation_id is not None
    folder = session.db.conversation_dir(conversation_id)
    session.delete_conversation(conversation_id)
    wait_idle(session)
    assert session.conversations() == [] and session.conversation_id is None
    assert not folder.exists() or list(folder.iterdir()) == []


def test_reopen_after_restart_and_interrupted_turn(
    data_dir: Path,
    db: Database,
    session: Session,
    fake_engine: FakeEngine,
    qtbot: QtBot,
    wait_idle: Wait,
) -> None:
    session.send("a fox", [], GenerationSettings(seed=1))
    wait_idle(session)
    conversation_id = session.conversation_id
    assert conversation_id is not None
    # a turn that was running when the process died
    db.add_turn(conversation_id, "user", "now at night", settings={"seed": 9})
    dead = db.add_turn(conversation_id, "assistant", status=TurnStatus.RUNNING)
    session.shutdown()

    again = Session(
        Database(data_dir),
        engine_factory=lambda: fake_engine,
        verifier=lambda p: verify_model_folder(p, use_engine=False),
    )
    again.start()
    try:
        qtbot.waitUntil(lambda: again.model_state == ModelState.READY, timeout=5000)
        assert again.interrupted == [dead.id]
        again.open_conversation(conversation_id)
        turns = again.turns()
        assert [t.status for t in turns] == ["done", "done", "done", "interrupted"]
        assert len(turns[1].images) == 1
        assert again.retry(dead.id)
        wait_idle(again)
        assert again.turns()[-1].status == "done"
        assert fake_engine.requests[-1].message.text == "now at night"
        assert len(fake_engine.requests[-1].history) == 2
    finally:
        again.shutdown()
        again.db.close()


def test_missing_model_folder_is_reported(db: Database, tmp_path: Path, qtbot: QtBot) -> None:
    from desktop.app_settings import AppSettings

    AppSettings(model_dir=str(tmp_path / "nowhere")).save(db)
    session = Session(
        db, engine_factory=FakeEngine, verifier=lambda p: verify_model_folder(p, use_engine=False)
    )
    session.start()
    try:
        qtbot.waitUntil(lambda: session.model_state == ModelState.FAILED, timeout=5000)
        assert "does not exist" in session.model_message
        reply = session.send("x", [], GenerationSettings())
        assert reply is not None
        qtbot.waitUntil(lambda: not session.is_busy(), timeout=5000)
        turn = session.db.turn(reply.id)
        assert turn is not None and turn.status == "failed" and "No model is loaded" in turn.error
    finally:
        session.shutdown()


def test_empty_message_is_refused(session: Session, qtbot: QtBot) -> None:
    with qtbot.waitSignal(session.notice) as notice:
        assert session.send("   ", [], GenerationSettings()) is None
    assert "Type a message" in notice.args[0]
    assert session.conversations() == []


def test_a_saved_image_carries_one_format_2_record(session: Session, wait_idle: Wait) -> None:
    session.send("a fox", [], GenerationSettings(seed=3, psr=True))
    wait_idle(session)
    session.send("now a blue one", [], GenerationSettings(seed=4))
    wait_idle(session)
    *_, assistant = session.turns()
    [image] = assistant.images
    meta = read_png_metadata(session.image_path(image))
    assert meta.wegen is not None
    record = meta.wegen
    assert record["format"] == 2 and "request" not in record and "engine" not in record
    # the engine's record as it was, plus only what the app knows
    assert {k: v for k, v in record.items() if k in image.metadata} == image.metadata
    assert set(record) - set(image.metadata) == {"format", "app_version", "request_id", "history"}
    assert record["request_id"] == assistant.request_id
    assert [turn["role"] for turn in record["history"]] == ["user", "assistant"]
    assert record["history"][0]["text"] == "a fox"
    first = read_png_metadata(session.image_path(session.turns()[1].images[0])).wegen
    assert first is not None and first["psr_rewrite"] == "A detailed picture of a fox, centred."
    assert meta.parameters is not None and meta.parameters.startswith("now a blue one\n")


def test_a_long_load_says_what_it_is_doing(
    db: Database, model_dir: Path, fake_engine: FakeEngine, qtbot: QtBot
) -> None:
    """The one-time ONNX export of a PyTorch folder reports its steps while the model loads."""
    from desktop.app_settings import AppSettings
    from desktop.window import MainWindow

    fake_engine.load_steps = ("exporting vision.onnx", "exporting unet.onnx")
    AppSettings(model_dir=str(model_dir), backend="onnx").save(db)
    quick = lambda path: verify_model_folder(path, use_engine=False)  # noqa: E731
    session = Session(db, engine_factory=lambda: fake_engine, verifier=quick)
    window = MainWindow(session)
    qtbot.addWidget(window)
    seen: list[tuple[str, str]] = []
    session.model_changed.connect(lambda: seen.append((session.model_state, window.banner.text())))
    session.start()
    qtbot.waitUntil(lambda: session.model_state == ModelState.READY, timeout=5000)
    loading = [text for state, text in seen if state == ModelState.LOADING]
    assert any("exporting vision.onnx (1 of 2)" in text for text in loading)
    assert any("exporting unet.onnx (2 of 2)" in text for text in loading)
    assert fake_engine.loads[-1][1].backend == "onnx"
    session.shutdown()
