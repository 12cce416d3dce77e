"""How long the window's event loop stalls while a chat turn generates, against the same window
left idle for as long, in the same run.

A 5 ms GUI timer ticks throughout; a gap between ticks is time the window could not repaint or
take input. The fake engine (the default) sends every event kind fast: streamed words, token
progress, a denoising preview every step and the saved image, so this measures what the GUI
thread does with them. ``--model`` runs a real model folder instead (the bundled wegen-tiny with
``--model bundled``), where the worker thread also competes with the GUI for the CPU and the GIL.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_stall.py
    QT_QPA_PLATFORM=offscreen python benchmarks/gui_stall.py --model bundled --turns 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtWidgets import QApplication

from desktop.app_settings import AppSettings
from desktop.database import Database
from desktop.fake_engine import FakeEngine
from desktop.model_folder import verify_model_folder
from desktop.paths import DATA_DIR_ENV
from desktop.session import ModelState, Session
from desktop.stall_meter import StallMeter
from desktop.window import MainWindow
from engine.api import GenerationSettings
from engine.bundled import BUNDLED_DIR

PROMPT = "a large red striped circle at the top left and a small blue star in the centre"


def spin_until(done: Callable[[], bool], timeout_s: float) -> None:
    end = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > end:
            raise SystemExit("timed out waiting for the session")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.001)


def spin_for(seconds: float) -> None:
    end = time.perf_counter() + seconds
    spin_until(lambda: time.perf_counter() >= end, seconds + 5)


def summary(meter: StallMeter) -> dict[str, float]:
    return {
        "worst": meter.worst * 1000,
        "p99": meter.percentile(99) * 1000,
        "p50": meter.percentile(50) * 1000,
        "ticks": meter.ticks,
    }


def measure(window: MainWindow, turns: int, settings: GenerationSettings) -> tuple[dict, dict]:
    """(idle, generating) gap summaries, in ms; idle lasts as long as the turns did. Each turn
    is sent when the one before has finished, from the event loop, as a user would."""
    session = window.session
    meter = StallMeter()
    meter.start()
    start = time.perf_counter()
    for i in range(turns):
        session.send(f"{PROMPT} ({i + 1})", [], settings)
        spin_until(lambda: not session.is_busy(), 600)
    busy_s = time.perf_counter() - start
    meter.stop()
    generating = summary(meter) | {"seconds": busy_s}
    meter.start()
    spin_for(busy_s)
    meter.stop()
    return summary(meter) | {"seconds": busy_s}, generating


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", help="a model folder, or 'bundled' (default: the fake engine)")
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--size", type=int, default=512, help="fake engine image size")
    ap.add_argument("--steps", type=int, default=30, help="denoising steps per image")
    args = ap.parse_args()

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[DATA_DIR_ENV] = tmp
        db = Database(Path(tmp))
        if args.model:
            folder = str(BUNDLED_DIR) if args.model == "bundled" else args.model
            AppSettings(model_dir=folder, device="cpu").save(db)
            session = Session(db)
            label = f"real engine, {Path(folder).name}"
        else:
            folder = Path(tmp) / "model"
            folder.mkdir()
            for name, content in (("config.json", b"{}"), ("tokenizer.json", b"{}")):
                (folder / name).write_bytes(content)
            (folder / "model.safetensors").write_bytes(b"")
            engine = FakeEngine(step_delay=0.005, steps=args.steps, image_size=args.size)
            AppSettings(model_dir=str(folder)).save(db)
            session = Session(
                db,
                engine_factory=lambda: engine,
                verifier=lambda p: verify_model_folder(p, use_engine=False),
            )
            label = f"fake engine, {args.size} px"
        window = MainWindow(session)
        window.resize(1360, 860)
        window.show()
        session.start()
        spin_until(lambda: session.model_state not in (ModelState.NONE, ModelState.LOADING), 300)
        if session.model_state != ModelState.READY:
            raise SystemExit(f"the model did not load: {session.model_message}")
        settings = GenerationSettings(seed=1, steps=args.steps)
        measure(window, 1, settings)  # warm-up: first paints, first turn's imports
        idle, busy = measure(window, args.turns, settings)
        print(f"{label}: {args.turns} turns, {args.steps} steps, previews every step")
        print(f"  {'':<11}{'worst':>9}{'p99':>9}{'p50':>9}{'ticks':>7}  (gaps between 5 ms ticks)")
        for name, s in (("idle", idle), ("generating", busy)):
            print(
                f"  {name:<11}{s['worst']:>7.1f}ms{s['p99']:>7.1f}ms{s['p50']:>7.1f}ms"
                f"{s['ticks']:>7}"
            )
        print(
            f"  generating / idle: worst {busy['worst'] / idle['worst']:.1f}x, "
            f"p99 {busy['p99'] / idle['p99']:.1f}x over {busy['seconds']:.1f} s"
        )
        session.shutdown()
        db.close()
    del app


if __name__ == "__main__":
    main()
