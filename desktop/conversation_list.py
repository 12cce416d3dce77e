"""The conversation list: new, rename, delete and search by text."""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.database import ConversationRecord
from desktop.session import Session


class ConversationList(QWidget):
    opened = Signal(int)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        top = QHBoxLayout()
        self.new_button = QPushButton(self.tr("New conversation"))
        self.new_button.setToolTip(self.tr("Start a new conversation (Ctrl+N)"))
        self.new_button.clicked.connect(session.new_conversation)
        top.addWidget(self.new_button)
        layout.addLayout(top)
        self.search = QLineEdit()
        self.search.setObjectName("searchBox")
        self.search.setPlaceholderText(self.tr("Search conversations (Ctrl+F)"))
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setObjectName("conversationList")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.itemActivated.connect(self._activate)
        self.list.itemClicked.connect(self._activate)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        layout.addWidget(self.list, 1)
        self.empty_hint = QListWidgetItem(self.tr("No conversations yet"))
        session.conversations_changed.connect(self.refresh)
        session.conversation_opened.connect(self._select)
        self.refresh()

    def refresh(self) -> None:
        current = self.session.conversation_id
        self.list.blockSignals(True)
        self.list.clear()
        records = self.session.conversations(self.search.text())
        for record in records:
            item = QListWidgetItem(record.title)
            item.setData(Qt.ItemDataRole.UserRole, record.id)
            item.setToolTip(f"{record.title}\n{_when(record)}")
            self.list.addItem(item)
            if record.id == current:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        if not records:
            text = (
                self.tr("No conversation matches “{0}”").format(self.search.text())
                if self.search.text()
                else self.tr("No conversations yet")
            )
            item = QListWidgetItem(text)
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def ids(self) -> list[int]:
        return [
            self.list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.list.count())
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) is not None
        ]

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _activate(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(Qt.ItemDataRole.UserRole)
        if conversation_id is not None:
            self.session.open_conversation(conversation_id)

    def _select(self, conversation_id: int) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                self.list.setCurrentItem(item)
                return
        self.list.clearSelection()

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(Qt.ItemDataRole.UserRole) is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction(self.tr("Rename…"), self.rename_current)
        menu.addAction(self.tr("Delete…"), self.delete_current)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def rename_current(self) -> None:
        conversation_id = self.current_id()
        record = self.session.db.conversation(conversation_id) if conversation_id else None
        if record is None:
            return
        title, ok = QInputDialog.getText(
            self, self.tr("Rename conversation"), self.tr("Title:"), text=record.title
        )
        if ok:
            self.session.rename_conversation(record.id, title)

    def delete_current(self, confirm: bool = True) -> None:
        conversation_id = self.current_id()
        record = self.session.db.conversation(conversation_id) if conversation_id else None
        if record is None:
            return
        if confirm:
            answer = QMessageBox.question(
                self,
                self.tr("Delete conversation"),
                self.tr("Delete “{0}” and all its images? This cannot be undone.").format(
                    record.title
                ),
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.session.delete_conversation(record.id)


def _when(record: ConversationRecord) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(record.updated))
