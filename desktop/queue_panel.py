"""The queue: the running request and those waiting, which can be moved or cancelled. Shown
only while something waits (the running reply shows its progress in the chat)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.session import Session


class QueuePanel(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 8)
        layout.setSpacing(4)
        header = QHBoxLayout()
        self.title = QLabel()
        header.addWidget(self.title)
        header.addStretch(1)
        self.up_button = self._tool("▲", self.tr("Run sooner"), lambda: self._move(-1))
        self.down_button = self._tool("▼", self.tr("Run later"), lambda: self._move(1))
        self.cancel_button = self._tool("✕", self.tr("Cancel this request"), self._cancel)
        for button in (self.up_button, self.down_button, self.cancel_button):
            header.addWidget(button)
        layout.addLayout(header)
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        layout.addWidget(self.list)
        session.queue_changed.connect(self.refresh)
        self.refresh()

    def _tool(self, text: str, tip: str, slot: object) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def refresh(self) -> None:
        selected = self.selected_request()
        self.list.clear()
        running = self.session.running_job()
        if running is not None:
            item = QListWidgetItem(self.tr("▶ {0}").format(running.title))
            item.setData(Qt.ItemDataRole.UserRole, running.request_id)
            item.setData(Qt.ItemDataRole.UserRole + 1, True)
            self.list.addItem(item)
        for job in self.session.pending_jobs():
            item = QListWidgetItem(job.title)
            item.setData(Qt.ItemDataRole.UserRole, job.request_id)
            self.list.addItem(item)
            if job.request_id == selected:
                self.list.setCurrentItem(item)
        waiting = len(self.session.pending_jobs())
        self.title.setText(
            self.tr("Queue: {0} waiting").format(waiting)
            if waiting or running
            else self.tr("Queue: empty")
        )
        self.setVisible(waiting > 0)  # the running reply shows its own progress in the chat
        self._update_buttons()

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def selected_request(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _update_buttons(self) -> None:
        item = self.list.currentItem()
        waiting = item is not None and not item.data(Qt.ItemDataRole.UserRole + 1)
        self.up_button.setEnabled(waiting)
        self.down_button.setEnabled(waiting)
        self.cancel_button.setEnabled(item is not None)

    def _move(self, offset: int) -> None:
        request_id = self.selected_request()
        if request_id:
            self.session.move_job(request_id, offset)

    def _cancel(self) -> None:
        request_id = self.selected_request()
        if request_id:
            self.session.cancel(request_id)
