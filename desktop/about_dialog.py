"""The About box: version and build, what WeGen is, and the licences of what it is built from."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from desktop.job import APP_VERSION
from desktop.paths import BUNDLED_MODEL
from engine.api import build

#: (component, licence) for what the application ships.
LICENCES: tuple[tuple[str, str], ...] = (
    ("WeGen desktop and engine", "Apache License 2.0"),
    ("Qt 6 / PySide6", "GNU LGPL v3"),
    ("PyTorch", "BSD 3-Clause"),
    (
        "Hugging Face transformers, diffusers, accelerate, safetensors, tokenizers",
        "Apache License 2.0",
    ),
    ("timm", "Apache License 2.0"),
    ("Pillow", "MIT-CMU (HPND)"),
    ("NumPy", "BSD 3-Clause"),
    ("tqdm", "MPL 2.0 and MIT"),
)
APACHE_URL = "https://www.apache.org/licenses/LICENSE-2.0"


class AboutDialog(QDialog):
    def __init__(
        self, model_name: str = "", parent: QWidget | None = None, model_dir: str = ""
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("About WeGen"))
        self.setMinimumSize(520, 420)
        layout = QVBoxLayout(self)
        header = QLabel(
            self.tr(
                "<h2>WeGen {0}</h2><p>Create, refine, restore and restyle images by chatting, "
                "on your own computer. Nothing leaves this machine.</p>"
            ).format(APP_VERSION)
        )
        header.setObjectName("aboutHeader")
        header.setWordWrap(True)
        header.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(header)
        self.build_line = QLabel(self.tr("Build: {0}").format(build()))  # selectable: bug reports
        self.build_line.setObjectName("aboutBuild")
        self.build_line.setTextFormat(Qt.TextFormat.PlainText)
        self.build_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.build_line)
        if model_name:
            layout.addWidget(QLabel(self.tr("Model: {0}").format(model_name)))
        self.licences = QTextBrowser()
        self.licences.setOpenExternalLinks(True)
        rows = "".join(f"<tr><td>{name}</td><td>{licence}</td></tr>" for name, licence in LICENCES)
        self.licences.setHtml(
            "<h4>"
            + self.tr("Licences")
            + "</h4><p>"
            + self.tr(
                "WeGen is free software under the Apache License 2.0 (the text: "
                '<a href="{0}">{0}</a>).'
            ).format(APACHE_URL)
            + "</p><table cellspacing=6>"
            + rows
            + "</table><p>"
            + _model_licence(self, model_dir)
            + "</p><p>"
            + self.tr(
                "Images made with WeGen carry metadata that marks them as "
                "AI-generated (IPTC digital source type)."
            )
            + "</p>"
        )
        layout.addWidget(self.licences, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)


def _model_licence(widget: QWidget, model_dir: str) -> str:
    """Where a model's licence is said: the bundled model's card (a link to the file where this
    copy of WeGen keeps it: a checkout, site-packages or a frozen bundle), or the folder's own."""
    bundled = BUNDLED_MODEL / "README.md"
    url = QUrl.fromLocalFile(str(bundled)).toString()
    link = f'<a href="{html.escape(url)}">{html.escape(str(bundled))}</a>'
    text = widget.tr(
        "The bundled model, wegen-tiny, was trained by the WeGen project on generated shapes "
        "and ships with it under the same licence; its model card is {0}."
    ).format(link)
    folder = Path(model_dir) if model_dir else None
    if folder is not None and folder.resolve() != BUNDLED_MODEL.resolve():
        card = next(
            (folder / n for n in ("LICENSE", "LICENSE.txt", "README.md") if (folder / n).is_file()),
            None,
        )
        text += " " + (
            widget.tr("The model in use says its licence in {0}.").format(html.escape(str(card)))
            if card is not None
            else widget.tr(
                "The model in use ({0}) has no licence file: ask whoever gave it to you."
            ).format(html.escape(str(folder)))
        )
    return text
