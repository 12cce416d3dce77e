"""Seconds per stage-2 training step with self-feeding: the passes on the self-fed rows alone
(what `MLLMObjective.fed_features` does) against passes over the whole batch (the baseline),
in the same process, on the same batches.

Stage 2's self-feeding runs ``self_feed_passes`` no-gradient passes of the LLM before each
training step, and those passes were half of a CPU step. A row without a self-fed image (a VQA
question, a caption, a PSR rewrite, or an image drawn for teacher forcing) and the positions after
the last self-fed slot cannot change any self-fed feature, so the passes skip them. The
baseline's step time is the measured step with its passes' time swapped for the baseline's.

    python benchmarks/self_feed.py                  # the bundled wegen-tiny, CPU, batch 16
    python benchmarks/self_feed.py --device cuda --batch 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from engine.bundled import BUNDLED_DIR
from training.checks.decoder import load_with_tokenizer
from training.config import plan
from training.stages.mllm import (
    MLLMObjective,
    host_mllm_batch,
    make_mllm_batch,
    whole_batch_fed_features,
)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(BUNDLED_DIR))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument(
        "--plan",
        default=str(BUNDLED_DIR / "plans" / "13-cpu9.json"),
        help="whose stage-2 task mix and self-feeding (default: the bundled model's last run)",
    )
    args = ap.parse_args()

    p = plan(args.plan)
    if not p.self_feed:
        raise SystemExit(f"{args.plan} does not self-feed: give a plan with self_feed > 0")
    passes, self_feed = p.self_feed_passes, p.self_feed
    model, tok = load_with_tokenizer(args.model, args.device)
    for trained in (model.llm, model.input_proj, model.output_proj):  # what stage 2 trains
        trained.requires_grad_(True)
    objective = MLLMObjective(model.train(), p.regression_weight, passes, p.lm_length_power)
    size = model.config.vision.image_size
    weights = p.mllm.task_weights
    rows = {"sub-batch (now)": [], "whole batch (baseline)": []}
    steps = {"sub-batch (now)": [], "whole batch (baseline)": []}
    fed_share = []
    for i in range(args.batches + 1):  # the first batch warms up
        host = host_mllm_batch(size, tok, args.batch, weights, "bench", 0, i, 0)
        g = torch.Generator().manual_seed(i)
        batch = make_mllm_batch(model, tok, host, g, p.feature_noise, self_feed)
        fed_share.append(len(batch["reg_rows"][batch["reg_fed"]].unique()) / args.batch)
        got = timed(lambda: objective.fed_features(batch))  # noqa: B023
        base = timed(lambda: whole_batch_fed_features(model, batch, passes))  # noqa: B023

        def step() -> None:
            loss, _ = objective(batch)  # noqa: B023
            loss.backward()
            model.zero_grad(set_to_none=True)

        whole = timed(step)
        if i:
            rows["sub-batch (now)"].append(got)
            rows["whole batch (baseline)"].append(base)
            steps["sub-batch (now)"].append(whole)
            steps["whole batch (baseline)"].append(whole - got + base)
    print(
        f"{args.batches} batches of {args.batch} ({args.plan} mix, self_feed {self_feed}, "
        f"{passes} passes; {statistics.mean(fed_share[1:]):.0%} of rows self-fed) on {args.device}"
    )
    print("| passes on | passes (s, median) | training step (s, median) |")
    print("|---|---:|---:|")
    for name in rows:
        print(
            f"| {name} | {statistics.median(rows[name]):.3f} | {statistics.median(steps[name]):.3f} |"
        )
    ratio = statistics.median(steps["whole batch (baseline)"]) / statistics.median(
        steps["sub-batch (now)"]
    )
    print(f"step speed-up: {ratio:.2f}x")


if __name__ == "__main__":
    main()
