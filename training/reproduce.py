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
from training.config import STAGES, TrainingPlan, plan
from training.data.corpus import text_corpus
from training.loop import run_stage, stage_done
from training.stage0_vision import VisionObjective, make_vision_batch
from training.stage1_decoder import (
    UNetObjective,
    VAEObjective,
    latent_scale,
    make_unet_batch,
    render_batch,
)
from training.stage2_mllm import MLLMObjective, make_mllm_batch

STATE = "model.safetensors"


def new_accelerator() -> Accelerator:
    # a batch without generated images leaves output_proj unused: DDP must allow that
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # without an accelerator, run on the CPU (several processes under torchrun use gloo)
    return Accelerator(
        cpu=not (torch.cuda.is_available() or is_npu_available()), kwargs_handlers=[ddp]
    )


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
) -> tuple[WeGenModel, WeGenTokenizer]:
    accelerator = new_accelerator()
    device = accelerator.device
    tok = build_tokenizer(out, plan_.vocab_size, accelerator)
    torch.manual_seed(plan_.seed)
    config = config or wegen_tiny()
    if (out / "config.json").is_file():
        config = WeGenConfig.load(out / "config.json")
    model = WeGenModel(config)
    if (out / STATE).is_file():
        model.load_state_dict(load_file(out / STATE))
    model.to(device)
    seed = plan_.seed
    timings: dict[str, float] = {}

    def run(
        name: str, objective: torch.nn.Module, make_batch, trainable: list[torch.nn.Module]
    ) -> None:
        if stage_done(out, name) or name not in stages:
            return
        tic = time.perf_counter()
        objective.requires_grad_(False)
        for module in trainable:
            module.requires_grad_(True)
        # one Accelerator per stage: its checkpoint then holds exactly this stage's objective
        run_stage(
            name, objective, make_batch, plan_.stage(name), out, new_accelerator(), seed, stop_after
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
        lambda step, rank, g: _to(
            make_vision_batch(config.vision.image_size, c.batch_size, seed, step, rank), device
        ),
        [vision_objective],
    )
    # stage 1a: the autoencoder, then its latent scale
    c1 = plan_.vae
    run(
        "vae",
        VAEObjective(model.decoder.vae),
        lambda step, rank, g: _to(
            vae_batch(
                size,
                c1.batch_size,
                config.vae.latent_channels,
                config.vae.downsample,
                seed,
                step,
                rank,
                g,
            ),
            device,
        ),
        [model.decoder.vae],
    )
    if stage_done(out, "vae") and not (out / "vae" / "scale.json").is_file() and "vae" in stages:
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
        lambda step, rank, g: make_unet_batch(
            model.decoder,
            model.vision,
            c2.batch_size,
            seed,
            step,
            rank,
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
            MLLMObjective(model, plan_.regression_weight),
            lambda step, rank, g, c3=c3, name=name: make_mllm_batch(
                model,
                tok,
                c3.batch_size,
                c3.task_weights,
                name,
                seed,
                step,
                rank,
                g,
                plan_.feature_noise,
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
                        **timings,
                    }
                )
                + "\n"
            )
    model.eval().requires_grad_(False)
    return model, tok


def vae_batch(
    size: int,
    batch_size: int,
    channels: int,
    down: int,
    seed: int,
    step: int,
    rank: int,
    g: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Random half-size crops of renders (the autoencoder is convolutional: 4x cheaper steps)."""
    pixels = render_batch(size, batch_size, "vae", seed, step, rank, degraded=0.2)
    crop = size // 2
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
    ap.add_argument("--plan", default="cpu_2h", help="cpu_2h (default), gpu or smoke")
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
    model, tok = train(plan(args.plan), out, stages, args.stop_after)
    from accelerate import PartialState

    state = PartialState()
    if args.checksum:
        (out / f"checksum-{state.process_index}.txt").write_text(checksum(model))
    if args.export and state.is_main_process and all(stage_done(out, s) for s in STAGES):
        folder = save_model_folder(model, tok, args.export, dtype=torch.float16)
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
