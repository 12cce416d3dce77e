"""``wegen``: open the app (the bundled model by default).

Starts on machines with no GPU (the engine picks the CPU) and says clearly when there is no
display to open a window on. The engine (and torch) is imported on the worker thread after the
window is shown.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

EXIT_NO_DISPLAY = 2
EXIT_BAD_DATA = 3


def has_display() -> bool:
    """Whether Qt can open a window here (Linux/BSD need X11 or Wayland, or a QPA override)."""
    if sys.platform in ("win32", "darwin"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wegen", description="WeGen: create images by chatting.")
    parser.add_argument(
        "--model",
        help="model folder to use this time (default: the one chosen "
        "in Settings, else the bundled wegen-tiny; also $WEGEN_MODEL)",
    )
    parser.add_argument(
        "--data-dir",
        help="where conversations and images are kept (default: "
        "the platform's app-data folder; also $WEGEN_DATA_DIR)",
    )
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def setup_logging(data_dir: Path) -> None:
    handler = RotatingFileHandler(
        data_dir / "wegen.log", maxBytes=2_000_000, backupCount=2, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.data_dir:
        os.environ["WEGEN_DATA_DIR"] = args.data_dir
    if not has_display():
        print(
            "wegen: there is no display to open the window on (neither DISPLAY nor "
            "WAYLAND_DISPLAY is set). Start WeGen from a desktop session, use ssh -X, or run it "
            "under a virtual display such as `xvfb-run wegen`. For scripts without a window, use "
            "`wegen-cli`.",
            file=sys.stderr,
        )
        return EXIT_NO_DISPLAY

    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from desktop.database import Database, DatabaseError
    from desktop.i18n import install_translator, tr
    from desktop.paths import ICONS, data_dir
    from desktop.session import Session
    from desktop.theme import apply_theme, follow_system
    from desktop.window import MainWindow

    folder = data_dir()
    setup_logging(folder)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("WeGen")
    app.setOrganizationName("WeGen")
    app.setApplicationDisplayName("WeGen")
    if (ICONS / "wegen.svg").is_file():
        app.setWindowIcon(QIcon(str(ICONS / "wegen.svg")))
    translator = install_translator(app)  # noqa: F841 (kept alive for the app's lifetime)

    try:
        db = Database(folder)
    except DatabaseError as error:
        QMessageBox.critical(None, tr("Main", "WeGen cannot start"), str(error))
        return EXIT_BAD_DATA
    session = Session(db)
    model = args.model or os.environ.get("WEGEN_MODEL")
    if model:
        session.settings = session.settings.replace(model_dir=str(Path(model).resolve()))
    apply_theme(app, session.settings.theme)
    follow_system(app, lambda: session.settings.theme)

    window = MainWindow(session)
    window.show()
    QTimer.singleShot(0, session.start)  # load the model once the window is on screen
    if args.quit_after is not None:
        QTimer.singleShot(args.quit_after, window.close)
    code = app.exec()
    session.shutdown()
    db.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
