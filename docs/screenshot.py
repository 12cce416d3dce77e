"""The README's screenshot: the real app, the bundled model, two real turns.

    xvfb-run -s "-screen 0 1400x900x24" python docs/screenshot.py          # a real X window
    QT_QPA_PLATFORM=offscreen python docs/screenshot.py                     # no X server needed

Opens the main window on a throwaway data folder, loads the bundled wegen-tiny on the CPU, asks
for a scene, then for an edit of it, and saves the window to ``docs/images/wegen-window.png``
(``--out`` to change). Nothing is staged: what the picture shows is what the model drew.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what a new user types first (a brief, drawn as a plain scene), then an edit of it
REQUESTS = (
    "a green triangle and a red circle",
    "make the circle blue, keep the rest",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "wegen-window.png")
    ap.add_argument("--size", default="1280x800", help="window size, WxH")
    ap.add_argument("--theme", choices=("light", "dark"), default="light")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    sys.path.insert(0, str(ROOT))

    from PySide6.QtWidgets import QApplication

    from desktop.app_settings import AppSettings
    from desktop.database import Database
    from desktop.session import ModelState, Session
    from desktop.theme import apply_theme
    from desktop.window import MainWindow

    app = QApplication.instance() or QApplication(["wegen"])
    assert isinstance(app, QApplication)
    apply_theme(app, args.theme)
    with tempfile.TemporaryDirectory() as data:
        db = Database(Path(data))
        AppSettings(device="cpu", theme=args.theme).save(db)
        session = Session(db)
        window = MainWindow(session)
        window.resize(width, height)
        window.show()
        session.start()

        def wait(done: object, what: str, seconds: float = 300) -> None:
            deadline = time.monotonic() + seconds
            while not done():  # type: ignore[operator]
                if time.monotonic() > deadline:
                    raise SystemExit(f"screenshot: gave up waiting for {what}")
                app.processEvents()
                time.sleep(0.01)

        wait(lambda: session.model_state not in (ModelState.NONE, ModelState.LOADING), "the model")
        if session.model_state != ModelState.READY:
            raise SystemExit(f"screenshot: the model did not load: {session.model_message}")
        window.composer.seed.setValue(args.seed)
        window.composer.seed_lock.setChecked(True)
        for text in REQUESTS:
            window.composer.edit.setPlainText(text)
            window.send()
            wait(lambda: not session.is_busy(), f"the reply to {text!r}")
        for _ in range(20):  # let the last layout and paint settle
            app.processEvents()
            time.sleep(0.02)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(args.out)):
            raise SystemExit(f"screenshot: could not write {args.out}")
        print(f"wrote {args.out}")
        session.shutdown()
        window.close()
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
