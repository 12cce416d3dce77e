"""``wegen-eval``: score every WeGen capability on held-out samples of the shapes world.

    wegen-eval --model DIR --out report.json [--n 8] [--seed 0] [--device auto] [--threads 1]
    python -m training.evaluation ...                     # the same, from a checkout

Writes the report as JSON (``--out``) and markdown (``.md`` beside it), and prints the markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import api
from engine.cli_options import add_runtime_options, add_setting_options, runtime_request
from training.data.splits import SPLITS
from training.evaluation.capabilities import CAPABILITY_NAMES
from training.evaluation.metrics import DEFAULT_N, DEFAULT_PSR_SEEDS, SPLIT, TUNABLE
from training.evaluation.run import count_turns, evaluate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wegen-eval",
        description="Score every WeGen capability on held-out shapes-world samples.",
    )
    add_runtime_options(p)
    p.add_argument("--out", required=True, help="report JSON path; the markdown goes beside it")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="samples per metric")
    p.add_argument("--seed", type=int, default=0, help="which held-out samples (and seeds)")
    p.add_argument("--psr-seeds", type=int, default=DEFAULT_PSR_SEEDS, help="seeds per PSR prompt")
    p.add_argument("--size", type=int, help="input render size (default: the model's image size)")
    p.add_argument(
        "--split",
        default=SPLIT,
        choices=SPLITS,
        help="held-out samples (the report) or training-distribution ones (to tune settings on)",
    )
    add_setting_options(p, TUNABLE)
    p.add_argument(
        "--only",
        help=f"comma-separated capabilities to run (default all: {','.join(CAPABILITY_NAMES)})",
    )
    p.add_argument(
        "--threads", type=int, help="CPU threads for torch (1 is fastest on a busy machine)"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from engine.bundled import require_model_dir
    from engine.chat_engine import WeGenEngine
    from engine.errors import WeGenError

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    unknown = [name for name in only or () if name not in CAPABILITY_NAMES]
    if unknown:
        build_parser().error(f"unknown capabilities {unknown}; choose from {CAPABILITY_NAMES}")
    if args.n < 1 or args.psr_seeds < 2:
        build_parser().error("--n must be at least 1 and --psr-seeds at least 2")
    if (args.steps is not None and args.steps < 1) or (
        args.guidance is not None and args.guidance < 1
    ):
        build_parser().error("--steps must be at least 1 and --guidance at least 1 (1 = off)")
    if not 0 < args.denoise_strength <= 1:
        build_parser().error("--denoise-strength must be above 0 and at most 1")
    settings = api.GenerationSettings(
        steps=args.steps,
        guidance=args.guidance,
        embedding_cfg=args.embedding_cfg,
        denoise_strength=args.denoise_strength,
    )
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    try:
        folder = require_model_dir(args.model)
        engine = WeGenEngine()
        print(f"loading {folder} …", file=sys.stderr)
        info = engine.load(str(folder), runtime_request(args))
        print(f"{info.name} on {info.device} ({info.precision})", file=sys.stderr)
        total = count_turns(args.n, args.psr_seeds, only)
        with tqdm(total=total, desc="evaluating", unit="turn", file=sys.stderr) as bar:

            def progress(name: str) -> None:
                bar.set_postfix_str(name, refresh=False)
                bar.update(1)

            report = evaluate(
                engine,
                args.n,
                args.seed,
                psr_seeds=args.psr_seeds,
                size=args.size,
                only=only,
                progress=progress,
                settings=settings,
                split=args.split,
            )
    except WeGenError as e:
        print(f"wegen-eval: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wegen-eval: interrupted", file=sys.stderr)
        return 130
    report.model = f"{info.name} ({folder})"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_json(), encoding="utf-8")
    markdown = report.to_markdown()
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if args.strict and not report.passed else 0
