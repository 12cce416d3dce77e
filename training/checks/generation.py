"""Stage-2 check: do the LLM's generated 64 features carry what the caption asks for?

    python -m training.checks.generation --model DIR [--n 64] [--split heldout] [--embedding-cfg 1]

Text-to-image has two halves: the LLM writes 64 features for the caption and the de-tokenizer
draws them. `training.checks.decoder` scores the second half from true features; this scores the
first half without drawing anything. For ``n`` detailed-caption requests of one or two objects
(half each, the samples `wegen-eval` uses for ``split="heldout"``) it runs the engine's token loop,
takes the 64 generated features, and compares them with the frozen tower's features of the
render the caption describes (what stage 2 regressed them onto):

* ``cosine``: mean per-token cosine similarity, generated against true;
* ``relative_mse``: ``|g - t|^2 / |t|^2`` over all tokens;
* ``norm_ratio``: mean token norm of the generated features over that of the true ones (well
  below 1: the LLM regresses towards an average, and the de-tokenizer never saw such inputs);
* ``teacher_forced``: the same three for what the LLM predicts when every earlier slot holds
  the true feature (stage 2's training condition); far better than the generated ones, the
  error is the loop's own, compounding as the LLM reads back its predictions;
* ``probe_true`` / ``probe_generated``: per attribute, the share the linear probes of
  `training.checks.vision` (fit on true features of training scenes) read right from the true
  features and from the generated ones.

Where ``probe_generated`` is far below ``probe_true`` the LLM loses the attribute; where both
are high and the drawings still miss it, the de-tokenizer does.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence

import torch

from engine.model import WeGenModel
from engine.tokenizer import WeGenTokenizer
from training.checks.decoder import load_with_tokenizer
from training.checks.vision import encode_scenes, fit_probes, probe_accuracy, probe_rows
from training.data.samples import Sample
from training.data.splits import SPLITS, Split, sample_scene
from training.evaluation.capabilities import CAPABILITIES, heldout_samples
from training.stages.mllm import MLLMObjective, collate, encode_sample
from training.stages.vision import cell_features, target_features
from training.stages.written_scenes import written_features


@torch.no_grad()
def teacher_forced_features(
    model: WeGenModel, tok: WeGenTokenizer, samples: Sequence[Sample], true: torch.Tensor
) -> torch.Tensor:
    """(N, 64, F): what the LLM predicts for each slot when it reads the *true* features at the
    slots before it (stage 2's teacher forcing), for the same requests: one self-feeding pass
    over true features, every image fed."""
    encoded = [encode_sample(tok, s) for s in samples]
    batch = collate(tok, encoded, list(true[:, None]), torch.Generator(), 0.0, self_feed=1.0)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    fed = MLLMObjective(model, self_feed_passes=1).fed_features(batch)
    assert fed is not None  # every request answers with an image
    return fed[batch["reg_slots"]].float().cpu().view_as(true)


def agreement(gen: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Cosine, relative MSE and norm ratio of generated against true features (N, 64, F)."""
    return {
        "cosine": round(float(torch.cosine_similarity(gen, true, dim=-1).mean()), 4),
        "relative_mse": round(float((gen - true).pow(2).sum() / true.pow(2).sum()), 4),
        "norm_ratio": round(float(gen.norm(dim=-1).mean() / true.norm(dim=-1).mean()), 4),
    }


def t2i_samples(n: int, seed: int, split: Split, size: int) -> list[Sample]:
    """``n`` text-to-image samples, half with one object and half with two."""
    caps = [c for c in CAPABILITIES if c.name in ("t2i_single", "t2i_pair")]
    counts = (n - n // 2, n // 2)
    return [
        sample
        for cap, k in zip(caps, counts, strict=True)
        if k
        for _, sample in heldout_samples(cap.kind, k, seed, cap.accept, size, split)
    ]


def check_generation(
    model: WeGenModel,
    tok: WeGenTokenizer,
    n: int = 64,
    seed: int = 0,
    split: Split = "heldout",
    embedding_cfg: float = 1.0,
    n_fit: int = 1500,
) -> dict:
    """Generated features against true ones on ``n`` caption requests (see the module)."""
    if n < 1 or n_fit < 10:
        raise ValueError("check_generation needs n >= 1 and n_fit >= 10")
    samples = t2i_samples(n, seed, split, model.config.vision.image_size)
    seeds = range(seed, seed + len(samples))
    gen = written_features(model, tok, samples, seeds, embedding_cfg=embedding_cfg)
    true = target_features(model.vision, samples)
    result: dict = {
        "n": len(samples),
        "split": split,
        "embedding_cfg": embedding_cfg,
        **agreement(gen, true),
        "teacher_forced": agreement(teacher_forced_features(model, tok, samples, true), true),
    }
    rng = random.Random(f"check_generation/{seed}")
    fit = [sample_scene(rng, "train") for _ in range(n_fit)]
    fit_rows = probe_rows(fit, *encode_scenes(model.vision, fit))
    scenes = [s.target_scenes[-1] for s in samples]
    rows = {
        name: probe_rows(scenes, cell_features(feats), feats.mean(1))
        for name, feats in (("probe_true", true), ("probe_generated", gen))
    }
    probes = fit_probes(fit_rows)
    for key, by_name in rows.items():
        result[key] = {
            name: round(probe_accuracy(weights, *by_name[name]), 4)
            for name, weights in probes.items()
        }
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="a model folder, or a training run's OUT")
    ap.add_argument("--n", type=int, default=64, help="caption requests (half 1-, half 2-object)")
    ap.add_argument("--split", default="heldout", choices=SPLITS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--embedding-cfg", type=float, default=1.0, help="the loop's CFG (1 = off)")
    ap.add_argument("--n-fit", type=int, default=1500, help="training scenes to fit probes on")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    args = ap.parse_args(argv)
    if args.n < 1 or args.n_fit < 10:
        ap.error("--n must be at least 1 and --n-fit at least 10")
    model, tok = load_with_tokenizer(args.model, args.device)
    print(
        json.dumps(
            check_generation(
                model, tok, args.n, args.seed, args.split, args.embedding_cfg, args.n_fit
            )
        )
    )


if __name__ == "__main__":
    main()
