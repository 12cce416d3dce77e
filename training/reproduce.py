"""Reproduce a WeGen model from nothing: tokenizer, stages 0-3, export to a model folder.

    python -m training.reproduce                                # the bundled wegen-tiny, 2 CPU cores
    torchrun --nproc_per_node 2 -m training.reproduce ...       # several CPU processes (gloo)
    accelerate launch --config_file training/accelerate/ddp.yaml -m training.reproduce --plan gpu
    accelerate launch --config_file training/accelerate/deepspeed_zero2.yaml -m training.reproduce ...

Every stage checkpoints (exact resume: run the same command again after an interruption) and
appends to ``OUT/<stage>/loss_log.jsonl``. Finished stages are skipped. The trained weights of
finished stages live in ``OUT/model.safetensors``; the export writes our model-folder format.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
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
from training.config import STAGES, StageConfig, TrainingPlan, plan
from training.data.corpus import text_corpus
from training.loop import run_stage, stage_done, stage_generator
from training.stages.decoder import (
    UNetObjective,
    VAEObjective,
    latent_scale,
    make_unet_batch,
    render_batch,
    vae_trainable,
    widen_unet_input,
)
from training.stages.mllm import MLLMObjective, host_mllm_batch, make_mllm_batch
from training.stages.vision import VisionObjective, make_vision_batch

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
    accelerator = new_accelerator()
    device = accelerator.device
    if device.type == "cuda":  # TF32 matmuls and convolutions: float32 training, tensor cores
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    workers = default_workers(device) if workers is None else workers
    tok = build_tokenizer(out, plan_.vocab_size, accelerator)
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
    torch.manual_seed(plan_.seed)
    config = config or wegen_tiny()
    if (out / "config.json").is_file():
        config = WeGenConfig.load(out / "config.json")
    model = WeGenModel(config)
    if (out / STATE).is_file():
        in_channels = model.decoder.unet.config.in_channels
        model.load_state_dict(widen_unet_input(load_file(out / STATE), in_channels))
    model.to(device)
    seed = plan_.seed
    timings: dict[str, float] = {}

    def run(
        name: str,
        objective: torch.nn.Module,
        host_batch,
        make_batch,
        trainable: list[torch.nn.Module],
    ) -> None:
        if stage_done(out, name) or name not in stages:
            return
        tic = time.perf_counter()
        objective.requires_grad_(False)
        for module in trainable:
            module.requires_grad_(True)
        # one Accelerator per stage: its checkpoint then holds exactly this stage's objective
        run_stage(
            name,
            objective,
            host_batch,
            make_batch,
            plan_.stage(name),
            out,
            new_accelerator(),
            seed,
            stop_after,
            workers=workers,
        )
        timings[name] = time.perf_counter() - tic
        if stage_done(out, name):
            save_state(model, out, accelerator)

    size = config.decoder.image_size
    # stage 0: the vision tower
    c = plan_.vision
    vision_objective = VisionObjective(model.vision).to(device)
    run(
        "vision",
        vision_objective,
        lambda step, rank: make_vision_batch(
            config.vision.image_size, c.batch_size, seed, step, rank
        ),
        lambda step, rank, g, host: _to(host, device),
        [vision_objective],
    )
    # stage 1a: the autoencoder, then its latent scale
    c1 = plan_.vae
    run(
        "vae",
        VAEObjective(model.decoder.vae, edge_weight=plan_.vae_edge_weight),
        lambda step, rank: vae_batch(
            size,
            max(8 * config.vae.downsample, int(size * plan_.vae_crop)),
            c1.batch_size,
            config.vae.latent_channels,
            config.vae.downsample,
            seed,
            step,
            rank,
        ),
        lambda step, rank, g, host: _to(host, device),
        vae_trainable(model.decoder.vae, plan_.vae_decoder_only),
    )
    if stage_done(out, "vae") and not (out / "vae" / "scale.json").is_file() and "vae" in stages:
        scale = model.config.vae.scaling_factor  # a frozen encoder keeps its latent scale
        if not plan_.vae_decoder_only:
            scale = latent_scale(
                model.decoder.vae, render_batch(size, 64, "scale", seed, 0, 0).to(device)
            )
        set_config(model, with_vae_scale(model.config, scale))
        if accelerator.is_main_process:
            (out / "vae" / "scale.json").write_text(json.dumps({"scaling_factor": scale}))
        save_state(model, out, accelerator)
    # stage 1b: the de-tokenizer UNet
    c2 = plan_.unet
    run(
        "unet",
        UNetObjective(model.decoder),
        lambda step, rank: render_batch(size, c2.batch_size, "unet", seed, step, rank),
        lambda step, rank, g, host: make_unet_batch(
            model.decoder,
            model.vision,
            host,
            g,
            plan_.feature_noise,
            plan_.condition_dropout,
        ),
        [model.decoder.unet],
    )
    # stages 2 and 3: the LLM and the projectors
    for name in ("mllm", "sft"):
        c3 = plan_.stage(name)
        run(
            name,
            MLLMObjective(
                model,
                plan_.regression_weight,
                plan_.self_feed_passes if plan_.self_feed > 0 else 0,
                plan_.lm_length_power,
            ),
            lambda step, rank, c3=c3, name=name: host_mllm_batch(
                config.vision.image_size,
                tok,
                c3.batch_size,
                c3.task_weights,
                name,
                seed,
                step,
                rank,
            ),
            lambda step, rank, g, host: make_mllm_batch(
                model, tok, host, g, plan_.feature_noise, plan_.self_feed
            ),
            [model.llm, model.input_proj, model.output_proj],
        )
    if accelerator.is_main_process and timings:
        log = out / "timings.jsonl"
        with log.open("a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "plan": plan_.name,
                        "processes": accelerator.num_processes,
                        "device": str(device),
                        "device_name": device_name(device),
                        **timings,
                    }
                )
                + "\n"
            )
    model.eval().requires_grad_(False)
    return model, tok


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
        plan_, **{s: probe(plan_.stage(s)) for s in STAGES}, name=plan_.name + "-probe"
    )
    train(probe_plan, scratch, stages, config=config, workers=workers)
    walls = json.loads((scratch / "timings.jsonl").read_text().splitlines()[-1])
    per_step, overhead = {}, 0.0
    for name in stages:
        rows = [json.loads(r) for r in (scratch / name / "loss_log.jsonl").read_text().splitlines()]
        half = len(rows) // 2  # the second half: workers are past their first batches
        per_step[name] = (rows[-1]["seconds"] - rows[half]["seconds"]) / (len(rows) - 1 - half)
        overhead += walls[name] - rows[-1]["seconds"]  # set-up and the final checkpoint
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


def vae_batch(
    size: int,
    crop: int,
    batch_size: int,
    channels: int,
    down: int,
    seed: int,
    step: int,
    rank: int,
) -> dict[str, torch.Tensor]:
    """Random ``crop``-pixel crops of renders (the autoencoder is convolutional: smaller crops,
    cheaper steps) and the posterior noise."""
    g = stage_generator(seed, "vae/host", step, rank)
    pixels = render_batch(size, batch_size, "vae", seed, step, rank, degraded=0.2)
    y, x = (int(v) for v in torch.randint(0, size - crop + 1, (2,), generator=g))
    pixels = pixels[..., y : y + crop, x : x + crop]
    return {
        "pixels": pixels,
        "noise": torch.randn((batch_size, channels, crop // down, crop // down), generator=g),
    }


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def checksum(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


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
