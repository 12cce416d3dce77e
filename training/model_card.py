"""Write a model folder's model card from its training run and its evaluation report.

    python -m training.model_card --run runs/wegen-tiny --report report.json \\
        --model wegen_resources/models/wegen-tiny
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from engine.bundled import BUNDLED_DIR
from engine.config import WeGenConfig
from training.config import STAGES, TrainingPlan, plan
from training.evaluation.confidence import format_interval
from training.evaluation.metrics import METRICS, meets
from training.evaluation.report import Report

STAGE_TITLES = {
    "vision": "0 · vision tower (semantic + redraw heads)",
    "vae": "1a · VAE",
    "unet": "1b · de-tokenizer UNet (min-SNR γ=5)",
    "mllm": "2 · LLM + projectors, every task",
    "sft": "3 · DIIC / editing SFT",
}


def last_row(run: Path, stage: str) -> dict:
    path = run / stage / "loss_log.jsonl"
    if not path.is_file():
        return {}
    lines = path.read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def stage_seconds(run: Path, stage: str) -> float:
    """Wall time of a stage, summed over its (possibly resumed) invocations."""
    path = run / stage / "loss_log.jsonl"
    if not path.is_file():
        return 0.0
    total, previous = 0.0, 0.0
    for line in path.read_text().splitlines():
        seconds = json.loads(line)["seconds"]
        if seconds < previous:  # a resumed invocation restarted the clock
            total += previous
        previous = seconds
    return total + previous


def run_plan(run: Path) -> TrainingPlan:
    """The plan a run trained with: its plan.json, else the preset its timings name."""
    recorded = run / "plan.json"
    if recorded.is_file():
        return TrainingPlan.from_json(recorded.read_text(encoding="utf-8"))
    return plan(json.loads((run / "timings.jsonl").read_text().splitlines()[-1])["plan"])


def run_stages(run: Path) -> tuple[list[str], str]:
    """The stages a run trained (in order) and the device it trained them on."""
    trained: list[str] = []
    device = "?"
    path = run / "timings.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        row = json.loads(line)
        device = row.get("device_name") or row.get("device", device)
        trained += [s for s in STAGES if s in row and s not in trained]
    return [s for s in STAGES if s in trained], device


def check_lines(checks: dict[str, dict]) -> list[str]:
    """The card's section on the stage-0 and stage-1 checks (empty without either)."""
    if not checks:
        return []
    lines = ["## Checks", ""]
    vision = checks.get("vision")
    if vision:
        lines += [
            "What the vision tower's 64 features carry: linear probes fitted on "
            f"{vision['n']} training scenes, scored on {vision['n_eval']} more and on as many "
            "held-out ones (`python -m training.checks.vision --model DIR`). Every later stage "
            "reads these features: what they lack, no drawing can show.",
            "",
            "| attribute | chance | training scenes | held-out scenes |",
            "|---|---:|---:|---:|",
        ]
        for name, row in vision.items():
            if isinstance(row, dict):
                lines.append(
                    f"| {name} | {row['chance']:.2f} | {row['train']:.2f} | {row['heldout']:.2f} |"
                )
        lines.append("")
    decoder = checks.get("decoder")
    if decoder:
        lines += [
            f"Redrawing {decoder['n']} held-out scenes: the judge's share of objects read right "
            "in VAE reconstructions and in de-tokenizer drawings from the true features "
            f"(`python -m training.checks.decoder --model DIR --n {decoder['n']}`).",
            "",
            "| | VAE | de-tokenizer |",
            "|---|---:|---:|",
            f"| whole scene | {decoder['vae']:.2f} | {decoder['detokenizer']:.2f} |",
        ]
        if "vae_psnr" in decoder:
            lines.append(
                f"| PSNR (dB) | {decoder['vae_psnr']:.1f} | {decoder['detokenizer_psnr']:.1f} |"
            )
        for name, value in decoder["vae_attributes"].items():
            drawn = decoder["detokenizer_attributes"].get(name, float("nan"))
            lines.append(f"| {name} | {value:.2f} | {drawn:.2f} |")
        lines.append("")
        lines += ceiling_lines(decoder.get("ceilings"), decoder["n"])
    generation = checks.get("generation")
    if generation:
        lines += [
            f"What the LLM's generated features carry, on {generation['n']} "
            f"{'held-out' if generation['split'] == 'heldout' else generation['split']} "
            "text-to-image requests (half one object, half two): the probes above read the "
            "tower's features of the image the caption describes and the 64 features the LLM "
            "writes for the caption (`python -m training.checks.generation --model DIR --n "
            f"{generation['n']}`). Cosine {generation['cosine']:.2f}, relative squared error "
            f"{generation['relative_mse']:.2f}, norm ratio {generation['norm_ratio']:.2f}"
            + (
                f"; predicted with the true features at every earlier slot (teacher forcing, as "
                f"in training) the relative error is "
                f"{generation['teacher_forced']['relative_mse']:.2f}."
                if "teacher_forced" in generation
                else "."
            ),
            "",
            "| attribute | true features | generated features |",
            "|---|---:|---:|",
        ]
        for name, value in generation["probe_true"].items():
            made = generation["probe_generated"].get(name, float("nan"))
            lines.append(f"| {name} | {value:.2f} | {made:.2f} |")
        lines.append("")
    return lines


def ceiling_lines(ceilings: dict[str, dict[str, float]] | None, n: int) -> list[str]:
    """The table of `checks.decoder.vae_ceilings`: each image metric's true answer scored as it
    is and through the VAE, beside the target (empty without ceilings)."""
    if not ceilings:
        return []
    drawn = all("detokenizer" in row for row in ceilings.values())
    lines = [
        f"The true answer of {n} held-out samples per metric of the evaluation, scored as it is "
        "and after the VAE encodes and decodes it (`python -m training.checks.decoder --model "
        f"DIR --n {n} --ceilings`). The UNet learns to make the latents this VAE's encoder "
        "makes, and every drawing leaves through its decoder: even a perfect LLM and UNet draw "
        "no better than the second column. A target above it needs a better VAE first."
        + (
            " The last column draws the true answer again from its own 64 features (`--drawn`):"
            " what the model reaches when the LLM writes exactly the right features."
            if drawn
            else ""
        ),
        "",
        "| metric | target | true answer | through the VAE | target above the VAE's ceiling |"
        + (" drawn from its true features |" if drawn else ""),
        "|---|---:|---:|---:|---|" + ("---:|" if drawn else ""),
    ]
    for metric, row in ceilings.items():
        spec = METRICS[metric]
        above = not meets(row["vae"], spec.target, spec.op)
        lines.append(
            f"| {metric} | {spec.op} {spec.target:g} | {row['truth']:.2f} | {row['vae']:.2f} | "
            f"{'yes' if above else 'no'} |" + (f" {row['detokenizer']:.2f} |" if drawn else "")
        )
    lines.append("")
    return lines


def card(
    runs: Sequence[Path],
    report: dict | None,
    model_dir: Path,
    history: str | None = None,
    command: str = "python -m training.reproduce    # writes wegen_resources/models/wegen-tiny",
    checks: dict[str, dict] | None = None,
) -> str:
    """The model card of ``model_dir``, trained by ``runs`` in order (a later run may retrain or
    continue stages of an earlier one: ``history`` says how they fit together); ``checks`` holds
    the JSON of ``training.checks.vision`` ("vision"), ``training.checks.decoder`` ("decoder") and
    ``training.checks.generation`` ("generation")."""
    lines = model_lines(model_dir)
    lines += training_lines(runs, command, history)
    lines += check_lines(checks or {})
    if report is not None:
        lines += evaluation_lines(report)
    lines += [
        "## How to reproduce",
        "",
        "```bash",
        command,
        f"wegen-eval --model {model_dir} --out report.json   # the evaluation",
        "```",
        "",
        "`docs/training.md` describes the plans and the checks; `training/NOTES.md` keeps the "
        "history of the runs.",
        "",
    ]
    return "\n".join(lines)


def model_lines(model_dir: Path) -> list[str]:
    """The card's title, architecture and data sections."""
    config = WeGenConfig.load(model_dir / "config.json")
    weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    return [
        f"# {config.name}",
        "",
        "The bundled model of WeGen desktop: the WeGen architecture (Llama LLM, EVA vision tower, "
        "64 continuous visual tokens, SDXL-layout de-tokenizer) at a small size, trained from "
        "nothing on the procedural shapes world of `training/data/`. It runs a chat turn on a CPU "
        "and is what the app, the CLI and the tests use when no other model is chosen. It knows "
        "only the shapes world: coloured, patterned geometric shapes on plain or gradient "
        "backgrounds in four drawing styles.",
        "",
        "## Intended use and limits",
        "",
        "For trying the app, the CLI and every task offline on any machine, and as the model the "
        "tests and benchmarks run. It has only seen the shapes world: anything else comes out as "
        "shapes. Small model, short training: the evaluation says what it does and does not do "
        "well.",
        "",
        "## Architecture",
        "",
        f"- LLM: Llama, {config.llm.num_layers} layers, width {config.llm.hidden_size}, "
        f"vocabulary {config.llm.vocab_size} (our BPE tokenizer with the official special tokens)",
        f"- vision: EVA, {config.vision.depth} blocks, width {config.vision.width}, "
        f"{config.vision.image_size} px, patch {config.vision.patch_size}, pooled to 64 tokens",
        f"- de-tokenizer: SDXL-layout UNet {list(config.unet.block_out_channels)} "
        f"({config.scheduler.prediction_type} target; the 64 features as cross-attention "
        "context"
        + (", and as an 8×8 grid beside the latents" if config.unet.spatial_context else "")
        + f"), VAE "
        f"{list(config.vae.block_out_channels)} with {config.vae.latent_channels} latent "
        f"channels (latent scale {config.vae.scaling_factor:.4f}), "
        f"{config.decoder.image_size} px, {config.decoder.default_steps} Euler steps, guidance "
        f"{config.decoder.default_guidance}",
        f"- weights: {weights / 1e6:.1f} MB (float16 safetensors)",
        "",
        "## Training data",
        "",
        "Scenes of 1–4 objects (6 shapes, 8 colours, 3 sizes, a 3×3 grid of positions, 4 patterns), "
        "6 backgrounds and 4 drawing styles, rendered on the fly from seeds, with captions from "
        "several templates and synonyms. Every WeGen task is a chat sample in the engine's "
        "template: text-to-image, VQA, captions, multi-turn edits, DIIC sequences, subject-driven, "
        "condition-driven (edge maps, layout sketches), restoration, style transfer and PSR pairs. "
        "Held out from training (evaluation only): the shape×colour pairs green star, purple circle, "
        "blue triangle, orange square, pink hexagon, yellow cross; circle at top left, star in the "
        "centre, triangle at bottom right; pixel style on cream.",
        "",
    ]


def training_lines(runs: Sequence[Path], command: str, history: str | None) -> list[str]:
    """The card's training section: each run's stages, their final losses and wall times."""
    lines = ["## Training procedure", "", "```bash", command, "```", ""]
    if history:
        lines += [history.strip(), ""]
    lines += [
        "| run (plan) | stage | steps × batch | final loss | device | wall time |",
        "|---|---|---|---|---|---|",
    ]
    per_device: dict[str, float] = {}
    for run in runs:
        p = run_plan(run)
        stages, device = run_stages(run)
        for stage in stages:
            c = p.stage(stage)
            row = last_row(run, stage)
            seconds = stage_seconds(run, stage)
            per_device[device] = per_device.get(device, 0.0) + seconds
            extra = ", ".join(
                f"{k} {v:.4f}"
                for k, v in row.items()
                if k not in ("step", "loss", "lr", "seconds") and v == v
            )
            title = STAGE_TITLES[stage]
            if stage == "vae" and p.vae_decoder_only:
                title = "1a · VAE decoder (encoder frozen)"
            lines.append(
                f"| {run.name} ({p.name}) | {title} | {c.steps} × {c.batch_size} | "
                f"{row.get('loss', float('nan')):.4f} ({extra}) | {device} | "
                f"{seconds / 60:.1f} min |"
            )
    compute = "; ".join(f"{minutes / 60:.1f} min on {d}" for d, minutes in per_device.items())
    lines += [
        "",
        f"Compute: {compute} (one process each, PyTorch eager, float32 with TF32 matmuls on "
        "the GPU), AdamW with warmup and cosine decay.",
        "",
    ]
    return lines


def evaluation_lines(report: dict) -> list[str]:
    """The card's evaluation section: each metric of the wegen-eval report with its interval."""
    lines = [
        "## Evaluation",
        "",
        "`wegen-eval` on held-out samples only, through the Engine API as the app runs "
        "it (`wegen-eval --model wegen_resources/models/wegen-tiny --out report.json`). The "
        "judge ceiling is the score the ground-truth image gets (the judge's own "
        "limit); the 95% interval is the range these samples cannot tell apart from the "
        "value (Wilson for shares, a bootstrap otherwise).",
        "",
        "| metric | value | 95% interval | target | met | n | judge ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    scored = Report.from_dict(report)
    for name, m in report["metrics"].items():
        ceiling = m.get("ceiling")
        lines.append(
            f"| {name} | {m['value']:.3f} | {format_interval(scored.interval(name))} | "
            f"{m['op']} {m['target']} | {'yes' if m['passed'] else 'no'} | {m['n']} | "
            f"{'' if ceiling is None else f'{ceiling:.3f}'} |"
        )
    lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--run",
        action="append",
        help="a training run folder; repeat, in order, for a model trained across runs "
        "(default runs/wegen-tiny)",
    )
    ap.add_argument("--report", help="wegen-eval's report.json")
    ap.add_argument("--model", default=str(BUNDLED_DIR))
    ap.add_argument("--history", help="a markdown file: how the runs fit together")
    ap.add_argument("--command", help="the command line shown under Training")
    ap.add_argument("--vision-check", help="training.checks.vision's JSON output")
    ap.add_argument("--decoder-check", help="training.checks.decoder's JSON output")
    ap.add_argument("--generation-check", help="training.checks.generation's JSON output")
    args = ap.parse_args()
    checks = {
        name: json.loads(Path(path).read_text())
        for name, path in (
            ("vision", args.vision_check),
            ("decoder", args.decoder_check),
            ("generation", args.generation_check),
        )
        if path
    }
    report = json.loads(Path(args.report).read_text()) if args.report else None
    history = Path(args.history).read_text(encoding="utf-8") if args.history else None
    runs = [Path(r) for r in (args.run or ["runs/wegen-tiny"])]
    extra = {"command": args.command} if args.command else {}
    text = card(runs, report, Path(args.model), history, checks=checks, **extra)
    (Path(args.model) / "README.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
