"""The chat: user and assistant turns, streamed text, PSR rewrites, progress, thumbnails, and a
Retry on replies that were interrupted, cancelled or failed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QImageReader
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.database import ImageRecord, TurnRecord, TurnStatus
from desktop.qt_images import fit_size, thumbnail
from engine.api import ImageRole, Role, Task, knows_only_shapes

THUMB = 168  # thumbnail side in pixels
ATTACHMENT_THUMB = 72
FOLLOW_SLACK = 8  # pixels from the bottom that still count as "at the end"


def load_thumbnail(path: Path, side: int) -> QImage:
    """Decode ``path`` scaled to fit ``side`` (JPEG decodes at reduced size: cheap)."""
    reader = QImageReader(str(path))
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > side:
        reader.setScaledSize(fit_size(size, side))
    return reader.read()


class ThumbnailButton(QToolButton):
    def __init__(self, image: QImage, side: int, tooltip: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.set_image(image, side)
        self.setToolTip(tooltip)

    def set_image(self, image: QImage, side: int) -> None:
        pixmap = thumbnail(image, side)
        self.setIcon(QIcon(pixmap))
        self.setIconSize(QSize(pixmap.width(), pixmap.height()))


class TurnWidget(QFrame):
    image_clicked = Signal(object)  # ImageRecord
    retry_clicked = Signal(int)  # turn id
    cancel_clicked = Signal(str)  # request id

    def __init__(
        self,
        turn: TurnRecord,
        image_path: Callable[[ImageRecord], Path],
        parent: QWidget | None = None,
        prompt: str = "",
    ) -> None:
        super().__init__(parent)
        self.turn = turn
        self._image_path = image_path
        self.prompt = prompt  # an assistant turn: the message it answers (for its PSR rewrite)
        user = turn.role is Role.USER
        self.setObjectName("turnUser" if user else "turnAssistant")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.setSpacing(6)

        header = QHBoxLayout()
        self.role_label = QLabel(self.tr("You") if user else self.tr("WeGen"))
        self.role_label.setObjectName("turnRole")
        header.addWidget(self.role_label)
        self.status_label = QLabel()
        self.status_label.setObjectName("turnStatus")
        header.addWidget(self.status_label)
        header.addStretch(1)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setToolTip(self.tr("Stop this reply (Esc)"))
        self.cancel_button.clicked.connect(lambda: self.cancel_clicked.emit(self.turn.request_id))
        header.addWidget(self.cancel_button)
        self.retry_button = QPushButton(self.tr("Retry"))
        self.retry_button.clicked.connect(lambda: self.retry_clicked.emit(self.turn.id))
        header.addWidget(self.retry_button)
        layout.addLayout(header)

        self.rewrite_label = QLabel()
        self.rewrite_label.setObjectName("rewrite")
        self.rewrite_label.setWordWrap(True)
        self.rewrite_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.rewrite_label)

        self.text_label = QLabel()
        self.text_label.setObjectName("turnText")
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.text_label)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumHeight(16)
        layout.addWidget(self.progress)

        self.images_row = QHBoxLayout()
        self.images_row.setSpacing(6)
        self.images_row.addStretch(1)
        layout.addLayout(self.images_row)
        self.preview_button: ThumbnailButton | None = None
        self.thumbnails: list[ThumbnailButton] = []

        self.error_label = QLabel()
        self.error_label.setObjectName("turnError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.error_label)

        for image in turn.images:
            self.add_image(image, None)
        self.update_turn(turn)

    # --- updates --------------------------------------------------------------------------
    def update_turn(self, turn: TurnRecord) -> None:
        self.turn = turn
        self.text_label.setText(turn.text)
        self.text_label.setVisible(bool(turn.text))
        self.set_rewrite(turn.rewrite)
        self.error_label.setText(turn.error)
        self.error_label.setVisible(bool(turn.error))
        status = {
            TurnStatus.QUEUED: self.tr("waiting in the queue"),
            TurnStatus.RUNNING: self.tr("working…"),
            TurnStatus.CANCELLED: self.tr("cancelled"),
            TurnStatus.FAILED: self.tr("failed"),
            TurnStatus.INTERRUPTED: self.tr("interrupted: WeGen closed before this reply finished"),
        }.get(turn.status, "")
        if turn.role is Role.USER and turn.task is not Task.AUTO:
            status = self.tr("task: {0}").format(turn.task.value)
        self.status_label.setText(status)
        self.retry_button.setVisible(turn.role is Role.ASSISTANT and turn.status.retryable)
        self.cancel_button.setVisible(turn.status.unfinished)
        self.progress.setVisible(
            turn.status is TurnStatus.RUNNING
            and self.progress.maximum() > 0
            and self.progress.value() > 0
        )
        if turn.status is not TurnStatus.RUNNING and self.preview_button is not None:
            self.preview_button.deleteLater()
            self.preview_button = None
        if turn.status is TurnStatus.QUEUED:
            self.progress.reset()

    def append_text(self, text: str) -> None:
        self.text_label.setText(self.text_label.text() + text)
        self.text_label.setVisible(True)

    def set_rewrite(self, text: str) -> None:
        if not text:
            label = ""
        elif text.strip() == self.prompt.strip():  # PSR found no rewrite that kept every word
            label = self.tr("Prompt drawn as typed: no rewrite kept every word you asked for")
        else:
            label = self.tr("Rewritten prompt: {0}").format(text)
        self.rewrite_label.setText(label)
        self.rewrite_label.setVisible(bool(text))

    def set_progress(self, phase: str, done: int, total: int) -> None:
        label = (
            self.tr("Image tokens %v / %m")
            if phase == "tokens"
            else self.tr("Denoising step %v / %m")
        )
        self.progress.setFormat(label)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setVisible(True)

    def set_preview(self, image: QImage) -> None:
        if self.preview_button is None:
            self.preview_button = ThumbnailButton(image, THUMB, self.tr("Live preview"))
            self.images_row.insertWidget(self.images_row.count() - 1, self.preview_button)
        else:
            self.preview_button.set_image(image, THUMB)

    def add_image(self, record: ImageRecord, image: QImage | None) -> ThumbnailButton:
        side = THUMB if self.turn.role is Role.ASSISTANT else ATTACHMENT_THUMB
        if image is None:
            image = load_thumbnail(self._image_path(record), side)
        tooltip = record.source or Path(record.path).name
        if record.role is not ImageRole.IMAGE:
            tooltip = f"{_role_name(self, record.role)}: {tooltip}"
        button = ThumbnailButton(image, side, tooltip)
        button.clicked.connect(lambda: self.image_clicked.emit(record))
        box = QVBoxLayout()
        box.setSpacing(2)
        box.addWidget(button)
        if self.turn.role is Role.USER:
            badge = QLabel(_role_name(self, record.role))
            badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
            box.addWidget(badge)
        index = self.images_row.count() - 1
        if self.preview_button is not None:
            index -= 1
        self.images_row.insertLayout(max(0, index), box)
        self.thumbnails.append(button)
        if self.preview_button is not None:
            self.preview_button.deleteLater()
            self.preview_button = None
        return button


def _role_name(widget: QWidget, role: ImageRole) -> str:
    names = {
        ImageRole.IMAGE: widget.tr("image"),
        ImageRole.REFERENCE: widget.tr("reference"),
        ImageRole.CONDITION: widget.tr("condition"),
        ImageRole.STYLE: widget.tr("style"),
        ImageRole.RESTORE: widget.tr("to restore"),
    }
    return names.get(role, role.value)


class ChatView(QScrollArea):
    image_selected = Signal(object)  # ImageRecord
    retry_requested = Signal(int)
    cancel_requested = Signal(str)

    def __init__(
        self, image_path: Callable[[ImageRecord], Path], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._image_path = image_path
        self._body = QWidget()
        self._body.setObjectName("chatPanel")
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(14, 14, 14, 14)
        self._layout.setSpacing(10)
        self.empty_label = QLabel()
        self.empty_label.setObjectName("emptyState")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self.empty_label)
        self._layout.addStretch(1)
        self.setWidget(self._body)
        self.turns: dict[int, TurnWidget] = {}
        # Follow the end: while the view is at the bottom, it stays there as turns grow (their
        # layout settles over several events); scrolling up to read stops that until the
        # person scrolls back down, opens a conversation or sends a message.
        self.following = True
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._range_changed)
        bar.valueChanged.connect(self._value_changed)
        self.set_model_name(None)

    def set_model_name(self, name: str | None) -> None:
        """Fit the first-run suggestions to the loaded model: the bundled wegen-tiny only knows
        coloured shapes, so it gets prompts it can draw and a pointer to the full model."""
        if name is None:  # not loaded yet: suggest what every model can draw
            text = self.tr(
                "<h3>Start by describing an image</h3>"
                "<p>Try <i>“a large red circle at the top left”</i>, then refine it by "
                "chatting: <i>“now make it blue”</i>. You can write while the model loads.</p>"
                "<p>The buttons above the message box set what WeGen should do.</p>"
            )
        elif knows_only_shapes(name):
            text = self.tr(
                "<h3>Start by describing an image</h3>"
                "<p>The loaded model, <b>{0}</b>, is small and has only learnt simple coloured "
                "shapes, so that the app works without a download. Try <i>“a large red circle "
                "at the top left”</i> or <i>“draw a small blue circle in the centre”</i>, "
                "then ask <i>“How many objects are there?”</i> Edits and the other tasks work "
                "only now and then with it: its model card has the scores.</p>"
                "<p>For photos and everything else, load the official WeGen weights in "
                "Settings.</p>"
            ).format(name)
        else:
            text = self.tr(
                "<h3>Start by describing an image</h3>"
                "<p>Try <i>“a red fox in the snow, watercolour”</i>, then refine it by chatting: "
                "<i>“now make it night, keep the fox”</i>.</p>"
                "<p>Drop or paste a photo to restore it, restyle it, or ask about it. "
                "The buttons above the message box set what WeGen should do.</p>"
            )
        self.empty_label.setText(text)

    def set_turns(self, turns: list[TurnRecord]) -> None:
        for widget in self.turns.values():
            widget.deleteLater()
        self.turns.clear()
        for turn in turns:
            self.add_turn(turn, scroll=False)
        self.empty_label.setVisible(not turns)
        self._scroll_to_end()

    def add_turn(self, turn: TurnRecord, scroll: bool = True) -> TurnWidget:
        users = [w.turn.text for w in self.turns.values() if w.turn.role is Role.USER]
        prompt = users[-1] if users and turn.role is not Role.USER else ""
        widget = TurnWidget(turn, self._image_path, prompt=prompt)
        widget.image_clicked.connect(self.image_selected)
        widget.retry_clicked.connect(self.retry_requested)
        widget.cancel_clicked.connect(self.cancel_requested)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.turns[turn.id] = widget
        self.empty_label.setVisible(False)
        if scroll:
            self._scroll_to_end()
        return widget

    def update_turn(self, turn: TurnRecord) -> None:
        if turn.id in self.turns:
            self.turns[turn.id].update_turn(turn)

    def append_text(self, turn_id: int, text: str) -> None:
        if turn_id in self.turns:
            self.turns[turn_id].append_text(text)

    def set_rewrite(self, turn_id: int, text: str) -> None:
        if turn_id in self.turns:
            self.turns[turn_id].set_rewrite(text)

    def set_progress(self, turn_id: int, phase: str, done: int, total: int) -> None:
        if turn_id in self.turns:
            self.turns[turn_id].set_progress(phase, done, total)

    def set_preview(self, turn_id: int, image: QImage) -> None:
        if turn_id in self.turns:
            self.turns[turn_id].set_preview(image)

    def add_image(self, record: ImageRecord, image: QImage) -> None:
        if record.turn_id in self.turns:
            self.turns[record.turn_id].add_image(record, image)

    def at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum()

    def _scroll_to_end(self) -> None:
        self.following = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _range_changed(self, _minimum: int, maximum: int) -> None:
        if self.following:
            self.verticalScrollBar().setValue(maximum)

    def _value_changed(self, value: int) -> None:
        self.following = value >= self.verticalScrollBar().maximum() - FOLLOW_SLACK
