"""Settings: the model folder (bundled, official WeGen, converted) with verification that names
the missing or wrong file; device, precision, backend and memory mode; the theme."""

from __future__ import annotations

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop.app_settings import DEVICES, MEMORY_MODES, PRECISIONS, THEMES, AppSettings
from desktop.paths import BUNDLED_MODEL
from desktop.session import Session
from engine.api import usable_backends


class SettingsDialog(QDialog):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setWindowTitle(self.tr("Settings"))
        self.setMinimumWidth(560)
        settings = session.settings
        layout = QVBoxLayout(self)

        model_box = QGroupBox(self.tr("Model"))
        model_layout = QVBoxLayout(model_box)
        self.bundled = QRadioButton(self.tr("Bundled small model (wegen-tiny)"))
        self.other = QRadioButton(
            self.tr("Another model folder (official WeGen checkpoint or a converted folder)")
        )
        group = QButtonGroup(self)
        group.addButton(self.bundled)
        group.addButton(self.other)
        model_layout.addWidget(self.bundled)
        model_layout.addWidget(self.other)
        row = QHBoxLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText(self.tr("Folder with config.json, or wegen_mllm_ckpt"))
        row.addWidget(self.folder, 1)
        self.browse = QPushButton(self.tr("Browse…"))
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.browse)
        self.verify_button = QPushButton(self.tr("Verify"))
        self.verify_button.clicked.connect(self.verify)
        row.addWidget(self.verify_button)
        model_layout.addLayout(row)
        self.verify_result = QLabel()
        self.verify_result.setWordWrap(True)
        self.verify_result.setObjectName("banner")
        self.verify_result.setVisible(False)
        model_layout.addWidget(self.verify_result)
        layout.addWidget(model_box)

        is_bundled = settings.model_dir == str(BUNDLED_MODEL)
        self.bundled.setChecked(is_bundled)
        self.other.setChecked(not is_bundled)
        self.folder.setText("" if is_bundled else settings.model_dir)
        self.bundled.toggled.connect(self._update_enabled)
        self._update_enabled()

        runtime = QGroupBox(self.tr("Runtime"))
        form = QFormLayout(runtime)
        self.device = self._combo(
            DEVICES,
            settings.device,
            {
                "auto": self.tr("Automatic (GPU if there is one)"),
                "cpu": self.tr("CPU"),
                "cuda": self.tr("NVIDIA GPU (CUDA)"),
                "npu": self.tr("Ascend NPU"),
                "mps": self.tr("Apple GPU (MPS)"),
                "tensorrt": self.tr("NVIDIA TensorRT (with ONNX Runtime)"),
            },
        )
        form.addRow(self.tr("Device"), self.device)
        self.precision = self._combo(
            PRECISIONS,
            settings.precision,
            {
                "auto": self.tr("Automatic"),
                "fp32": self.tr("32-bit float"),
                "fp16": self.tr("16-bit float"),
                "bf16": self.tr("bfloat16"),
            },
        )
        form.addRow(self.tr("Precision"), self.precision)
        self.backend = self._combo(
            usable_backends(),  # an installed app cannot compile
            settings.backend,
            {
                "auto": self.tr("Automatic (compiled on an NVIDIA GPU, else PyTorch)"),
                "eager": self.tr("PyTorch"),
                "compiled": self.tr("PyTorch, compiled (faster after a slow first run)"),
                "onnx": self.tr("ONNX Runtime (the model is exported once, then reused)"),
            },
        )
        form.addRow(self.tr("Backend"), self.backend)
        self.memory = self._combo(
            MEMORY_MODES,
            settings.memory,
            {
                "auto": self.tr("Automatic (what fits the device)"),
                "normal": self.tr("Normal (everything on the device)"),
                "low": self.tr("Low memory (each part on the device only while it runs)"),
                "int8": self.tr("Int8 (low memory, language model in 8 bits)"),
            },
        )
        form.addRow(self.tr("Memory"), self.memory)
        self.memory_advice = QLabel(self._memory_advice_text())
        self.memory_advice.setWordWrap(True)
        self.memory_advice.setObjectName("hint")
        form.addRow("", self.memory_advice)
        layout.addWidget(runtime)

        look = QGroupBox(self.tr("Appearance"))
        look_form = QFormLayout(look)
        self.theme = self._combo(
            THEMES,
            settings.theme,
            {
                "system": self.tr("Follow the system"),
                "light": self.tr("Light"),
                "dark": self.tr("Dark"),
            },
        )
        look_form.addRow(self.tr("Theme"), self.theme)
        layout.addWidget(look)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        session.folder_verified.connect(self._verified)

    def _memory_advice_text(self) -> str:
        """What the loaded model needs per memory mode on its device, and what auto picks: the
        engine's plan, computed at load on the worker thread (no torch here)."""
        info = self.session.model_info
        if info is None:
            return self.tr("No model is loaded: what each mode needs is shown once one is.")
        advice = info.memory_advice
        if advice is None or not advice.needs:
            return self.tr("{0} on {1}: memory modes do not apply to this backend.").format(
                info.name, info.device
            )
        lines = [self.tr("{0} on {1}:").format(info.name, advice.device), *advice.lines()]
        lines.append(self.tr("In effect: {0}.").format(advice.chosen))
        return "\n".join(lines)

    def _combo(self, values: tuple[str, ...], current: str, labels: dict[str, str]) -> QComboBox:
        box = QComboBox()
        for value in values:
            box.addItem(labels.get(value, value), value)
        box.setCurrentIndex(max(0, box.findData(current)))
        return box

    def _update_enabled(self) -> None:
        other = self.other.isChecked()
        for widget in (self.folder, self.browse):
            widget.setEnabled(other)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, self.tr("Choose a model folder"), self.folder.text()
        )
        if folder:
            self.folder.setText(folder)
            self.verify()

    def model_dir(self) -> str:
        return str(BUNDLED_MODEL) if self.bundled.isChecked() else self.folder.text().strip()

    def verify(self) -> None:
        self.verify_result.setText(self.tr("Checking {0}…").format(self.model_dir()))
        self._show_result("info")
        self.session.verify_folder(self.model_dir())

    def _verified(self, path: str, problems: list[str]) -> None:
        if path != self.model_dir():
            return
        if problems:
            self.verify_result.setText(
                self.tr("This folder cannot be used:") + "\n• " + "\n• ".join(problems)
            )
            self._show_result("error")
        else:
            self.verify_result.setText(self.tr("✓ The model folder is complete."))
            self._show_result("info")

    def _show_result(self, kind: str) -> None:
        self.verify_result.setProperty("kind", kind)
        self.verify_result.style().unpolish(self.verify_result)
        self.verify_result.style().polish(self.verify_result)
        self.verify_result.setVisible(True)
        self._fit_height()

    def _fit_height(self) -> None:
        """Make room for the whole verification message. A word-wrapped label's height depends
        on its width, which a dialog's minimum size does not follow: without this the box kept
        the height of its first text and cut the first and last lines of a longer one."""
        widget: QWidget | None = self.verify_result
        while widget is not None:  # each layout up to here caches the label's old height
            widget.updateGeometry()
            inner = widget.layout()
            if inner is not None:
                inner.invalidate()
            widget = None if widget is self else widget.parentWidget()
        layout = self.layout()
        assert layout is not None
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > 0:
            self.setMinimumHeight(needed)
            if self.height() < needed:
                self.resize(self.width(), needed)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()  # narrower: the message wraps into more lines

    def chosen(self) -> AppSettings:
        return self.session.settings.replace(
            model_dir=self.model_dir(),
            device=self.device.currentData(),
            precision=self.precision.currentData(),
            backend=self.backend.currentData(),
            memory=self.memory.currentData(),
            theme=self.theme.currentData(),
        )
