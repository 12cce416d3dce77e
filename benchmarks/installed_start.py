"""Cold start of an installed WeGen (a .deb's /usr/bin, an unpacked archive) against this checkout.

    python benchmarks/installed_start.py BIN_DIR [--runs 3]

BIN_DIR holds the frozen ``wegen`` and ``wegen-cli`` (e.g. an unpacked archive's folder). Each
run is a fresh process with an empty data folder, the installed and the source run interleaved so
that whatever else the machine does falls on both: the window to its first paint and to "model
ready" (benchmarks/window_start.py's marks), and ``wegen-cli generate "a red circle" --seed 1``
to a written PNG. Prints medians and the ratio installed / source. Not a test.
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

from window_start import FROM_SOURCE, REPO_ROOT, one_run


def cli_generate(program: tuple[str, ...]) -> float:
    with tempfile.TemporaryDirectory(prefix="wegen-cli-") as tmp:
        env = {**os.environ, "WEGEN_DATA_DIR": tmp}
        start = time.perf_counter()
        subprocess.run(
            [*program, "generate", "a red circle", "--seed", "1", "-o", f"{tmp}/out.png"],
            cwd=REPO_ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        assert Path(tmp, "out.png").stat().st_size > 0
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bin_dir", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    programs = {
        "installed": ((str(args.bin_dir / "wegen"),), (str(args.bin_dir / "wegen-cli"),)),
        "source": (FROM_SOURCE, (sys.executable, "-m", "engine.cli")),
    }
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in programs}
    for _ in range(args.runs):
        for name, (gui, cli) in programs.items():
            marks = one_run(None, "offscreen", 300.0, gui)
            marks["cli generate to PNG"] = cli_generate(cli)
            for key, value in marks.items():
                rows[name].setdefault(key, []).append(value)
    print(f"{args.runs} cold starts each, interleaved, {os.cpu_count()} CPUs, offscreen")
    print(f"  {'':<22} {'installed':>10} {'source':>10} {'ratio':>7}")
    for key in ("first paint", "model ready", "cli generate to PNG"):
        a = statistics.median(rows["installed"][key])
        b = statistics.median(rows["source"][key])
        print(f"  {key:<22} {a:9.2f}s {b:9.2f}s {a / b:7.2f}")


if __name__ == "__main__":
    main()
