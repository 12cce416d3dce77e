"""Median seconds for one text-to-image chat turn: text + 64 image tokens + denoise + VAE.

Runs the chosen backend and the eager baseline in the same process, on the same model, their
turns interleaved, and prints both with their ratio. Without ``--model`` it uses the bundled wegen-tiny, or a seeded random tiny
model when that is absent (same architecture and speed). On a GPU, ``--full-7b`` also times the
7B preset at full size with random weights (speed does not depend on the values).

    python benchmarks/turn_latency.py                       # tiny, CPU, eager vs compiled
    python benchmarks/turn_latency.py --backend onnx --cold # tiny, CPU, eager vs ONNX Runtime
    python benchmarks/turn_latency.py --backend eager --loop static --embedding-cfg 3
                                                            # the static token loop, uncompiled
    python benchmarks/turn_latency.py --device cuda --full-7b --steps 50

Phases: encode (vision tower), text (text tokens), image_tokens (the 64 fed-back tokens),
denoise (the UNet steps), vae (the VAE decode). ``--backend onnx`` exports the model into a
temporary folder first (timed) unless ``--onnx-dir`` names an export; ``--cold`` also times a
fresh process from start to a written PNG for eager and the candidate.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
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


def _request(steps: int | None, embedding_cfg: float) -> api.Request:
    return api.Request(
        api.Turn.user(PROMPT),
        task=api.Task.GENERATE,
        settings=api.GenerationSettings(
            seed=0,
            steps=steps,
            max_new_tokens=16,
            previews=False,
            embedding_cfg=embedding_cfg,
        ),
    )


def _turn(engine: WeGenEngine, request: api.Request) -> tuple[float, dict[str, float]]:
    events: list[api.Event] = []
    start = time.perf_counter()
    engine.run(request, events.append, threading.Event())
    elapsed = time.perf_counter() - start
    if not isinstance(events[-1], api.Finished):
        raise SystemExit(f"turn failed: {events[-1]}")
    return elapsed, split_phases(events[-1].timings)


def time_turns(
    engines: list[WeGenEngine], runs: int, steps: int | None, embedding_cfg: float = 1.0
) -> list[tuple[float, dict[str, float]]]:
    """Median seconds and phases per engine, their turns interleaved (a, b, a, b, ...) so that
    load from other work on the machine falls on both alike. Each engine's first turn warms up
    (and compiles); its time is printed, not counted."""
    request = _request(steps, embedding_cfg)
    for engine in engines:
        first, _ = _turn(engine, request)
        rt = engine.runtime
        assert rt is not None
        loop = "static" if rt.static_loop else "reference"
        print(f"  first turn ({rt.backend}, {loop} loop): {first:.2f} s")
    seconds: list[list[float]] = [[] for _ in engines]
    phases: list[list[dict[str, float]]] = [[] for _ in engines]
    for _ in range(runs):
        for i, engine in enumerate(engines):
            elapsed, split = _turn(engine, request)
            seconds[i].append(elapsed)
            phases[i].append(split)
    return [
        (statistics.median(s), {k: statistics.median(p[k] for p in ps) for k in ps[0]})
        for s, ps in zip(seconds, phases, strict=True)
    ]


def split_phases(t: api.TurnTimings) -> dict[str, float]:
    """The phases a turn reports (disjoint: text and image tokens, denoising steps and VAE)."""
    phases = {k: v for k, v in t.to_dict().items() if k not in ("total", "dropped_turns")}
    if not t.rewrite:
        del phases["rewrite"]
    return phases


def engine_for(
    folder: str, device: str, precision: str, backend: str, loop: str = "auto"
) -> WeGenEngine:
    """An engine on ``folder``; ``loop`` "static" or "reference" overrides the backend's token
    loop (the static loop without compiling, say)."""
    engine = WeGenEngine()
    engine.load(folder, api.RuntimeRequest(device=device, precision=precision, backend=backend))
    if loop != "auto":
        assert engine.model is not None and engine.tokenizer is not None and engine.runtime
        runtime = dataclasses.replace(engine.runtime, loop=loop)
        engine.attach(engine.model, engine.tokenizer, runtime, folder)  # type: ignore[arg-type]
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
        ratios = " ".join(
            f"{k}={baseline[1][k] / v:.2f}x"
            for k, v in candidate[1].items()
            if v > 0 and baseline[1].get(k, 0) > 1e-3
        )
        print(f"  speed-up  {baseline[0] / candidate[0]:.2f}x end to end;  per phase {ratios}")


def _phases(p: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in p.items())


COLD_SCRIPT = """
import sys, threading
from engine import api
from engine.chat_engine import WeGenEngine
folder, backend, out = sys.argv[1:4]
engine = WeGenEngine()
engine.load(folder, api.RuntimeRequest(device="cpu", precision="fp32", backend=backend))
events = []
request = api.Request(api.Turn.user({prompt!r}), task=api.Task.GENERATE,
                      settings=api.GenerationSettings(seed=0, max_new_tokens=16, previews=False))
engine.run(request, events.append, threading.Event())
events[-1].reply.images[0].image.save(out)
"""


def cold_turn(folder: str, backend: str, out: Path) -> float:
    """Seconds for a fresh Python process to load the model, run one turn and write the PNG."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", COLD_SCRIPT.format(prompt=PROMPT), folder, backend, str(out)],
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if not out.is_file():
        raise SystemExit(f"the cold {backend} turn wrote no image")
    return time.perf_counter() - start


def onnx_folder_for(folder: str, onnx_dir: str | None, tmp: str) -> str:
    from engine.onnx_export import export_onnx
    from engine.onnx_folder import is_onnx_folder

    if onnx_dir is not None or is_onnx_folder(folder):
        return onnx_dir or folder
    start = time.perf_counter()
    out = export_onnx(folder, Path(tmp) / "onnx")
    print(f"exported to ONNX in {time.perf_counter() - start:.1f} s")
    return str(out)


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
    ap.add_argument(
        "--loop",
        default="auto",
        choices=("auto", "static", "reference"),
        help="the candidate's token loop (auto: static with compiled, else the reference)",
    )
    ap.add_argument(
        "--embedding-cfg", type=float, default=1.0, help="the LLM's embedding CFG (1 = off)"
    )
    ap.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    ap.add_argument("--full-7b", action="store_true", help="also time the 7B preset (GPU only)")
    ap.add_argument("--onnx-dir", help="with --backend onnx: an exported folder to use")
    ap.add_argument("--cold", action="store_true", help="also time a fresh process to a PNG")
    ap.add_argument(
        "--threads", type=int, help="CPU threads for both backends (torch.set_num_threads)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

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
        engines = [base_engine]
        cand_folder = folder
        if args.backend == "onnx":
            cand_folder = onnx_folder_for(folder, args.onnx_dir, tmp)
        if args.backend != "none":
            engines.append(
                engine_for(cand_folder, args.device, args.precision, args.backend, args.loop)
            )
        timed = time_turns(engines, args.runs, args.steps, args.embedding_cfg)
        base, cand = timed[0], (timed[1] if len(timed) > 1 else None)
        label = (
            f"{base_engine.info.name}: one text-to-image turn, embedding CFG {args.embedding_cfg}"
        )
        name = args.backend if args.loop == "auto" else f"{args.backend}+{args.loop}"
        report(label, base, cand, name)
        if args.cold:
            print("\ncold start (fresh process: imports, load, one turn, PNG written)")
            runs = [("eager", folder)] + ([(args.backend, cand_folder)] * (args.backend != "none"))
            for backend, where in runs:
                seconds = [
                    cold_turn(where, backend, Path(tmp) / f"{backend}.png") for _ in range(2)
                ]
                print(f"  {backend:<9} {min(seconds):.2f} s (best of 2)")

    if args.full_7b:
        if not torch.cuda.is_available():
            raise SystemExit("--full-7b needs a CUDA GPU")
        eng = random_7b_engine(args.device, args.precision, "eager")
        (base,) = time_turns([eng], max(2, args.runs // 2), args.steps, args.embedding_cfg)
        del eng
        torch.cuda.empty_cache()
        cand = None
        if args.backend != "none":
            eng = random_7b_engine(args.device, args.precision, args.backend)
            (cand,) = time_turns([eng], max(2, args.runs // 2), args.steps, args.embedding_cfg)
        report("wegen-7b (random weights, full size)", base, cand, args.backend)


if __name__ == "__main__":
    main()
