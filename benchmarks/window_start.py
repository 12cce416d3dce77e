"""Cold start of the window: from launching ``wegen`` to its first paint, to "model ready", and
from closing the window to the end of the process.

Each run is a fresh process (``python -m desktop.main --report-start``) with an empty data
folder; it prints "first-paint" once the window has painted, "model ready" (or "model failed")
when the engine has loaded, then closes itself. Times are taken here as each line arrives, so
they include the interpreter's start and every import, as a person launching the app sees them.

    python benchmarks/window_start.py                      # the bundled wegen-tiny, 3 runs
    python benchmarks/window_start.py --runs 5 --model DIR
    python benchmarks/window_start.py --platform xcb       # under a real X server (or xvfb-run)

The window paints before the engine (and torch) is imported: first paint should not depend on
the model. Not a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


FROM_SOURCE = (sys.executable, "-m", "desktop.main")


def one_run(
    model: str | None, platform: str, timeout_s: float, program: tuple[str, ...] = FROM_SOURCE
) -> dict[str, float]:
    """Seconds from launch to each mark of one cold start of ``program`` (default: the app from
    this checkout; benchmarks/installed_start.py passes an installed ``wegen``)."""
    with tempfile.TemporaryDirectory(prefix="wegen-start-") as data:
        command = [*program, "--data-dir", data, "--report-start"]
        if model:
            command += ["--model", model]
        env = {**os.environ, "QT_QPA_PLATFORM": platform, "PYTHONUNBUFFERED": "1"}
        marks: dict[str, float] = {}
        start = time.perf_counter()
        child = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        for line in child.stdout:
            now = time.perf_counter() - start
            word = line.strip()
            if word == "first-paint":
                marks["first paint"] = now
            elif word.startswith("model "):
                marks[word] = now
            elif word == "closing":
                marks["closing"] = now
            if now > timeout_s:
                child.kill()
                raise SystemExit(f"no model after {timeout_s:.0f} s")
        child.wait(timeout=timeout_s)
        marks["exit"] = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"wegen exited with {child.returncode}")
    if "closing" in marks:
        marks["quit (close to exit)"] = marks["exit"] - marks.pop("closing")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", help="model folder (default: the bundled wegen-tiny)")
    parser.add_argument("--platform", default="offscreen", help="QT_QPA_PLATFORM for the app")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    runs = [one_run(args.model, args.platform, args.timeout) for _ in range(args.runs)]
    print(f"{args.runs} cold starts, {os.cpu_count()} CPUs, QT_QPA_PLATFORM={args.platform}")
    for key in runs[0]:
        values = [run[key] for run in runs if key in run]
        print(
            f"  {key:<22} median {statistics.median(values):6.2f} s   "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )


if __name__ == "__main__":
    main()
