"""The composer: quick actions (the task hint), attachments with their roles, the message box,
Send/Cancel, and the generation settings (seed lock/randomise, steps, guidance, embedding-CFG,
redraw strength, size, PSR)."""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.attachment import Attachment
from desktop.image_input import IMAGE_SUFFIXES
from desktop.qt_images import pil_to_qimage, qimage_to_pil, thumbnail
from engine.api import (
    DENOISE_STRENGTH_RANGE,
    EMBEDDING_CFG_RANGE,
    GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    GenerationSettings,
    ImageInputError,
    ImageRole,
    ModelInfo,
    Range,
    Recipe,
    Task,
)

MAX_SEED = int(SEED_RANGE.high)
CHIP_THUMB = 40  # an attachment's thumbnail in the composer, in pixels


class MessageEdit(QPlainTextEdit):
    """The message box: Ctrl+Enter sends; pasted images and files become attachments."""

    submit = Signal()
    images_pasted = Signal(list)  # QImage
    files_pasted = Signal(list)  # str paths

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submit.emit()
            return
        super().keyPressEvent(event)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return source.hasImage() or source.hasUrls() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        if source.hasImage():
            image = QImage(source.imageData())
            if not image.isNull():
                self.images_pasted.emit([image])
                return
        if source.hasUrls():
            files = [u.toLocalFile() for u in source.urls() if u.isLocalFile()]
            if files:
                self.files_pasted.emit(files)
                return
        super().insertFromMimeData(source)


class AttachmentChip(QFrame):
    """One attachment: thumbnail, name, what it is for, and a remove button."""

    removed = Signal(object)  # self
    role_changed = Signal()

    ROLES = (
        ImageRole.IMAGE,
        ImageRole.REFERENCE,
        ImageRole.CONDITION,
        ImageRole.STYLE,
        ImageRole.RESTORE,
    )

    def __init__(self, attachment: Attachment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.attachment = attachment
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.thumbnail = QLabel()
        self.thumbnail.setFixedSize(CHIP_THUMB, CHIP_THUMB)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setPixmap(thumbnail(pil_to_qimage(attachment.image), CHIP_THUMB))
        layout.addWidget(self.thumbnail)
        column = QVBoxLayout()
        name = QLabel(attachment.source)
        name.setMaximumWidth(140)
        name.setToolTip(attachment.source)
        column.addWidget(name)
        self.role_box = QComboBox()
        labels = {
            ImageRole.IMAGE: self.tr("Image"),
            ImageRole.REFERENCE: self.tr("Reference subject"),
            ImageRole.CONDITION: self.tr("Condition (edges/layout)"),
            ImageRole.STYLE: self.tr("Style"),
            ImageRole.RESTORE: self.tr("Image to restore"),
        }
        for role in self.ROLES:
            self.role_box.addItem(labels[role], role)
        self.role_box.setCurrentIndex(self.ROLES.index(attachment.role))
        self.role_box.currentIndexChanged.connect(self._role_changed)
        self.role_box.setToolTip(self.tr("What this image is for"))
        column.addWidget(self.role_box)
        layout.addLayout(column)
        remove = QToolButton()
        remove.setText("✕")
        remove.setToolTip(self.tr("Remove this attachment"))
        remove.setAutoRaise(True)
        remove.clicked.connect(lambda: self.removed.emit(self))
        layout.addWidget(remove, alignment=Qt.AlignmentFlag.AlignTop)

    def set_role(self, role: ImageRole) -> None:
        self.role_box.setCurrentIndex(self.ROLES.index(role))

    def _role_changed(self, index: int) -> None:
        self.attachment = self.attachment.with_role(self.ROLES[index])
        self.role_changed.emit()


class Composer(QWidget):
    send_requested = Signal()
    cancel_requested = Signal()

    QUICK_ACTIONS = (
        Task.GENERATE,
        Task.EDIT,
        Task.RESTORE,
        Task.STYLE,
        Task.DESCRIBE,
        Task.VARIATIONS,
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.setAcceptDrops(False)  # the window takes drops
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 10)
        layout.setSpacing(6)

        # quick actions
        actions = QHBoxLayout()
        actions.setSpacing(6)
        labels = {
            Task.GENERATE: (self.tr("Generate"), self.tr("Draw a new image from the text")),
            Task.EDIT: (self.tr("Edit this image"), self.tr("Change the last image as you say")),
            Task.RESTORE: (self.tr("Restore"), self.tr("Repair the attached photo")),
            Task.STYLE: (
                self.tr("Style transfer"),
                self.tr("Paint the first image in the style of the second"),
            ),
            Task.DESCRIBE: (self.tr("Describe"), self.tr("Answer about the images, no drawing")),
            Task.VARIATIONS: (self.tr("Variations"), self.tr("Another take on the last image")),
        }
        self.task_names = {task: text for task, (text, _tip) in labels.items()}
        self.task_buttons: dict[Task, QPushButton] = {}
        for task in self.QUICK_ACTIONS:
            text, tip = labels[task]
            button = QPushButton(text)
            button.setCheckable(True)
            button.setProperty("quickAction", True)
            button.setToolTip(tip)
            button.clicked.connect(
                lambda checked, t=task: self.set_task(t if checked else Task.AUTO)
            )
            actions.addWidget(button)
            self.task_buttons[task] = button
        actions.addStretch(1)
        self.task_label = QLabel()
        self.task_label.setObjectName("taskLabel")
        self.task_label.setToolTip(self.tr("The task the next message is sent with"))
        actions.addWidget(self.task_label)
        layout.addLayout(actions)

        # attachments
        self.attachments_row = QHBoxLayout()
        self.attachments_row.setSpacing(6)
        self.attachments_row.addStretch(1)
        layout.addLayout(self.attachments_row)
        self.chips: list[AttachmentChip] = []

        self.notice = QLabel()
        self.notice.setObjectName("banner")
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)
        layout.addWidget(self.notice)

        # message + buttons
        row = QHBoxLayout()
        self.edit = MessageEdit()
        self.edit.setPlaceholderText(
            self.tr(
                "Describe an image, ask for a change, or ask about an attached photo… "
                "(Ctrl+Enter to send)"
            )
        )
        self.edit.setMaximumHeight(96)
        self.edit.setTabChangesFocus(True)
        self.edit.submit.connect(self.send_requested)
        self.edit.images_pasted.connect(self._paste_images)
        self.edit.files_pasted.connect(self.add_files)
        row.addWidget(self.edit, 1)
        buttons = QVBoxLayout()
        self.send_button = QPushButton(self.tr("Send"))
        self.send_button.setObjectName("sendButton")
        self.send_button.setToolTip(self.tr("Send (Ctrl+Enter)"))
        self.send_button.clicked.connect(self.send_requested)
        buttons.addWidget(self.send_button)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setToolTip(self.tr("Stop the running reply (Esc)"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons.addWidget(self.cancel_button)
        self.attach_button = QPushButton(self.tr("Attach…"))
        self.attach_button.setToolTip(
            self.tr("Attach images (Ctrl+Shift+O); you can also drop or paste them")
        )
        self.attach_button.clicked.connect(self.choose_files)
        buttons.addWidget(self.attach_button)
        row.addLayout(buttons)
        layout.addLayout(row)

        # settings
        settings = QHBoxLayout()
        settings.setSpacing(6)
        settings.addWidget(QLabel(self.tr("Seed")))
        self.seed = QSpinBox()
        self.seed.setRange(int(SEED_RANGE.low), MAX_SEED)
        self.seed.setValue(random.randint(0, MAX_SEED))
        self.seed.setToolTip(self.tr("The random seed. Lock it to repeat a result."))
        settings.addWidget(self.seed)
        self.seed_lock = QToolButton()
        self.seed_lock.setText(self.tr("Lock"))
        self.seed_lock.setCheckable(True)
        self.seed_lock.setToolTip(self.tr("Keep this seed for the next messages"))
        settings.addWidget(self.seed_lock)
        self.seed_random = QToolButton()
        self.seed_random.setText(self.tr("New"))
        self.seed_random.setToolTip(self.tr("Pick a new random seed"))
        self.seed_random.clicked.connect(self.randomise_seed)
        settings.addWidget(self.seed_random)
        settings.addSpacing(10)
        settings.addWidget(QLabel(self.tr("Steps")))
        self.steps = QSpinBox()
        self.steps.setRange(int(STEPS_RANGE.low), int(STEPS_RANGE.high))
        self.steps.setValue(20)
        self.steps.setToolTip(self.tr("Denoising steps: more is slower and finer"))
        settings.addWidget(self.steps)
        settings.addWidget(QLabel(self.tr("Guidance")))
        self.guidance = _decimal_box(
            GUIDANCE_RANGE,
            0.5,
            3.0,
            self.tr("How strongly the decoder follows the image tokens (1 = off)"),
        )
        settings.addWidget(self.guidance)
        settings.addWidget(QLabel(self.tr("Embedding CFG")))
        self.embedding_cfg = _decimal_box(
            EMBEDDING_CFG_RANGE,
            0.25,
            1.0,
            self.tr("Guidance of the language model's image tokens (1 = off)"),
        )
        settings.addWidget(self.embedding_cfg)
        settings.addWidget(QLabel(self.tr("Redraw")))
        self.denoise_strength = _decimal_box(
            DENOISE_STRENGTH_RANGE,
            0.05,
            1.0,
            self.tr(
                "How much of the image being worked on to redraw: 1 draws it anew, "
                "lower keeps more of it (its layout and colours)"
            ),
        )
        settings.addWidget(self.denoise_strength)
        settings.addWidget(QLabel(self.tr("Size")))
        self.size_box = QComboBox()
        self.size_box.setToolTip(self.tr("Output size in pixels (the sizes this model allows)"))
        settings.addWidget(self.size_box)
        self.psr = QCheckBox(self.tr("Rewrite prompt (PSR)"))
        self.psr.setToolTip(
            self.tr("Let the model expand a brief request into a detailed description first")
        )
        settings.addWidget(self.psr)
        settings.addStretch(1)
        layout.addLayout(settings)

        self._task = Task.AUTO
        self.set_task(Task.AUTO)
        self.apply_model_info(None)

    # --- task -----------------------------------------------------------------------------
    @property
    def task(self) -> Task:
        return self._task

    def set_task(self, task: Task) -> None:
        self._task = task
        for t, button in self.task_buttons.items():
            button.setChecked(t is task)
        if (
            task is Task.RESTORE
            and self.chips
            and not any(c.attachment.role is ImageRole.RESTORE for c in self.chips)
        ):
            self.chips[0].set_role(ImageRole.RESTORE)
        if (
            task is Task.STYLE
            and len(self.chips) >= 2
            and not any(c.attachment.role is ImageRole.STYLE for c in self.chips)
        ):
            self.chips[-1].set_role(ImageRole.STYLE)
        self.task_label.setText(
            self.tr("Task: automatic")
            if task is Task.AUTO
            else self.tr("Task: {0}").format(self.task_names.get(task, task.value))
        )

    def reset_task(self) -> None:
        """Back to automatic (a new or another conversation starts without a quick action)."""
        self.set_task(Task.AUTO)

    # --- attachments ----------------------------------------------------------------------
    def attachments(self) -> list[Attachment]:
        return [chip.attachment for chip in self.chips]

    def add_attachment(self, attachment: Attachment) -> None:
        chip = AttachmentChip(attachment)
        chip.removed.connect(self._remove_chip)
        self.attachments_row.insertWidget(self.attachments_row.count() - 1, chip)
        self.chips.append(chip)

    def add_files(self, paths: list[str]) -> list[str]:
        """Attach image files; return (and show) a message for each that could not be used."""
        errors = []
        for path in paths:
            role = ImageRole.RESTORE if self._task is Task.RESTORE else ImageRole.IMAGE
            if self._task is Task.STYLE and self.chips:
                role = ImageRole.STYLE
            try:
                self.add_attachment(Attachment.from_file(path, role))
            except ImageInputError as error:
                errors.append(str(error))
        if errors:
            self.show_notice("\n".join(errors), error=True)
        elif paths:
            self.show_notice("")
        return errors

    def choose_files(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        files, _ = QFileDialog.getOpenFileNames(
            self,
            self.tr("Attach images"),
            str(Path.home()),
            self.tr("Images ({0})").format(patterns),
        )
        if files:
            self.add_files(files)

    def _paste_images(self, images: list[QImage]) -> None:
        for image in images:
            self.add_attachment(
                Attachment.from_image(qimage_to_pil(image), self.tr("pasted image"))
            )

    def _remove_chip(self, chip: AttachmentChip) -> None:
        self.chips.remove(chip)
        chip.deleteLater()

    # --- settings -------------------------------------------------------------------------
    def randomise_seed(self) -> None:
        self.seed.setValue(random.randint(0, MAX_SEED))

    def settings(self) -> GenerationSettings:
        """The settings for the next message (a new seed unless the seed is locked)."""
        if not self.seed_lock.isChecked():
            self.randomise_seed()
        size = self.size_box.currentData()
        return GenerationSettings(
            seed=self.seed.value(),
            steps=self.steps.value(),
            guidance=self.guidance.value(),
            embedding_cfg=self.embedding_cfg.value(),
            denoise_strength=self.denoise_strength.value(),
            size=int(size) if size else None,
            psr=self.psr.isChecked(),
        )

    def apply_model_info(self, info: ModelInfo | None) -> None:
        """Start the controls from the model's defaults; offer only the sizes it allows."""
        self.size_box.clear()
        if info is None:
            self.size_box.addItem(self.tr("model default"), None)
            self.size_box.setEnabled(False)
            return
        for side in info.allowed_sizes or (info.image_size,):
            self.size_box.addItem(f"{side} × {side}", side)
        self.size_box.setCurrentIndex(max(0, self.size_box.findData(info.image_size)))
        self.size_box.setEnabled(self.size_box.count() > 1)
        self.steps.setValue(info.default_steps)
        self.guidance.setValue(info.default_guidance)

    def apply_recipe(self, recipe: Recipe) -> None:
        """Put a saved image's prompt and settings back (the seed locked, to reproduce it)."""
        self.edit.setPlainText(recipe.text)
        s = recipe.settings
        if s.get("seed") is not None:
            self.seed.setValue(int(s["seed"]))
            self.seed_lock.setChecked(True)
        if s.get("steps"):
            self.steps.setValue(int(s["steps"]))
        if s.get("guidance") is not None:
            self.guidance.setValue(float(s["guidance"]))
        if s.get("embedding_cfg") is not None:
            self.embedding_cfg.setValue(float(s["embedding_cfg"]))
        self.denoise_strength.setValue(float(s.get("denoise_strength") or 1.0))
        if s.get("size") is not None:
            index = self.size_box.findData(int(s["size"]))
            if index >= 0:
                self.size_box.setCurrentIndex(index)
        self.psr.setChecked(bool(s.get("psr", False)))
        try:
            self.set_task(Task(recipe.task))
        except ValueError:
            self.set_task(Task.AUTO)

    # --- state ----------------------------------------------------------------------------
    def text(self) -> str:
        return self.edit.toPlainText()

    def clear_message(self) -> None:
        """After sending: empty the box and the attachments; keep task and settings."""
        self.edit.clear()
        for chip in list(self.chips):
            self._remove_chip(chip)
        self.show_notice("")

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)

    def set_can_send(self, can: bool, reason: str = "") -> None:
        self.send_button.setEnabled(can)
        self.send_button.setToolTip(reason or self.tr("Send (Ctrl+Enter)"))

    def show_notice(self, text: str, error: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setProperty("kind", "error" if error else "info")
        self.notice.style().unpolish(self.notice)
        self.notice.style().polish(self.notice)
        self.notice.setVisible(bool(text))


def _decimal_box(allowed: Range, step: float, value: float, tip: str) -> QDoubleSpinBox:
    """A spin box for one decimal generation setting, over the range the engine accepts."""
    box = QDoubleSpinBox()
    box.setRange(allowed.low, allowed.high)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box
