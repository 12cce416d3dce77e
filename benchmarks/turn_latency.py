"""Median seconds for one text-to-image chat turn: text + 64 image tokens + denoise + VAE.

Runs the chosen backend and the eager baseline in the same process, on the same model, and prints
both with their ratio. Without ``--model`` it uses the bundled wegen-tiny, or a seeded random tiny
model when that is absent (same architecture and speed). On a GPU, ``--full-7b`` also times the
7B preset at full size with random weights (speed does not depend on the values).

    python benchmarks/turn_latency.py                       # tiny, CPU, eager vs compiled
    python benchmarks/turn_latency.py --device cuda --full-7b --steps 50
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from engine import api
from engine.bundled import BUNDLED_DIR
from engine.chat_engine import WeGenEngine
from engine.runtime import select_runtime

PROMPT = "a large red striped circle at the top left and a small blue star in the centre"


def time_turns(engine: WeGenEngine, runs: int, steps: int | None) -> tuple[float, dict[str, float]]:
    request = api.Request(
        api.Turn.user(PROMPT),
        task=api.Task.GENERATE,
        settings=api.GenerationSettings(seed=0, steps=steps, max_new_tokens=16, previews=False),
    )
    seconds, phases = [], []
    for i in range(runs + 1):  # the first turn warms up (and compiles)
        events: list[api.Event] = []
        start = time.perf_counter()
        engine.run(request, events.append, threading.Event())
        elapsed = time.perf_counter() - start
        if not isinstance(events[-1], api.Finished):
            raise SystemExit(f"turn failed: {events[-1]}")
        if i:
            seconds.append(elapsed)
            phases.append(events[-1].timings)
    keys = phases[0].keys()
    return statistics.median(seconds), {k: statistics.median(p[k] for p in phases) for k in keys}


def engine_for(folder: str, device: str, precision: str, backend: str) -> WeGenEngine:
    engine = WeGenEngine()
    engine.load(folder, api.RuntimeRequest(device=device, precision=precision, backend=backend))
    return engine


def random_7b_engine(device: str, precision: str, backend: str) -> WeGenEngine:
    from engine.config import wegen_7b
    from engine.folder import place
    from engine.model import WeGenModel
    from engine.testing import tiny_tokenizer

    runtime = select_runtime(
        api.RuntimeRequest(device=device, precision=precision, backend=backend)
    )
    with torch.device(runtime.device):
        model = WeGenModel(wegen_7b())
    engine = WeGenEngine()
    engine.attach(place(model, runtime), tiny_tokenizer(), runtime, "wegen-7b (random weights)")
    return engine


def report(
    label: str, baseline: tuple[float, dict], candidate: tuple[float, dict] | None, name: str
) -> None:
    print(f"\n{label}")
    print(f"  eager     median {baseline[0]:.3f} s  " + _phases(baseline[1]))
    if candidate is not None:
        print(f"  {name:<9} median {candidate[0]:.3f} s  " + _phases(candidate[1]))
        print(f"  speed-up  {baseline[0] / candidate[0]:.2f}x")


def _phases(p: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in p.items() if k not in ("total", "dropped_turns"))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model", help="model folder (default: bundled wegen-tiny, else a random tiny)"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--backend", default="compiled", help="the candidate against eager (or 'none')")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    ap.add_argument("--full-7b", action="store_true", help="also time the 7B preset (GPU only)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model
        if folder is None:
            if BUNDLED_DIR.is_dir():
                folder = str(BUNDLED_DIR)
            else:
                from engine.testing import make_random_model_folder

                folder = str(make_random_model_folder(Path(tmp) / "tiny"))
                print("bundled model absent: timing a seeded random wegen-tiny (same speed)")
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {folder}")
        base_engine = engine_for(folder, args.device, args.precision, "eager")
        print(f"runtime {base_engine.info.device} {base_engine.info.precision}")
        base = time_turns(base_engine, args.runs, args.steps)
        cand = None
        if args.backend != "none":
            cand = time_turns(
                engine_for(folder, args.device, args.precision, args.backend), args.runs, args.steps
            )
        report(f"{base_engine.info.name}: one text-to-image turn", base, cand, args.backend)

    if args.full_7b:
        if not torch.cuda.is_available():
            raise SystemExit("--full-7b needs a CUDA GPU")
        eng = random_7b_engine(args.device, args.precision, "eager")
        base = time_turns(eng, max(2, args.runs // 2), args.steps)
        del eng
        torch.cuda.empty_cache()
        cand = None
        if args.backend != "none":
            eng = random_7b_engine(args.device, args.precision, args.backend)
            cand = time_turns(eng, max(2, args.runs // 2), args.steps)
        report("wegen-7b (random weights, full size)", base, cand, args.backend)


if __name__ == "__main__":
    main()
