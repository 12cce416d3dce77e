"""Light and dark palettes (Fusion style) that follow the system's colour scheme."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from desktop.paths import STYLES

_DARK = {
    QPalette.ColorRole.Window: "#202124",
    QPalette.ColorRole.WindowText: "#e8eaed",
    QPalette.ColorRole.Base: "#17181a",
    QPalette.ColorRole.AlternateBase: "#26282b",
    QPalette.ColorRole.Text: "#e8eaed",
    QPalette.ColorRole.Button: "#2b2d31",
    QPalette.ColorRole.ButtonText: "#e8eaed",
    QPalette.ColorRole.Highlight: "#4c8df6",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.ToolTipBase: "#2b2d31",
    QPalette.ColorRole.ToolTipText: "#e8eaed",
    QPalette.ColorRole.PlaceholderText: "#8a8f98",
    QPalette.ColorRole.Link: "#8ab4f8",
    QPalette.ColorRole.Mid: "#3c4043",
    QPalette.ColorRole.Dark: "#111214",
    QPalette.ColorRole.Light: "#3c4043",
}
_LIGHT = {
    QPalette.ColorRole.Window: "#f3f4f6",
    QPalette.ColorRole.WindowText: "#1f2328",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#f6f8fa",
    QPalette.ColorRole.Text: "#1f2328",
    QPalette.ColorRole.Button: "#ffffff",
    QPalette.ColorRole.ButtonText: "#1f2328",
    QPalette.ColorRole.Highlight: "#2f6fde",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.ToolTipBase: "#ffffff",
    QPalette.ColorRole.ToolTipText: "#1f2328",
    QPalette.ColorRole.PlaceholderText: "#6e7781",
    QPalette.ColorRole.Link: "#0969da",
    QPalette.ColorRole.Mid: "#d0d7de",
    QPalette.ColorRole.Dark: "#afb8c1",
    QPalette.ColorRole.Light: "#ffffff",
}


def system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def is_dark(theme: str) -> bool:
    """``theme`` is "system", "light" or "dark"."""
    return system_is_dark() if theme == "system" else theme == "dark"


def apply_theme(app: QApplication, theme: str = "system") -> bool:
    """Apply the palette and style sheet for ``theme``; return whether it is dark."""
    dark = is_dark(theme)
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in (_DARK if dark else _LIGHT).items():
        palette.setColor(role, QColor(colour))
    disabled = QColor("#6b6f76" if dark else "#a0a7b0")
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    app.setPalette(palette)
    sheet = STYLES / ("dark.qss" if dark else "light.qss")
    common = STYLES / "common.qss"
    app.setStyleSheet(
        (common.read_text(encoding="utf-8") if common.is_file() else "")
        + (sheet.read_text(encoding="utf-8") if sheet.is_file() else "")
    )
    app.setProperty("wegen_dark", dark)
    return dark


def follow_system(app: QApplication, theme_of: object) -> None:
    """Re-apply the theme when the system scheme changes (``theme_of()`` is the setting)."""

    def changed(_scheme: Qt.ColorScheme) -> None:
        theme = theme_of() if callable(theme_of) else "system"
        if theme == "system":
            apply_theme(app, theme)

    QGuiApplication.styleHints().colorSchemeChanged.connect(changed)
