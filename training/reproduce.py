"""Reproduce a WeGen model from nothing: tokenizer, stages 0-3, export to a model folder.

    python -m training.reproduce                                # the bundled wegen-tiny, 2 CPU cores
    torchrun --nproc_per_node 2 -m training.reproduce ...       # several CPU processes (gloo)
    accelerate launch --config_file training/accelerate/ddp.yaml -m training.reproduce --plan gpu
    accelerate launch --config_file training/accelerate/deepspeed_zero2.yaml -m training.reproduce ...

The stages run in the order of training/stages/pipeline.py (vision, vae, unet, mllm, sft). Every
stage checkpoints (exact resume: run the same command again after an interruption) and
appends to ``OUT/<stage>/loss_log.jsonl``. Finished stages are skipped. The trained weights of
finished stages live in ``OUT/model.safetensors``; the export writes our model-folder format.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, is_npu_available
from safetensors.torch import load_file, save_file

from engine.bundled import BUNDLED_DIR
from engine.config import WeGenConfig, wegen_tiny
from engine.folder import save_model_folder
from engine.model import WeGenModel
from engine.tokenizer import WeGenTokenizer, train_tokenizer
from training.checksum import checksum
from training.config import STAGES, StageConfig, TrainingPlan, plan
from training.data.corpus import text_corpus
from training.loop import run_stage, stage_done
from training.stages.decoder import latent_scale, render_batch, widen_unet_input
from training.stages.pipeline import PIPELINE, Run, Stage
from training.stages.scene_pool import pool_build_seconds, pool_path

STATE = "model.safetensors"


def new_accelerator() -> Accelerator:
    # a batch without generated images leaves output_proj unused: DDP must allow that
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # without an accelerator, run on the CPU (several processes under torchrun use gloo)
    return Accelerator(
        cpu=not (torch.cuda.is_available() or is_npu_available()), kwargs_handlers=[ddp]
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"{torch.get_num_threads()} CPU threads"
    return str(device)


def default_workers(device: torch.device) -> int:
    """Batch-rendering worker processes: none on the CPU (they would compete with training for
    the same cores), most of the cores when an accelerator does the arithmetic."""
    if device.type == "cpu":
        return 0
    return max(0, min(12, (os.cpu_count() or 1) - 3))


def build_tokenizer(out: Path, vocab_size: int, accelerator: Accelerator) -> WeGenTokenizer:
    path = out / "tokenizer.json"
    if accelerator.is_main_process and not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        train_tokenizer(text_corpus(samples_per_kind=300, seed=0), vocab_size).save(path)
    accelerator.wait_for_everyone()
    return WeGenTokenizer.load(path)


def with_vae_scale(config: WeGenConfig, scale: float) -> WeGenConfig:
    return config.replace(vae=dataclasses.replace(config.vae, scaling_factor=scale))


def set_config(model: WeGenModel, config: WeGenConfig) -> None:
    model.config = config
    model.decoder.config = config


def save_state(model: WeGenModel, out: Path, accelerator: Accelerator) -> None:
    if accelerator.is_main_process:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / (STATE + ".tmp")))
        (out / (STATE + ".tmp")).replace(out / STATE)
        model.config.save(out / "config.json")
    accelerator.wait_for_everyone()


def train(
    plan_: TrainingPlan,
    out: Path,
    stages: tuple[str, ...] = STAGES,
    stop_after: int | None = None,
    config: WeGenConfig | None = None,
    workers: int | None = None,
) -> tuple[WeGenModel, WeGenTokenizer]:
    """Train ``stages`` of ``plan_`` in ``out`` (resuming what is there; finished stages are
    skipped) and return the model and its tokenizer."""
    accelerator = new_accelerator()
    device = accelerator.device
    if device.type == "cuda":  # TF32 matmuls and convolutions: float32 training, tensor cores
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    workers = default_workers(device) if workers is None else workers
    tok = build_tokenizer(out, plan_.vocab_size, accelerator)
    record_plan(plan_, out, accelerator)
    torch.manual_seed(plan_.seed)
    config = config or wegen_tiny()
    if (out / "config.json").is_file():
        config = WeGenConfig.load(out / "config.json")
    model = WeGenModel(config)
    if (out / STATE).is_file():
        in_channels = model.decoder.unet.config.in_channels
        model.load_state_dict(widen_unet_input(load_file(out / STATE), in_channels))
    model.to(device)
    run = Run(model, tok, config, plan_, device, out)
    timings: dict[str, float] = {}
    for name, build in PIPELINE.items():
        stage = build(run)  # built in turn, finished or not: it may draw random weights
        if name in stages and not stage_done(out, name):
            timings[name] = train_stage(stage, run, out, accelerator, stop_after, workers)
        if name == "vae" and name in stages:
            settle_latent_scale(run, out, accelerator)
    if accelerator.is_main_process and timings:
        log_timings(out, plan_, accelerator, timings)
    model.eval().requires_grad_(False)
    return model, tok


def record_plan(plan_: TrainingPlan, out: Path, accelerator: Accelerator) -> None:
    """Write ``plan_`` to ``out/plan.json``, or refuse a folder that holds a run of another."""
    recorded = out / "plan.json"
    if recorded.is_file() and TrainingPlan.from_json(recorded.read_text()) != plan_:
        raise SystemExit(
            f"{out} holds a run of another plan: resume it with --plan {recorded}, "
            "or choose a new --out"
        )
    # every process has read plan.json before the main one writes it (a resumed run rewriting it
    # while another process read it would hand that process half a file)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and not recorded.is_file():
        recorded.write_text(plan_.to_json(), encoding="utf-8")


def train_stage(
    stage: Stage,
    run: Run,
    out: Path,
    accelerator: Accelerator,
    stop_after: int | None,
    workers: int,
) -> float:
    """Train one stage (only its ``trainable`` modules learn), save the model's state when it
    is finished, and return the seconds it took."""
    tic = time.perf_counter()
    stage.objective.requires_grad_(False)
    for module in stage.trainable:
        module.requires_grad_(True)
    # one Accelerator per stage: its checkpoint then holds exactly this stage's objective
    run_stage(
        stage.name,
        stage.objective,
        stage.host_batch,
        stage.make_batch,
        run.plan.stage(stage.name),
        out,
        new_accelerator(),
        run.plan.seed,
        stop_after,
        workers=workers,
    )
    seconds = time.perf_counter() - tic
    if stage_done(out, stage.name):
        save_state(run.model, out, accelerator)
    return seconds


def settle_latent_scale(run: Run, out: Path, accelerator: Accelerator) -> None:
    """Once stage 1a is done, measure the VAE's latent scale and write it into the config (once:
    ``out/vae/scale.json`` records it). A frozen encoder keeps its scale."""
    if not stage_done(out, "vae") or (out / "vae" / "scale.json").is_file():
        return
    model = run.model
    scale = model.config.vae.scaling_factor
    if not run.plan.vae_decoder_only:
        size = run.config.decoder.image_size
        pixels = render_batch(size, 64, "scale", run.plan.seed, 0, 0).to(run.device)
        scale = latent_scale(model.decoder.vae, pixels)
    set_config(model, with_vae_scale(model.config, scale))
    if accelerator.is_main_process:
        (out / "vae" / "scale.json").write_text(json.dumps({"scaling_factor": scale}))
    save_state(model, out, accelerator)


def log_timings(
    out: Path, plan_: TrainingPlan, accelerator: Accelerator, timings: dict[str, float]
) -> None:
    """Append the seconds each stage took to ``out/timings.jsonl``."""
    device = accelerator.device
    row = {
        "plan": plan_.name,
        "processes": accelerator.num_processes,
        "device": str(device),
        "device_name": device_name(device),
        **timings,
    }
    with (out / "timings.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def fit_to_budget(
    plan_: TrainingPlan,
    minutes: float,
    out: Path,
    stages: tuple[str, ...] = STAGES,
    config: WeGenConfig | None = None,
    workers: int | None = None,
) -> TrainingPlan:
    """``plan_`` with its steps scaled so that ``stages`` train in about ``minutes`` on this
    machine (`budget_steps`). Each stage is first timed for a few dozen steps on a throwaway
    model (``out/budget-probe``, removed afterwards); batch sizes are kept."""
    if minutes <= 0:
        raise ValueError("--minutes must be positive")
    scratch = out / "budget-probe"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    accelerator = new_accelerator()
    build_tokenizer(out, plan_.vocab_size, accelerator)
    shutil.copy(out / "tokenizer.json", scratch / "tokenizer.json")
    probe_steps = max(
        16, 2 * (default_workers(accelerator.device) if workers is None else workers) + 12
    )

    def probe(c: StageConfig) -> StageConfig:
        return dataclasses.replace(
            c, steps=probe_steps, warmup=1, save_every=probe_steps, log_every=1
        )

    probe_plan = dataclasses.replace(
        plan_,
        **{s: probe(plan_.stage(s)) for s in STAGES},
        name=plan_.name + "-probe",
        unet_pool=min(plan_.unet_pool, 2 * plan_.unet.batch_size),  # timed small, then scaled
    )
    train(probe_plan, scratch, stages, config=config, workers=workers)
    walls = json.loads((scratch / "timings.jsonl").read_text().splitlines()[-1])
    per_step, overhead = {}, 0.0
    for name in stages:
        rows = [json.loads(r) for r in (scratch / name / "loss_log.jsonl").read_text().splitlines()]
        half = len(rows) // 2  # the second half: workers are past their first batches
        per_step[name] = (rows[-1]["seconds"] - rows[half]["seconds"]) / (len(rows) - 1 - half)
        overhead += walls[name] - rows[-1]["seconds"]  # set-up and the final checkpoint
    if "unet" in stages and plan_.unet_pool:  # encoding the pool: in the first step's time
        scenes, seconds = pool_build_seconds(pool_path(scratch, accelerator.process_index))
        overhead += seconds / scenes * plan_.unet_pool
    if accelerator.is_main_process:
        shutil.rmtree(scratch, ignore_errors=True)
    accelerator.wait_for_everyone()
    # 10% margin for the unmeasured
    fitted = budget_steps(plan_, per_step, 0.9 * minutes * 60 - overhead, stages)
    if accelerator.is_main_process:
        print(
            "budget: "
            + ", ".join(f"{s} {per_step[s] * 1e3:.0f} ms/step" for s in stages)
            + "; steps: "
            + ", ".join(f"{s} {fitted.stage(s).steps}" for s in stages)
        )
    return dataclasses.replace(fitted, name=f"{plan_.name}@{minutes:g}min")


def budget_steps(
    plan_: TrainingPlan,
    per_step: dict[str, float],
    seconds: float,
    stages: tuple[str, ...] = STAGES,
) -> TrainingPlan:
    """``plan_`` with its steps scaled so that ``stages`` take ``seconds`` at ``per_step``
    seconds a step: one factor for every stage, except that a plan cut short keeps stage 0's
    planned steps while they take at most half the time. Stage 0 is the cheapest stage on an
    accelerator and every later stage reads its features: scaled with the rest, a 7-minute GPU
    budget once gave it 11 seconds, and that tower never learnt to tell the shapes apart."""
    cost = {s: plan_.stage(s).steps * per_step[s] for s in stages}
    factor = seconds / sum(cost.values())
    keep = factor < 1 and "vision" in cost and len(cost) > 1 and cost["vision"] <= seconds / 2
    if keep:
        factor = (seconds - cost["vision"]) / (sum(cost.values()) - cost["vision"])
    fitted = plan_.scaled(steps=max(1e-6, factor))
    return dataclasses.replace(fitted, vision=plan_.vision) if keep else fitted


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--plan",
        default="cpu_2h",
        help="cpu_2h (default), gpu, smoke, or the plan.json of an earlier run (to repeat it)",
    )
    ap.add_argument(
        "--minutes",
        type=float,
        help="scale the plan's steps to train in about this many minutes on this machine "
        "(measured first; the fitted plan is written to OUT/plan.json)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        help="batch-rendering processes (default: 0 on a CPU, most cores with an accelerator)",
    )
    ap.add_argument(
        "--out", default="runs/wegen-tiny", help="checkpoints, logs and the training state"
    )
    ap.add_argument(
        "--export", default=str(BUNDLED_DIR), help="model folder to write at the end ('' to skip)"
    )
    ap.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES)
    )
    ap.add_argument("--stop-after", type=int, help="stop every stage at this step (resume tests)")
    ap.add_argument(
        "--checksum", action="store_true", help="write each process's parameter checksum"
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    stages = tuple(s for s in args.stages.split(",") if s)
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(
            f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGES)}"
        )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # worker processes are forked
    try:
        plan_ = plan(args.plan)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if args.minutes is not None:
        if (out / "plan.json").is_file():
            raise SystemExit(
                f"{out} already holds a run: resume it with --plan {out / 'plan.json'}, "
                "or choose a new --out"
            )
        plan_ = fit_to_budget(plan_, args.minutes, out, stages, workers=args.workers)
    model, tok = train(plan_, out, stages, args.stop_after, workers=args.workers)
    from accelerate import PartialState

    state = PartialState()
    if args.checksum:
        (out / f"checksum-{state.process_index}.txt").write_text(checksum(model))
    if args.export and state.is_main_process and all(stage_done(out, s) for s in STAGES):
        folder = save_model_folder(model, tok, args.export, dtype=torch.float16)
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
