"""What the compiled backend's compile costs at load, on the first launch and on later ones.

Each launch is a fresh Python process that loads the model with ``backend="compiled"`` (the
engine compiles it at load: `engine.chat_engine.WeGenEngine.warm_up`) and then runs one turn. The
first launch starts from an empty compile cache (a fresh ``$WEGEN_CACHE``); the later ones read
what it wrote there (engine.caches). Baseline in the same run: the eager backend's load and first
turn. Prints one row per launch: load seconds, of which warm-up, and the first turn's seconds.

    python benchmarks/compile_warm_up.py                       # the bundled model on the CPU
    python benchmarks/compile_warm_up.py --device cuda --model MODEL_DIR --launches 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: one launch: load (timed), one text-to-image turn (timed), the numbers as JSON on stdout
CHILD = """
import json, sys, threading, time
import torch
from engine import api
from engine.chat_engine import WeGenEngine
model, device, backend, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if threads:
    torch.set_num_threads(threads)
start = time.perf_counter()
engine = WeGenEngine()
info = engine.load(model, api.RuntimeRequest(device=device, backend=backend))
loaded = time.perf_counter() - start
events = []
turn = api.Request(api.Turn.user("a green triangle at the bottom left"),
                   settings=api.GenerationSettings(seed=1), task=api.Task.GENERATE)
start = time.perf_counter()
engine.run(turn, events.append, threading.Event())
assert isinstance(events[-1], api.Finished), events[-1]
print(json.dumps({"load": loaded, "warm_up": info.warm_up_seconds or 0.0,
                  "first_turn": time.perf_counter() - start}))
"""


def launch(model: str, device: str, backend: str, threads: int, cache: Path) -> dict[str, float]:
    env = os.environ | {"WEGEN_CACHE": str(cache)}
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(name, None)
    argv = [sys.executable, "-c", CHILD, model, device, backend, str(threads)]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"a {backend} launch failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a model folder (default: the bundled one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--launches", type=int, default=2, help="compiled launches (≥ 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    args = parser.parse_args(argv)
    if args.model is None:
        from engine.bundled import BUNDLED_DIR

        args.model = str(BUNDLED_DIR)
    print(f"model {args.model} on {args.device}, one turn after each load (seconds)")
    print(f"{'launch':<28}{'load':>8}{'warm-up':>9}{'first turn':>12}")
    with tempfile.TemporaryDirectory(prefix="wegen-compile-cache-") as cache:
        rows = [
            (
                "eager (baseline)",
                launch(args.model, args.device, "eager", args.threads, Path(cache)),
            )
        ]
        for i in range(max(2, args.launches)):
            name = "compiled, empty cache" if i == 0 else f"compiled, cached ({i + 1})"
            rows.append(
                (name, launch(args.model, args.device, "compiled", args.threads, Path(cache)))
            )
    for name, r in rows:
        print(f"{name:<28}{r['load']:>8.1f}{r['warm_up']:>9.1f}{r['first_turn']:>12.1f}")


if __name__ == "__main__":
    main()
