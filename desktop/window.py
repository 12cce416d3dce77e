"""The main window: conversation list (the queue under it) | chat | canvas, with the composer
below, menus, shortcuts, drag-and-drop and the model status banner. It opens where the person
left off and says when it first painted, so that the app loads the model behind it."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QImage,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.canvas import ImageCanvas
from desktop.chat_view import ChatView
from desktop.composer import Composer
from desktop.conversation_list import ConversationList
from desktop.database import ImageRecord, TurnRecord, TurnStatus
from desktop.image_input import load_image_file
from desktop.model_folder import how_to_get_a_model
from desktop.paths import BUNDLED_MODEL, ICONS
from desktop.qt_images import pil_to_qimage
from desktop.queue_panel import QueuePanel
from desktop.recent_images import RecentImages
from desktop.session import ModelState, Session
from desktop.settings_dialog import SettingsDialog
from desktop.theme import apply_theme
from desktop.window_actions import WindowActions
from engine.api import (
    BUNDLED_NAME,
    ImageInputError,
    Role,
    read_png_metadata,
    recipe_from_metadata,
)

#: how long closing waits for the engine to stop: a reply stops at its next step; a model
#: load cannot be cancelled, and the app exits without waiting for it (see desktop.main)
QUIT_WAIT_MS = 2000


class MainWindow(WindowActions):
    #: once, just after the window first painted (the app loads the model from then on)
    first_painted = Signal()

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.current_image: ImageRecord | None = None
        self._shown_conversation = -1  # the conversation on screen (-1: a new, empty one)
        self._sending = False  # inside send(): a conversation opened now is the one just made
        self._preview_turn: int | None = None  # the turn whose preview the canvas shows
        self._painted = False
        self.closed = False  # the person closed the window (and it waited for the engine)
        self.last_export_folder: Path | None = None
        self.recent_images = RecentImages()
        self.setWindowTitle(self.tr("WeGen"))
        icon = ICONS / "wegen.svg"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)
        self.resize(1360, 860)

        self.conversations = ConversationList(session)
        self.chat = ChatView(session.image_path)
        self.canvas = ImageCanvas()
        self.composer = Composer()
        self.queue = QueuePanel(session)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.setOpenExternalLinks(False)
        self.banner.linkActivated.connect(lambda _link: self.open_settings())
        self.banner.setVisible(False)

        canvas_panel = QWidget()
        canvas_panel.setObjectName("canvasPanel")
        canvas_layout = QVBoxLayout(canvas_panel)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.setSpacing(0)
        canvas_layout.addLayout(self._canvas_toolbar())
        canvas_layout.addWidget(self.canvas, 1)

        self.view_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.view_splitter.addWidget(self.chat)
        self.view_splitter.addWidget(canvas_panel)
        self.view_splitter.setStretchFactor(0, 2)
        self.view_splitter.setStretchFactor(1, 3)
        self.view_splitter.setSizes([480, 640])

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        banner_box = QHBoxLayout()
        banner_box.setContentsMargins(10, 8, 10, 0)
        banner_box.addWidget(self.banner)
        right_layout.addLayout(banner_box)
        right_layout.addWidget(self.view_splitter, 1)
        right_layout.addWidget(self.composer)

        # the queue sits under the conversation list: showing it never moves the chat
        sidebar = QWidget()
        sidebar_layout = QVBoxLayout(sidebar)
        sidebar_layout.setContentsMargins(0, 0, 0, 0)
        sidebar_layout.setSpacing(0)
        sidebar_layout.addWidget(self.conversations, 1)
        sidebar_layout.addWidget(self.queue)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.addWidget(sidebar)
        self.main_splitter.addWidget(right)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([240, 1120])
        self.setCentralWidget(self.main_splitter)

        self.model_label = QLabel()
        self.statusBar().addPermanentWidget(self.model_label)
        self._build_menus()
        self._connect()
        self._model_changed()
        self.session.resume()
        self.canvas.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.canvas and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.canvas.removeEventFilter(self)
            QTimer.singleShot(0, self.first_painted.emit)  # after this paint reaches the screen
        return super().eventFilter(watched, event)

    def _connect(self) -> None:
        s = self.session
        s.conversation_opened.connect(self._open)
        s.turn_added.connect(self._turn_added)
        s.turn_changed.connect(self._turn_changed)
        s.text_streamed.connect(self.chat.append_text)
        s.rewrite_shown.connect(self.chat.set_rewrite)
        s.progress.connect(self.chat.set_progress)
        s.preview.connect(self._preview)
        s.image_added.connect(self._image_added)
        s.model_changed.connect(self._model_changed)
        s.queue_changed.connect(self._queue_changed)
        s.notice.connect(lambda text: self.composer.show_notice(text, error=True))
        self.chat.image_selected.connect(self.show_image)
        self.chat.retry_requested.connect(s.retry)
        self.chat.cancel_requested.connect(s.cancel)
        self.composer.send_requested.connect(self.send)
        self.composer.cancel_requested.connect(self.cancel)
        self.canvas.zoom_changed.connect(
            lambda scale: self.zoom_label.setText(f"{scale * 100:.0f} %")
        )
        self.canvas.compare_available.connect(self._compare_available)

    # --- session events -------------------------------------------------------------------
    def _open(self, conversation_id: int) -> None:
        switched = conversation_id != self._shown_conversation or conversation_id < 0
        if switched and not self._sending:
            self.composer.reset_task()  # a quick action belongs to the conversation it was for
        self._shown_conversation = conversation_id
        self._preview_turn = None
        turns = self.session.turns()
        self.chat.set_turns(turns)
        images = [i for t in turns if t.role is Role.ASSISTANT for i in t.images]
        if images:
            self.show_image(images[-1])
        else:
            self.current_image = None
            self.canvas.clear()
            self.export_button.setEnabled(False)
        title = self.session.db.conversation(conversation_id) if conversation_id >= 0 else None
        self.setWindowTitle(f"{title.title} — WeGen" if title else self.tr("WeGen"))

    def _is_current(self, conversation_id: int) -> bool:
        return conversation_id == self.session.conversation_id

    def _turn_added(self, turn: TurnRecord) -> None:
        if self._is_current(turn.conversation_id):
            self.chat.add_turn(turn)

    def _turn_changed(self, turn: TurnRecord) -> None:
        if self._is_current(turn.conversation_id):
            self.chat.update_turn(turn)
        if turn.id == self._preview_turn and turn.status is not TurnStatus.RUNNING:
            self._preview_turn = None
            self._end_preview(turn)

    def _preview(self, turn_id: int, image: QImage) -> None:
        if turn_id in self.chat.turns:
            self._preview_turn = turn_id
            self.chat.set_preview(turn_id, image)
            self.canvas.show_preview(image, self.tr("Denoising…"))

    def _end_preview(self, turn: TurnRecord) -> None:
        """A reply stopped while its preview was on the canvas: show the last finished image
        again (or nothing) and say what happened."""
        if self.current_image is not None and self.session.db.image(self.current_image.id):
            self.show_image(self.current_image)
        else:
            self.current_image = None
            self.canvas.clear()
            self.export_button.setEnabled(False)
        notices = {
            TurnStatus.CANCELLED: self.tr("The reply was cancelled."),
            TurnStatus.FAILED: self.tr("The reply failed: see the message in the chat."),
            TurnStatus.INTERRUPTED: self.tr("The reply was interrupted."),
        }
        self.canvas.set_notice(notices.get(turn.status, ""))

    def _image_added(self, record: ImageRecord, image: QImage) -> None:
        if record.turn_id in self.chat.turns:
            if record.turn_id == self._preview_turn:
                self._preview_turn = None
            self.chat.add_image(record, image)
            self.show_image(record, image)

    def _queue_changed(self) -> None:
        self.composer.set_running(self.session.running_job() is not None)

    def _compare_available(self, available: bool) -> None:
        self.compare_button.setEnabled(available)
        if not available:
            self.compare_button.setChecked(False)
        else:
            self.canvas.set_compare(self.compare_button.isChecked())

    def _model_changed(self) -> None:
        s = self.session
        if s.model_state == ModelState.READY and s.model_info is not None:
            info = s.model_info
            self.banner.setVisible(False)
            self.model_label.setText(
                self.tr("Model: {0} · {1} · {2}").format(info.name, info.device, info.precision)
            )
            self.composer.apply_model_info(info)
            self.composer.set_can_send(True)
            self.chat.set_model_name(info.name)
        elif s.model_state == ModelState.FAILED:
            self._show_banner(
                "<b>"
                + self.tr("No model is loaded.")
                + "</b><br>"
                + _html(s.model_message)
                + "<br><br>"
                + _html(how_to_get_a_model())
                + f' <a href="settings">{self.tr("Open Settings…")}</a>',
                "error",
            )
            self.model_label.setText(self.tr("No model"))
            self.composer.set_can_send(
                False, self.tr("No model is loaded: see the message at the top of the window")
            )
        else:
            loading = self.tr("Loading the model from {0}…").format(_html(s.settings.model_dir))
            if s.model_message:  # a long load says what it is doing
                loading += "<br>" + _html(s.model_message)
            self._show_banner(loading, "info")
            self.chat.set_model_name(_folder_model_name(s.settings.model_dir))
            self.model_label.setText(self.tr("Loading model…"))
            self.composer.set_can_send(True)

    def _show_banner(self, html: str, kind: str) -> None:
        self.banner.setText(html)
        self.banner.setProperty("kind", kind)
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner.setVisible(True)

    # --- actions --------------------------------------------------------------------------
    def send(self) -> None:
        if not self.composer.send_button.isEnabled():
            self.composer.show_notice(self.composer.send_button.toolTip(), error=True)
            return
        self._sending = True
        try:
            reply = self.session.send(
                self.composer.text(),
                self.composer.attachments(),
                self.composer.settings(),
                self.composer.task,
            )
        finally:
            self._sending = False
        if reply is not None:
            self.composer.clear_message()
            self.composer.edit.setFocus()

    def cancel(self) -> None:
        if not self.session.cancel_running():
            self.statusBar().showMessage(self.tr("Nothing is running."), 3000)

    def show_image(self, record: ImageRecord, image: QImage | None = None) -> None:
        path = self.session.image_path(record)
        if image is None:
            image = self.recent_images.get(record.id, path)
        else:
            self.recent_images.put(record.id, image)
        if image.isNull():
            self.statusBar().showMessage(self.tr("Cannot read {0}").format(path), 5000)
            return
        before_record = self.session.before_image(record)
        before = None
        if before_record is not None:
            before = self.recent_images.get(
                before_record.id, self.session.image_path(before_record)
            )
            if before.isNull():
                before = None
        caption = f"{image.width()} × {image.height()}"
        seed = record.metadata.get("settings", {}).get("seed")
        if seed is not None:
            caption += " · " + self.tr("seed {0}").format(seed)
        self.current_image = record
        self.canvas.set_image(image, before, caption)
        self.export_button.setEnabled(True)

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            self.tr("Open image"),
            str(Path.home()),
            self.tr("Images (*.png *.jpg *.jpeg *.webp)"),
        )
        if path:
            self.open_image_file(Path(path))

    def open_image_file(self, path: Path) -> bool:
        """Show an image and restore the prompt and settings it was made with, if it says."""
        try:
            pixels = load_image_file(path)
            meta = read_png_metadata(path)
        except (ImageInputError, OSError) as error:
            self.composer.show_notice(str(error), error=True)
            return False
        recipe = recipe_from_metadata(meta)
        self.canvas.set_image(pil_to_qimage(pixels), None, path.name)
        if recipe is None:
            self.composer.show_notice(
                self.tr(
                    "“{0}” has no WeGen or A1111 settings in it. Attach it to a message to use it."
                ).format(path.name)
            )
            return False
        self.composer.apply_recipe(recipe)
        self.composer.show_notice(
            self.tr(
                "Restored the prompt and settings of “{0}”. Press Send to make it again."
            ).format(path.name)
        )
        return True

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.session, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog))
        dialog.open()
        return dialog

    def apply_settings(self, dialog: SettingsDialog) -> None:
        old = self.session.settings
        new = dialog.chosen()
        app = QApplication.instance()
        if new.theme != old.theme and isinstance(app, QApplication):
            apply_theme(app, new.theme)
        if new.runtime() != old.runtime() or new.model_dir != old.model_dir:
            self.session.load_model(new)
        else:
            self.session.settings = new
            new.save(self.session.db)

    # --- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.drop_mime(event.mimeData())
        event.acceptProposedAction()

    def drop_mime(self, mime: QMimeData) -> list[str]:
        """Attach dropped files or image data; return the messages for what was refused."""
        if mime.hasUrls():
            local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            remote = [u.toString() for u in mime.urls() if not u.isLocalFile()]
            errors = self.composer.add_files(local) if local else []
            if remote:
                errors.append(
                    self.tr("Only files on this computer can be attached: {0}").format(
                        ", ".join(remote)
                    )
                )
                self.composer.show_notice("\n".join(errors), error=True)
            return errors
        if mime.hasImage():
            self.composer.edit.insertFromMimeData(mime)
        return []

    # --- closing --------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session.is_busy():
            answer = QMessageBox.question(
                self,
                self.tr("Quit WeGen"),
                self.tr(
                    "A reply is still being made. Quit anyway? Finished images are kept; "
                    "the unfinished reply can be retried next time."
                ),
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.hide()  # gone at once; the worker stops behind it
        loading = self.session.model_state == ModelState.LOADING and not self.session.is_busy()
        self.session.shutdown(0 if loading else QUIT_WAIT_MS)  # a load cannot be cancelled
        self.closed = True
        event.accept()


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
    )


def _folder_model_name(folder: str) -> str | None:
    """The name of the model in ``folder`` before it is loaded (from its config.json, read
    without the engine), so that the first suggestions fit it from the start."""
    path = Path(folder)
    if path.resolve() == BUNDLED_MODEL.resolve():
        return BUNDLED_NAME
    try:
        with open(path / "config.json", encoding="utf-8") as handle:
            name = json.load(handle).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None
