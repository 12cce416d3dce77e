"""Start-up cost of wegen-cli: each command run in a fresh Python process, timed from outside.

Baselines in the same run: the bare interpreter (``python -c pass``) and ``import torch`` alone.
Each row also names the heavy modules the command imported (torch, transformers, diffusers), from
inside the child at exit. The first run of a row may include reading files into the page cache;
"median" and "min" are over the repeats. To measure from a cold page cache, drop it first (as
root: ``sync; echo 3 > /proc/sys/vm/drop_caches``) and look at the "first" column.

    python benchmarks/cold_start.py
    python benchmarks/cold_start.py --repeat 5 --no-generate
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

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "diffusers")
MARK = "cold-start-heavy:"

#: runs engine.cli's main with ``argv`` and reports the heavy modules it imported, at exit
CLI = (
    "import atexit, sys\n"
    f"atexit.register(lambda: print({MARK!r}, *[m for m in {HEAVY!r} if m in sys.modules],"
    " file=sys.stderr))\n"
    "from engine.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    heavy = next(
        (line[len(MARK) :].strip() for line in done.stderr.splitlines() if line.startswith(MARK)),
        "",
    )
    if done.returncode != 0:
        print(f"  ! {' '.join(argv[-4:])} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds, heavy or "-", done.returncode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per command (default 3)")
    p.add_argument("--device", default="auto", help="passed to info and generate")
    p.add_argument("--no-generate", action="store_true", help="skip the generate row")
    args = p.parse_args()

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    py = sys.executable
    out = Path(tempfile.mkdtemp(prefix="wegen-cold-")) / "out.png"
    rows: list[tuple[str, list[str]]] = [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -c 'import torch'", [py, "-c", "import torch"]),
        ("wegen-cli --help", [py, "-c", CLI, "--help"]),
        ("wegen-cli info", [py, "-c", CLI, "info", "--device", args.device]),
    ]
    if not args.no_generate:
        generate = ["generate", "a large red circle at the top left", "--seed", "1"]
        generate += ["--device", args.device, "-o", str(out)]
        rows.append(("wegen-cli generate (default steps)", [py, "-c", CLI, *generate]))

    print(f"{os.cpu_count()} CPUs, {args.repeat} runs each, Python {sys.version.split()[0]}")
    header = f"{'command':<36}{'first s':>9}{'median s':>10}{'min s':>8}  heavy imports"
    print(header)
    print("-" * len(header))
    for name, argv in rows:
        runs = [timed(argv, env) for _ in range(args.repeat)]
        times = [t for t, _, _ in runs]
        heavy = runs[-1][1] if "-c" in argv and CLI in argv else ""
        print(
            f"{name:<36}{times[0]:>9.2f}{statistics.median(times):>10.2f}{min(times):>8.2f}"
            f"  {heavy}"
        )
    out.unlink(missing_ok=True)
    out.parent.rmdir()


if __name__ == "__main__":
    main()
