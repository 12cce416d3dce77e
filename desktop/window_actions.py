"""The main window's commands: the menus and their shortcuts, the canvas toolbar, pasting, the
export dialogs and the small dialogs (keyboard shortcuts, About).

`WindowActions` is the base class of `desktop.window.MainWindow`, which builds the panels these
commands act on; the names declared below are what they need from it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolButton,
)

from desktop.about_dialog import AboutDialog
from desktop.canvas import ImageCanvas
from desktop.composer import Composer
from desktop.conversation_list import ConversationList
from desktop.database import ImageRecord
from desktop.export import export_conversation, export_image, suggested_file_name
from desktop.session import Session
from engine.api import OutputPathError


class WindowActions(QMainWindow):
    """The commands of the main window (see the module docs)."""

    # built by MainWindow
    session: Session
    canvas: ImageCanvas
    composer: Composer
    conversations: ConversationList
    current_image: ImageRecord | None
    last_export_folder: Path | None  # where the export dialogs start next time
    # built here
    fit_button: QToolButton
    actual_button: QToolButton
    zoom_label: QLabel
    compare_button: QToolButton
    export_button: QToolButton
    cancel_action: QAction

    # the window's own commands, which the menus offer
    send: Callable[[], None]
    cancel: Callable[[], None]
    open_image_dialog: Callable[[], None]
    open_settings: Callable[[], object]

    def _canvas_toolbar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 4)
        bar.setSpacing(2)

        def tool(text: str, tip: str, slot: object, checkable: bool = False) -> QToolButton:
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            button.setCheckable(checkable)
            button.clicked.connect(slot)
            bar.addWidget(button)
            return button

        self.fit_button = tool(
            self.tr("Fit"), self.tr("Fit the image to the view (Ctrl+0)"), self.canvas.fit
        )
        self.actual_button = tool(
            self.tr("1:1"), self.tr("Actual pixels (Ctrl+1)"), self.canvas.actual_size
        )
        tool("−", self.tr("Zoom out (Ctrl+-)"), self.canvas.zoom_out)
        tool("+", self.tr("Zoom in (Ctrl++)"), self.canvas.zoom_in)
        self.zoom_label = QLabel("")
        self.zoom_label.setMinimumWidth(48)
        bar.addWidget(self.zoom_label)
        self.compare_button = tool(
            self.tr("Before / after"),
            self.tr("Compare with the image it was made from (B)"),
            self.canvas.set_compare,
            checkable=True,
        )
        self.compare_button.setEnabled(False)
        bar.addStretch(1)
        self.export_button = tool(
            self.tr("Export image…"), self.tr("Save this image (Ctrl+E)"), self.export_current_image
        )
        self.export_button.setEnabled(False)
        return bar

    def _build_menus(self) -> None:
        menu = self.menuBar()

        def action(
            parent_menu: object,
            text: str,
            slot: object,
            shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        ) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            parent_menu.addAction(act)  # type: ignore[attr-defined]
            return act

        file = menu.addMenu(self.tr("&File"))
        action(
            file,
            self.tr("&New conversation"),
            self.session.new_conversation,
            QKeySequence.StandardKey.New,
        )
        action(file, self.tr("&Open image…"), self.open_image_dialog, QKeySequence.StandardKey.Open)
        action(file, self.tr("&Attach images…"), self.composer.choose_files, "Ctrl+Shift+O")
        action(file, self.tr("Paste image"), self.paste_image, "Ctrl+Shift+V")
        file.addSeparator()
        action(file, self.tr("&Export image…"), self.export_current_image, "Ctrl+E")
        action(
            file, self.tr("Export &conversation…"), self.export_current_conversation, "Ctrl+Shift+E"
        )
        file.addSeparator()
        action(
            file, self.tr("&Settings…"), self.open_settings, QKeySequence.StandardKey.Preferences
        )
        action(file, self.tr("Settings…"), self.open_settings, "Ctrl+,").setVisible(False)
        action(file, self.tr("&Quit"), self.close, QKeySequence.StandardKey.Quit)

        edit = menu.addMenu(self.tr("&Conversation"))
        action(edit, self.tr("&Rename…"), self.conversations.rename_current, "F2")
        action(edit, self.tr("&Delete…"), self.conversations.delete_current)
        action(edit, self.tr("&Search"), self._focus_search, QKeySequence.StandardKey.Find)

        view = menu.addMenu(self.tr("&View"))
        action(view, self.tr("&Fit"), self.canvas.fit, "Ctrl+0")
        action(view, self.tr("&Actual size"), self.canvas.actual_size, "Ctrl+1")
        action(view, self.tr("Zoom &in"), self.canvas.zoom_in, QKeySequence.StandardKey.ZoomIn)
        action(view, self.tr("Zoom &out"), self.canvas.zoom_out, QKeySequence.StandardKey.ZoomOut)
        action(view, self.tr("&Before / after"), self.compare_button.click, "B")

        run = menu.addMenu(self.tr("&Generate"))
        action(run, self.tr("&Send"), self.send, "Ctrl+Return")
        self.cancel_action = action(run, self.tr("&Cancel"), self.cancel, "Esc")
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

        help_menu = menu.addMenu(self.tr("&Help"))
        action(help_menu, self.tr("&Keyboard shortcuts"), self.show_shortcuts)
        action(help_menu, self.tr("&About WeGen"), self.show_about)
        # Ctrl+Enter from anywhere in the window (the message box handles it itself too)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self.send)

    def paste_image(self) -> None:
        self.composer.edit.insertFromMimeData(QGuiApplication.clipboard().mimeData())

    def export_current_image(self) -> None:
        if self.current_image is None:
            return
        record = self.current_image
        source = self.session.image_path(record)
        prompt = str(record.metadata.get("prompt") or "") or Path(record.source).stem
        name = suggested_file_name(prompt, record.position, source.suffix or ".png")
        target, _ = QFileDialog.getSaveFileName(
            self,
            self.tr("Export image"),
            str(self.export_folder() / name),
            self.tr("PNG image (*.png)"),
        )
        if target:
            self._export(target, lambda path: export_image(source, path))

    def _conversation_title(self) -> str:
        cid = self.session.conversation_id
        record = self.session.db.conversation(cid) if cid is not None else None
        return record.title if record is not None else "conversation"

    def export_folder(self) -> Path:
        """Where the export dialogs start: the last folder exported to, else the Pictures
        folder, else home."""
        if self.last_export_folder is not None and self.last_export_folder.is_dir():
            return self.last_export_folder
        pictures = Path.home() / "Pictures"
        return pictures if pictures.is_dir() else Path.home()

    def export_current_conversation(self) -> None:
        conversation_id = self.session.conversation_id
        if conversation_id is None:
            self.statusBar().showMessage(self.tr("Open a conversation to export it."), 4000)
            return
        target, _ = QFileDialog.getSaveFileName(
            self,
            self.tr("Export conversation"),
            str(self.export_folder() / suggested_file_name(self._conversation_title(), 0, ".zip")),
            self.tr("Zip archive (*.zip)"),
        )
        if target:
            self._export(
                target, lambda path: export_conversation(self.session.db, conversation_id, path)
            )

    def _export(self, target: str, write: Callable[[Path], object]) -> None:
        """Run an export to the file the person chose; say where it went, or why it failed."""
        self.last_export_folder = Path(target).parent
        try:
            write(Path(target))
        except (OSError, OutputPathError) as error:
            QMessageBox.warning(self, self.tr("Export failed"), str(error))
        else:
            self.statusBar().showMessage(self.tr("Saved {0}").format(target), 5000)

    def show_about(self) -> None:
        info = self.session.model_info
        AboutDialog(info.name if info else "", self, self.session.settings.model_dir).open()

    def show_shortcuts(self) -> None:
        rows = [
            ("Ctrl+Enter", self.tr("Send")),
            ("Esc", self.tr("Cancel the running reply")),
            ("Ctrl+N", self.tr("New conversation")),
            ("Ctrl+F", self.tr("Search")),
            ("F2", self.tr("Rename conversation")),
            ("Ctrl+O", self.tr("Open image")),
            ("Ctrl+Shift+O", self.tr("Attach images")),
            ("Ctrl+V / Ctrl+Shift+V", self.tr("Paste an image")),
            ("Ctrl+E", self.tr("Export image")),
            ("Ctrl+Shift+E", self.tr("Export conversation")),
            ("Ctrl+0 / Ctrl+1", self.tr("Fit / actual size")),
            ("Ctrl++ / Ctrl+-", self.tr("Zoom")),
            ("B", self.tr("Before / after")),
        ]
        html = (
            "<table>"
            + "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
            + "</table>"
        )
        box = QMessageBox(self)
        box.setWindowTitle(self.tr("Keyboard shortcuts"))
        box.setText(html)
        box.open()

    def _focus_search(self) -> None:
        self.conversations.search.setFocus()
        self.conversations.search.selectAll()
