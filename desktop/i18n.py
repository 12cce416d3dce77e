"""Translation: every user-facing string goes through `tr` (or a widget's ``self.tr``).

Translations are Qt ``.qm`` files in wegen_resources/translations named ``wegen_<locale>.qm``
(``pyside6-lupdate desktop/*.py -ts wegen_resources/translations/wegen_de.ts``, then
``pyside6-lrelease``). The English source strings are used when no file matches.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QLocale, QTranslator

from desktop.paths import TRANSLATIONS


def tr(context: str, text: str, disambiguation: str | None = None, n: int = -1) -> str:
    """Translate ``text`` in ``context`` (for code outside a QObject)."""
    return QCoreApplication.translate(context, text, disambiguation, n)


def install_translator(app: QCoreApplication, locale: QLocale | None = None) -> QTranslator | None:
    """Load ``wegen_<locale>.qm`` for the system locale if there is one; return it (keep it alive)."""
    translator = QTranslator(app)
    if translator.load(locale or QLocale(), "wegen", "_", str(TRANSLATIONS)):
        app.installTranslator(translator)
        return translator
    return None
