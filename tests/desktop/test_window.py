"""The main window against the fake engine, driven as a person would: type, send, watch, cancel,
queue, attach, drop bad files, delete, reopen, open a saved image."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from desktop import image_input
from desktop.app_settings import AppSettings
from desktop.database import Database
from desktop.fake_engine import FakeEngine
from desktop.model_folder import verify_model_folder
from desktop.session import ModelState, Session
from desktop.window import MainWindow
from engine.api import ImageRole, Task

Wait = Callable[[Session], None]


def send_text(qtbot: QtBot, window: MainWindow, text: str) -> None:
    window.composer.edit.setFocus()
    qtbot.keyClicks(window.composer.edit, text)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_type_send_watch_the_image_form(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    fake_engine.step_delay = 0.01
    seen_text: list[str] = []
    previews: list[bool] = []

    def on_text(turn_id: int, _delta: str) -> None:
        seen_text.append(window.chat.turns[turn_id].text_label.text())

    window.session.text_streamed.connect(on_text)
    window.session.preview.connect(lambda *_: previews.append(window.canvas._preview))
    send_text(qtbot, window, "a red fox in the snow")
    assert window.composer.text() == ""  # the box is emptied once the message is queued
    wait_idle(window.session)

    assert seen_text[0] == "Here" and seen_text[-1] == fake_engine.reply_text  # streamed
    assert previews and all(previews)  # the canvas showed the live previews
    user, assistant = window.chat.turns.values()
    assert user.text_label.text() == "a red fox in the snow"
    assert assistant.text_label.text() == fake_engine.reply_text
    assert len(assistant.thumbnails) == 1 and assistant.preview_button is None
    assert not assistant.retry_button.isVisible()
    image = window.canvas.image()
    assert image is not None and image.width() == fake_engine.image_size
    assert window.export_button.isEnabled()
    assert window.conversations.list.item(0).text() == "a red fox in the snow"
    assert window.windowTitle().startswith("a red fox in the snow")


def test_quick_action_and_settings_reach_the_engine(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    composer = window.composer
    qtbot.mouseClick(composer.task_buttons[Task.GENERATE], Qt.MouseButton.LeftButton)
    assert composer.task is Task.GENERATE
    composer.seed.setValue(4242)
    composer.seed_lock.setChecked(True)
    composer.steps.setValue(3)
    composer.psr.setChecked(True)
    composer.size_box.setCurrentIndex(composer.size_box.findData(2 * fake_engine.image_size))
    send_text(qtbot, window, "a cat")
    wait_idle(window.session)
    [request] = fake_engine.requests
    assert request.task is Task.GENERATE
    s = request.settings
    assert (s.seed, s.steps, s.psr, s.size) == (4242, 3, True, 2 * fake_engine.image_size)
    assistant = list(window.chat.turns.values())[1]
    assert assistant.rewrite_label.isVisible()
    assert "A detailed picture of a cat" in assistant.rewrite_label.text()
    # a rewrite that is the message itself: PSR kept no rewrite, and the label says so
    fake_engine.rewrite = lambda request: request.message.text  # type: ignore[method-assign]
    send_text(qtbot, window, "a green star")
    wait_idle(window.session)
    kept = list(window.chat.turns.values())[3]
    assert kept.rewrite_label.isVisible()
    assert "as typed" in kept.rewrite_label.text() and "Rewritten" not in kept.rewrite_label.text()
    assert composer.seed.value() == 4242  # locked: kept for the next message
    # clicking the active quick action again returns to automatic
    qtbot.mouseClick(composer.task_buttons[Task.GENERATE], Qt.MouseButton.LeftButton)
    assert composer.task is Task.AUTO


def test_unlocked_seed_changes_per_message(
    window: MainWindow, qtbot: QtBot, wait_idle: Wait
) -> None:
    send_text(qtbot, window, "one")
    wait_idle(window.session)
    send_text(qtbot, window, "two")
    wait_idle(window.session)
    users = [t for t in window.session.turns() if t.role == "user"]
    assert users[0].settings["seed"] != users[1].settings["seed"]


def test_escape_cancels_at_the_next_step(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    fake_engine.step_delay = 0.05
    fake_engine.steps = 500
    send_text(qtbot, window, "slow")
    qtbot.waitUntil(lambda: window.composer.cancel_button.isEnabled(), timeout=5000)
    qtbot.waitUntil(lambda: window.canvas._preview, timeout=5000)
    before = fake_engine.steps_run
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    wait_idle(window.session)
    assert fake_engine.steps_run - before <= 2
    assistant = list(window.chat.turns.values())[1]
    assert assistant.status_label.text() == "cancelled"
    assert assistant.retry_button.isVisibleTo(window)
    assert not window.composer.cancel_button.isEnabled()
    # Retry runs it again in place
    fake_engine.steps = 2
    fake_engine.step_delay = 0.001
    qtbot.mouseClick(assistant.retry_button, Qt.MouseButton.LeftButton)
    wait_idle(window.session)
    assistant = list(window.chat.turns.values())[1]
    assert window.session.turns()[1].status == "done"
    assert not assistant.retry_button.isVisibleTo(window)


def test_queue_panel_reorders_and_cancels(
    window: MainWindow,
    fake_engine: FakeEngine,
    engine_gate: threading.Event,
    qtbot: QtBot,
    wait_idle: Wait,
) -> None:
    for text in ("first", "second", "third"):
        send_text(qtbot, window, text)
    qtbot.waitUntil(lambda: window.session.running_job() is not None, timeout=5000)
    panel = window.queue
    assert panel.isVisible()
    assert panel.titles() == ["▶ first", "second", "third"]
    assert panel.title.text() == "Queue: 2 waiting"
    panel.list.setCurrentRow(2)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert panel.titles() == ["▶ first", "third", "second"]
    panel.list.setCurrentRow(2)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert panel.titles() == ["▶ first", "third"]
    engine_gate.set()
    wait_idle(window.session)
    assert [r.message.text for r in fake_engine.requests] == ["first", "third"]
    assert not panel.isVisible()


def test_attach_by_drop_with_roles(
    window: MainWindow, fake_engine: FakeEngine, tmp_path: Path, qtbot: QtBot, wait_idle: Wait
) -> None:
    Image.new("RGB", (64, 48), "navy").save(tmp_path / "photo.png")
    Image.new("RGB", (32, 32), "orange").save(tmp_path / "style.jpg")
    mime = QMimeData()
    mime.setUrls(
        [
            QUrl.fromLocalFile(str(tmp_path / "photo.png")),
            QUrl.fromLocalFile(str(tmp_path / "style.jpg")),
        ]
    )
    assert window.drop_mime(mime) == []
    composer = window.composer
    assert [c.attachment.source for c in composer.chips] == ["photo.png", "style.jpg"]
    qtbot.mouseClick(composer.task_buttons[Task.STYLE], Qt.MouseButton.LeftButton)
    assert [c.attachment.role for c in composer.chips] == [ImageRole.IMAGE, ImageRole.STYLE]
    composer.chips[0].role_box.setCurrentIndex(composer.chips[0].ROLES.index(ImageRole.REFERENCE))
    send_text(qtbot, window, "in this style")
    wait_idle(window.session)
    [request] = fake_engine.requests
    assert [(p.role, p.source) for p in request.message.images] == [
        (ImageRole.REFERENCE, "photo.png"),
        (ImageRole.STYLE, "style.jpg"),
    ]
    assert composer.chips == []
    user = next(iter(window.chat.turns.values()))
    assert len(user.thumbnails) == 2


def test_paste_an_image(window: MainWindow, qtbot: QtBot) -> None:
    from PySide6.QtGui import QImage

    mime = QMimeData()
    image = QImage(20, 10, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.red)
    mime.setImageData(image)
    window.composer.edit.insertFromMimeData(mime)
    [chip] = window.composer.chips
    assert chip.attachment.image.size == (20, 10)
    assert chip.attachment.image.getpixel((0, 0)) == (255, 0, 0)
    assert chip.attachment.path is None


def test_bad_files_dropped_get_a_clear_message_and_nothing_is_lost(
    window: MainWindow,
    tmp_path: Path,
    qtbot: QtBot,
    wait_idle: Wait,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    send_text(qtbot, window, "keep me")
    wait_idle(window.session)
    window.composer.edit.setPlainText("a draft I am writing")
    Image.new("RGB", (16, 16), "green").save(tmp_path / "good.png")
    window.drop_mime(_urls(tmp_path / "good.png"))
    (tmp_path / "notes.txt").write_text("not an image")
    Image.effect_noise((90, 90), 40).convert("RGB").save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(image_input, "MAX_PIXELS", 100 * 100)
    Image.new("RGB", (400, 300)).save(tmp_path / "huge.png")
    mime = _urls(tmp_path / "notes.txt", tmp_path / "cut.png", tmp_path / "huge.png")
    mime.setUrls([*mime.urls(), QUrl("https://example.com/cat.png")])

    errors = window.drop_mime(mime)

    assert len(errors) == 4
    notice = window.composer.notice
    assert notice.isVisible() and notice.property("kind") == "error"
    message = notice.text()
    assert "notes.txt" in message and "not an image" in message
    assert "cut.png" in message and "incomplete" in message
    assert "huge.png" in message and "400×300" in message
    assert "https://example.com/cat.png" in message
    # nothing lost: the draft, the good attachment and the conversation are as they were
    assert window.composer.text() == "a draft I am writing"
    assert [c.attachment.source for c in window.composer.chips] == ["good.png"]
    assert len(window.session.turns()) == 2 and len(window.chat.turns) == 2


def test_rename_search_and_delete_conversations(
    window: MainWindow, qtbot: QtBot, wait_idle: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_text(qtbot, window, "a fox")
    wait_idle(window.session)
    fox = window.session.conversation_id
    qtbot.mouseClick(window.conversations.new_button, Qt.MouseButton.LeftButton)
    assert window.session.conversation_id is None and window.chat.turns == {}
    assert window.chat.empty_label.isVisibleTo(window)
    send_text(qtbot, window, "a whale")
    wait_idle(window.session)
    assert window.conversations.list.count() == 2

    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Ocean  life", True))
    window.conversations.rename_current()
    assert window.conversations.list.item(0).text() == "Ocean life"

    qtbot.keyClicks(window.conversations.search, "FOX")
    qtbot.waitUntil(lambda: window.conversations.ids() == [fox], timeout=2000)
    window.conversations.search.clear()
    qtbot.waitUntil(lambda: len(window.conversations.ids()) == 2, timeout=2000)

    assert fox is not None
    folder = window.session.db.conversation_dir(fox)
    assert any(folder.iterdir())
    window.session.open_conversation(fox)
    window.conversations.delete_current(confirm=False)
    assert not folder.exists()
    assert window.conversations.list.count() == 1
    assert window.chat.turns == {}


def test_reopen_after_restart(
    data_dir: Path,
    model_dir: Path,
    window: MainWindow,
    fake_engine: FakeEngine,
    qtbot: QtBot,
    wait_idle: Wait,
) -> None:
    send_text(qtbot, window, "a lighthouse at dusk")
    wait_idle(window.session)
    window.close()
    window.session.db.close()

    session = Session(
        Database(data_dir),
        engine_factory=FakeEngine,
        verifier=lambda p: verify_model_folder(p, use_engine=False),
    )
    session.start()
    again = MainWindow(session)
    qtbot.addWidget(again)
    again.show()
    try:
        qtbot.waitUntil(lambda: session.model_state == ModelState.READY, timeout=5000)
        assert again.conversations.list.item(0).text() == "a lighthouse at dusk"
        again.conversations._activate(again.conversations.list.item(0))
        user, assistant = again.chat.turns.values()
        assert user.text_label.text() == "a lighthouse at dusk"
        assert len(assistant.thumbnails) == 1
        assert again.canvas.image() is not None
    finally:
        session.shutdown()
        session.db.close()


def test_open_a_saved_image_restores_prompt_and_settings(
    window: MainWindow, qtbot: QtBot, wait_idle: Wait, tmp_path: Path
) -> None:
    composer = window.composer
    composer.seed.setValue(777)
    composer.seed_lock.setChecked(True)
    composer.steps.setValue(4)
    composer.embedding_cfg.setValue(2.5)
    composer.denoise_strength.setValue(0.6)
    send_text(qtbot, window, "a blue square, a red circle")
    wait_idle(window.session)
    image = window.session.turns()[1].images[0]
    exported = tmp_path / "mine.png"
    from desktop.export import export_image

    export_image(window.session.image_path(image), exported)
    # change everything, then open the image
    composer.seed_lock.setChecked(False)
    composer.seed.setValue(1)
    composer.steps.setValue(30)
    composer.embedding_cfg.setValue(1.0)
    composer.denoise_strength.setValue(1.0)
    assert window.open_image_file(exported)
    assert composer.text() == "a blue square, a red circle"
    assert composer.seed.value() == 777 and composer.seed_lock.isChecked()
    assert composer.steps.value() == 4 and composer.embedding_cfg.value() == 2.5
    assert composer.denoise_strength.value() == 0.6
    assert "Restored the prompt" in composer.notice.text()


def test_open_a_plain_or_broken_image(window: MainWindow, tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert not window.open_image_file(tmp_path / "plain.png")
    assert "no WeGen or A1111 settings" in window.composer.notice.text()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert not window.open_image_file(tmp_path / "bad.png")
    assert "bad.png" in window.composer.notice.text()


def test_missing_model_says_how_to_get_one(
    db: Database, tmp_path: Path, qtbot: QtBot, fake_engine: FakeEngine
) -> None:
    AppSettings(model_dir=str(tmp_path / "no-such-model")).save(db)
    session = Session(db, engine_factory=lambda: fake_engine)
    win = MainWindow(session)
    qtbot.addWidget(win)
    win.show()
    session.start()
    try:
        qtbot.waitUntil(lambda: session.model_state == ModelState.FAILED, timeout=5000)
        assert win.banner.isVisible()
        text = win.banner.text()
        assert "no-such-model" in text and "does not exist" in text
        assert "wegen-tiny" in text and "Settings" in text
        assert not win.composer.send_button.isEnabled()
        send_text(qtbot, win, "hello")
        assert "No model is loaded" in win.composer.notice.text()
        assert session.conversations() == []
    finally:
        session.shutdown()


def test_engine_failure_is_shown_in_the_turn(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    fake_engine.fail_message = "Edit needs an image: generate or attach one first."
    send_text(qtbot, window, "make it blue")
    wait_idle(window.session)
    assistant = list(window.chat.turns.values())[1]
    assert assistant.error_label.text() == fake_engine.fail_message
    assert assistant.status_label.text() == "failed"
    assert assistant.retry_button.isVisibleTo(window)


def _urls(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def test_first_run_suggestions_fit_the_loaded_model(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot
) -> None:
    """A general model suggests any picture; the bundled wegen-tiny, which only knows coloured
    shapes, suggests prompts it can draw and says where to get the full model."""
    label = window.chat.empty_label
    assert label.isVisibleTo(window) and "red fox" in label.text()
    fake_engine.name = "wegen-tiny"
    loads = len(fake_engine.loads)
    window.session.load_model()
    qtbot.waitUntil(
        lambda: len(fake_engine.loads) > loads and window.session.model_state == ModelState.READY,
        timeout=5000,
    )
    text = label.text()
    assert "wegen-tiny" in text and "red fox" not in text
    assert "draw a small blue circle in the centre" in text and "Settings" in text


# --- the first hour (issue 19) ----------------------------------------------------------------


def test_a_quick_action_ends_with_its_conversation(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    composer = window.composer
    qtbot.mouseClick(composer.task_buttons[Task.STYLE], Qt.MouseButton.LeftButton)
    assert composer.task_label.text() == "Task: Style transfer"
    send_text(qtbot, window, "in this style")
    wait_idle(window.session)
    assert composer.task is Task.STYLE  # kept for the next message of the same conversation
    qtbot.mouseClick(window.conversations.new_button, Qt.MouseButton.LeftButton)
    assert composer.task is Task.AUTO and composer.task_label.text() == "Task: automatic"
    assert not any(b.isChecked() for b in composer.task_buttons.values())
    send_text(qtbot, window, "a plain prompt")
    wait_idle(window.session)
    assert [r.task for r in fake_engine.requests] == [Task.STYLE, Task.AUTO]
    # opening another conversation resets it too, and so does "New" in an empty one
    qtbot.mouseClick(composer.task_buttons[Task.EDIT], Qt.MouseButton.LeftButton)
    first = window.conversations.ids()[-1]
    window.session.open_conversation(first)
    assert composer.task is Task.AUTO
    window.session.new_conversation()
    qtbot.mouseClick(composer.task_buttons[Task.DESCRIBE], Qt.MouseButton.LeftButton)
    window.session.new_conversation()
    assert composer.task is Task.AUTO


def test_the_task_label_names_the_task_that_will_be_sent(window: MainWindow, qtbot: QtBot) -> None:
    composer = window.composer
    for task, button in composer.task_buttons.items():
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert composer.task is task
        assert composer.task_label.text() == f"Task: {button.text()}"
    qtbot.mouseClick(composer.task_buttons[Task.VARIATIONS], Qt.MouseButton.LeftButton)
    assert composer.task_label.text() == "Task: automatic"


def test_conversation_titles_tell_conversations_apart(
    window: MainWindow, tmp_path: Path, qtbot: QtBot, wait_idle: Wait
) -> None:
    session = window.session
    Image.new("RGB", (32, 32), "navy").save(tmp_path / "holiday.png")
    for _ in range(2):
        window.drop_mime(_urls(tmp_path / "holiday.png"))
        qtbot.mouseClick(window.composer.task_buttons[Task.RESTORE], Qt.MouseButton.LeftButton)
        window.send()
        wait_idle(session)
        session.new_conversation()
    for _ in range(2):
        send_text(qtbot, window, "a red circle")
        wait_idle(session)
        session.new_conversation()
    qtbot.mouseClick(window.composer.task_buttons[Task.VARIATIONS], Qt.MouseButton.LeftButton)
    window.send()
    wait_idle(session)
    titles = [c.title for c in session.conversations()]
    assert sorted(titles) == sorted(
        [
            "Restore: holiday.png",
            "Restore: holiday.png (2)",
            "a red circle",
            "a red circle (2)",
            "Conversation 5",
        ]
    )


def test_restart_opens_the_last_conversation_at_its_end(
    data_dir: Path, window: MainWindow, qtbot: QtBot, wait_idle: Wait
) -> None:
    for text in ("first conversation", "second conversation"):
        window.session.new_conversation()
        send_text(qtbot, window, text)
        wait_idle(window.session)
    for n in range(6):  # long enough to scroll
        send_text(qtbot, window, f"and once more, number {n}")
        wait_idle(window.session)
    last = window.session.conversation_id
    window.session.open_conversation(window.conversations.ids()[-1])  # the first one
    window.session.open_conversation(last)  # and back: the one open at quit
    window.close()
    window.session.db.close()

    session = Session(
        Database(data_dir),
        engine_factory=FakeEngine,
        verifier=lambda p: verify_model_folder(p, use_engine=False),
    )
    again = MainWindow(session)
    qtbot.addWidget(again)
    again.resize(900, 600)
    again.show()
    qtbot.waitExposed(again)
    try:
        assert session.conversation_id == last
        assert again.conversations.current_id() == last
        assert len(again.chat.turns) == 14
        assert again.canvas.image() is not None
        bar = again.chat.verticalScrollBar()
        qtbot.waitUntil(lambda: bar.maximum() > 0 and again.chat.at_end(), timeout=3000)
        # a conversation opened from the list shows its latest turn too
        bar.setValue(0)
        session.open_conversation(again.conversations.ids()[-1])
        session.open_conversation(last)
        qtbot.waitUntil(lambda: bar.maximum() > 0 and again.chat.at_end(), timeout=3000)
    finally:
        session.shutdown()
        session.db.close()


def test_reading_earlier_turns_is_not_interrupted(
    window: MainWindow, qtbot: QtBot, wait_idle: Wait
) -> None:
    for n in range(5):
        send_text(qtbot, window, f"message {n}")
        wait_idle(window.session)
    bar = window.chat.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and window.chat.at_end(), timeout=3000)
    bar.setValue(0)  # the person scrolls up to read
    assert not window.chat.following
    window.chat.append_text(list(window.chat.turns)[-1], " more text\nand more\nand more")
    qtbot.wait(20)
    assert bar.value() == 0
    send_text(qtbot, window, "a new message")  # sending goes back to the end
    wait_idle(window.session)
    qtbot.waitUntil(window.chat.at_end, timeout=3000)


def test_the_queue_shows_only_when_something_waits_and_never_moves_the_chat(
    window: MainWindow, engine_gate: threading.Event, qtbot: QtBot, wait_idle: Wait
) -> None:
    chat = window.chat.geometry()
    send_text(qtbot, window, "first")
    qtbot.waitUntil(lambda: window.session.running_job() is not None, timeout=5000)
    assert not window.queue.isVisible()  # one running, none waiting
    send_text(qtbot, window, "second")
    assert window.queue.isVisible() and window.queue.title.text() == "Queue: 1 waiting"
    qtbot.wait(10)
    assert window.chat.geometry() == chat
    assert window.chat.mapTo(window, window.chat.rect().topLeft()).y() >= 0
    engine_gate.set()
    wait_idle(window.session)
    assert not window.queue.isVisible()
    assert window.chat.geometry() == chat


def test_cancel_returns_the_canvas_to_the_last_finished_image(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, wait_idle: Wait
) -> None:
    def cancel_while_denoising() -> None:
        fake_engine.steps, fake_engine.step_delay = 500, 0.02
        send_text(qtbot, window, "slow")
        qtbot.waitUntil(window.canvas.is_preview, timeout=5000)
        qtbot.keyClick(window, Qt.Key.Key_Escape)
        wait_idle(window.session)

    cancel_while_denoising()  # nothing finished yet: an empty canvas
    assert window.canvas.image() is None and not window.canvas.is_preview()
    assert window.canvas.notice() == "The reply was cancelled."
    assert not window.export_button.isEnabled()

    fake_engine.steps, fake_engine.step_delay = 2, 0.001
    send_text(qtbot, window, "quick")
    wait_idle(window.session)
    finished = window.current_image
    assert finished is not None and window.canvas.notice() == ""
    cancel_while_denoising()
    assert window.current_image == finished and not window.canvas.is_preview()
    image = window.canvas.image()
    assert image is not None and image.width() == fake_engine.image_size
    assert window.canvas.notice() == "The reply was cancelled."
    assert window.export_button.isEnabled()


def test_suggestions_fit_the_bundled_model_while_it_loads(
    db: Database, qtbot: QtBot, fake_engine: FakeEngine
) -> None:
    from desktop.paths import BUNDLED_MODEL

    AppSettings(model_dir=str(BUNDLED_MODEL)).save(db)
    session = Session(db, engine_factory=lambda: fake_engine, verifier=lambda _p: [])
    win = MainWindow(session)
    qtbot.addWidget(win)
    win.show()
    try:
        assert session.model_state == ModelState.NONE  # not even started
        text = win.chat.empty_label.text()
        assert "wegen-tiny" in text and "a large red circle at the top left" in text
        assert "fox" not in text
    finally:
        session.shutdown()


def test_suggestions_for_an_unknown_model_fit_any_model(
    window: MainWindow, model_dir: Path, qtbot: QtBot
) -> None:
    texts: dict[str, str] = {}
    window.session.model_changed.connect(
        lambda: texts.setdefault(window.session.model_state, window.chat.empty_label.text())
    )
    window.session.load_model()  # the fake folder's config.json names no model
    qtbot.waitUntil(lambda: ModelState.READY in texts, timeout=5000)
    loading = texts[ModelState.LOADING]
    assert "fox" not in loading and "a large red circle at the top left" in loading


def test_export_suggests_a_name_from_the_prompt(
    window: MainWindow, qtbot: QtBot, wait_idle: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    send_text(qtbot, window, "A large red circle, at the top left!")
    wait_idle(window.session)
    offered: list[str] = []

    def dialog(_parent, _title, start, _filter):  # type: ignore[no-untyped-def]
        offered.append(start)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    window.export_current_image()
    window.export_current_conversation()
    assert Path(offered[0]).name == "a-large-red-circle-at-the-top-left.png"
    assert Path(offered[1]).name == "a-large-red-circle-at-the-top-left.zip"


def test_the_about_box_names_the_version_and_where_the_licences_are(
    window: MainWindow, qtbot: QtBot
) -> None:
    from desktop.about_dialog import AboutDialog
    from desktop.job import APP_VERSION
    from desktop.paths import BUNDLED_MODEL
    from engine.api import build, version

    dialog = AboutDialog("wegen-tiny", window)
    qtbot.addWidget(dialog)
    text = dialog.findChild(QLabel, "aboutHeader").text() + dialog.licences.toPlainText()
    assert version() == APP_VERSION and f"WeGen {APP_VERSION}" in text
    assert dialog.build_line.text() == f"Build: {build()}"
    assert "Apache License 2.0" in text
    assert "LICENSE file" not in text
    assert str(BUNDLED_MODEL / "README.md") in text  # where this copy keeps it


def test_an_attachment_of_extreme_aspect_gets_a_thumbnail(
    window: MainWindow, tmp_path: Path, qtbot: QtBot, wait_idle: Wait
) -> None:
    Image.new("RGB", (2048, 10), "teal").save(tmp_path / "strip.png")
    Image.new("RGB", (10, 2048), "teal").save(tmp_path / "pole.png")
    assert window.drop_mime(_urls(tmp_path / "strip.png", tmp_path / "pole.png")) == []
    for chip in window.composer.chips:
        pixmap = chip.thumbnail.pixmap()
        assert not pixmap.isNull() and min(pixmap.width(), pixmap.height()) >= 1
    send_text(qtbot, window, "describe these")
    wait_idle(window.session)
    user = next(iter(window.chat.turns.values()))
    assert len(user.thumbnails) == 2
    for button in user.thumbnails:
        assert not button.icon().isNull()
        assert min(button.iconSize().width(), button.iconSize().height()) >= 1


def test_quit_cancels_the_running_reply_and_stops_the_worker(
    window: MainWindow, fake_engine: FakeEngine, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    fake_engine.steps, fake_engine.step_delay = 100_000, 0.01
    send_text(qtbot, window, "a reply that would take half an hour")
    qtbot.waitUntil(window.canvas.is_preview, timeout=5000)
    asked: list[str] = []

    def question(_parent, _title, text):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    window.close()
    assert asked and "Quit anyway" in asked[0]
    assert not window.isVisible()
    assert window.session.worker.isFinished()  # joined: the reply stopped at its next step
    assert not fake_engine.running.is_set()


def test_export_writes_the_image_and_reports_a_failure(
    window: MainWindow,
    qtbot: QtBot,
    wait_idle: Wait,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from engine.api import read_png_metadata

    send_text(qtbot, window, "a red circle")
    wait_idle(window.session)
    chosen = [str(tmp_path / "mine.png"), str(tmp_path / "missing" / "mine.png")]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_: (chosen.pop(0), ""))
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: warnings.append(text))

    window.export_current_image()
    meta = read_png_metadata(tmp_path / "mine.png")
    assert meta.wegen is not None and meta.wegen["prompt"] == "a red circle"
    assert window.statusBar().currentMessage() == f"Saved {tmp_path / 'mine.png'}"
    assert window.last_export_folder == tmp_path

    window.export_current_image()  # into a folder that does not exist
    [warning] = warnings
    assert "missing" in warning and not (tmp_path / "missing").exists()
