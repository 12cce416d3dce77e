"""The About box: version, what WeGen is, and the licences of what it is built from."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from desktop.job import APP_VERSION

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
    ("Model weights", "see the LICENSE file in the model folder"),
)


class AboutDialog(QDialog):
    def __init__(self, model_name: str = "", parent: QWidget | None = None) -> None:
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
        header.setWordWrap(True)
        header.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(header)
        if model_name:
            layout.addWidget(QLabel(self.tr("Model: {0}").format(model_name)))
        self.licences = QTextBrowser()
        rows = "".join(f"<tr><td>{name}</td><td>{licence}</td></tr>" for name, licence in LICENCES)
        self.licences.setHtml(
            "<h4>"
            + self.tr("Licences")
            + "</h4><table cellspacing=6>"
            + rows
            + "</table>"
            + "<p>"
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
