"""``wegen``: open the app (the bundled model by default).

Starts on machines with no GPU (the engine picks the CPU) and says clearly when there is no
display to open a window on, or which system libraries the window needs (``wegen --doctor``).
The engine (and torch) is imported on the worker thread once the window has painted. Quitting
cancels the running reply, stops the worker, closes the database and ends the process, without
waiting for a model load that cannot be cancelled.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop.session import Session
    from desktop.window import MainWindow
    from engine.api import Engine

EXIT_NO_DISPLAY = 2
EXIT_BAD_DATA = 3
EXIT_MISSING_LIBRARIES = 4
START_ANYWAY_MS = 3000  # load the model this long after start even if the window never painted


#: the application's id: its desktop entry, icon and AppStream metadata are named after it
DESKTOP_ID = "org.wegen.WeGen"


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
    parser.add_argument(
        "--doctor",
        action="store_true",
        help="check what the window needs (system libraries, display, model) and exit",
    )
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)
    # benchmarks/window_start.py: print "first-paint", "model <state>" and quit once loaded
    parser.add_argument("--report-start", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def setup_logging(data_dir: Path) -> None:
    handler = RotatingFileHandler(
        data_dir / "wegen.log", maxBytes=2_000_000, backupCount=2, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: list[str] | None = None, engine_factory: Callable[[], Engine] | None = None) -> int:
    """Run the app; ``engine_factory`` replaces the real engine (tests, benchmarks).

    Run as the program (``argv`` None), it ends the process itself once the window has closed
    and everything is saved; called with ``argv`` (tests), it returns the exit code, unless the
    engine would not stop.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.data_dir:
        os.environ["WEGEN_DATA_DIR"] = args.data_dir
    if args.doctor:
        from desktop.doctor import report

        text, ok = report()
        print(text)
        return 0 if ok else 1
    if not has_display():
        print(
            "wegen: there is no display to open the window on (neither DISPLAY nor "
            "WAYLAND_DISPLAY is set). Start WeGen from a desktop session, use ssh -X, or run it "
            "under a virtual display such as `xvfb-run wegen`. For scripts without a window, use "
            "`wegen-cli`.",
            file=sys.stderr,
        )
        return EXIT_NO_DISPLAY
    from desktop import doctor

    if doctor.would_use_xcb():
        missing = doctor.missing_xcb_libraries()
        if missing:
            print(doctor.missing_libraries_message(missing), file=sys.stderr)
            return EXIT_MISSING_LIBRARIES

    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from desktop.database import Database, DatabaseError
    from desktop.i18n import install_translator, tr
    from desktop.paths import ICONS, data_dir
    from desktop.session import Session
    from desktop.theme import apply_theme, follow_system
    from desktop.window import QUIT_WAIT_MS, MainWindow

    folder = data_dir()
    setup_logging(folder)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("WeGen")
    app.setOrganizationName("WeGen")
    app.setApplicationDisplayName("WeGen")
    # the installers' desktop entry (packaging/linux): Wayland shells match the window to it
    app.setDesktopFileName(DESKTOP_ID)
    if (ICONS / "wegen.svg").is_file():
        app.setWindowIcon(QIcon(str(ICONS / "wegen.svg")))
    translator = install_translator(app)  # noqa: F841 (kept alive for the app's lifetime)

    try:
        db = Database(folder)
    except DatabaseError as error:
        QMessageBox.critical(None, tr("Main", "WeGen cannot start"), str(error))
        return EXIT_BAD_DATA
    session = Session(db) if engine_factory is None else Session(db, engine_factory)
    model = args.model or os.environ.get("WEGEN_MODEL")
    if model:
        session.settings = session.settings.replace(model_dir=str(Path(model).resolve()))
    apply_theme(app, session.settings.theme)
    follow_system(app, lambda: session.settings.theme)

    window = MainWindow(session)
    started = False

    def start_engine() -> None:
        nonlocal started
        if not started:
            started = True
            session.start()

    # the model loads behind the painted window (or after a while if it is not painted at
    # all, e.g. started minimised)
    window.first_painted.connect(start_engine)
    QTimer.singleShot(START_ANYWAY_MS, start_engine)
    if args.report_start:
        report_start(window, session)
    window.show()
    if args.quit_after is not None:
        QTimer.singleShot(args.quit_after, window.close)
    code = app.exec()
    stopped = session.shutdown(0 if window.closed else QUIT_WAIT_MS)  # closing waited already
    QCoreApplication.processEvents()  # what the worker reported last (a saved image) is kept
    db.close()
    if not stopped:
        logging.getLogger(__name__).info("quitting while the engine is busy (a model load)")
    if argv is None or not stopped:
        # Everything is saved and the database closed. End the process here: a model load
        # cannot be interrupted, and the interpreter's own teardown of a loaded torch takes
        # seconds (3 s on 2 cores) for nothing.
        end_process(code)
    return code


def end_process(code: int) -> None:
    """Exit now, without the interpreter's teardown (atexit, module cleanup, thread joins)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def report_start(window: MainWindow, session: Session) -> None:
    """For benchmarks/window_start.py: say on stdout when the window first painted and when the
    model is ready (or failed), then close the window."""
    from desktop.session import ModelState

    def say(text: str) -> None:
        print(text, flush=True)

    window.first_painted.connect(lambda: say("first-paint"))

    def model_changed() -> None:
        if session.model_state in (ModelState.READY, ModelState.FAILED):
            say(f"model {session.model_state}")
            say("closing")
            window.close()

    session.model_changed.connect(model_changed)


if __name__ == "__main__":
    sys.exit(main())
