"""The one training loop every stage uses, on Hugging Face accelerate.

The same code runs as one CPU process, DDP on one machine, or DeepSpeed / FSDP across machines:
only the accelerate config changes (training/accelerate/). Each stage supplies an *objective* (an
``nn.Module`` whose ``forward(batch)`` returns the loss and a dict of logged values) and its
batches in two halves: ``host_batch(step, rank)`` does the CPU work (rendering, tokenizing) and
runs ahead in DataLoader worker processes when ``workers`` > 0, so an accelerator is not left
waiting for PIL; ``make_batch(step, rank, generator, host)`` does what needs the models (vision
features, latents) on the training device. Both are pure functions of (seed, stage, step, rank),
so a run resumed from a checkpoint sees exactly the batches it would have seen: resume is exact,
with or without workers. Checkpoints are ``accelerator.save_state`` folders plus the step reached.

A stage with ``ema`` keeps an exponential moving average of its trained weights (diffusers'
``EMAModel``, saved in the checkpoint with the rest) and ends with the average in the model: the
checkpoint's ``model.safetensors`` keeps the last step's own weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from torch import nn
from tqdm import tqdm

from training.config import StageConfig

#: host_batch(step, rank) -> CPU data (picklable; may run in a worker process)
HostFn = Callable[[int, int], Any]
#: make_batch(step, rank, generator, host data) -> batch passed to objective.forward
BatchFn = Callable[[int, int, torch.Generator, Any], Any]


class _HostBatches(torch.utils.data.Dataset):
    """Step ``i`` of the stage -> ``host_batch(step, rank)``, for a DataLoader's workers."""

    def __init__(self, host_batch: HostFn, steps: range, rank: int) -> None:
        self.host_batch, self.steps, self.rank = host_batch, steps, rank

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> Any:
        return self.host_batch(self.steps[i], self.rank)


def host_batches(host_batch: HostFn, steps: range, rank: int, workers: int) -> Iterator[Any]:
    """``host_batch`` of each step in order, computed ahead by ``workers`` processes (0: inline)."""
    if workers <= 0:
        return (host_batch(step, rank) for step in steps)
    loader = torch.utils.data.DataLoader(
        _HostBatches(host_batch, steps, rank),
        batch_size=None,  # each item is already a batch
        num_workers=workers,
        prefetch_factor=4,
        # fork: the workers inherit the stage's closures, and never touch the accelerator
        multiprocessing_context="fork",
    )
    return iter(loader)


def stage_generator(seed: int, stage: str, step: int, rank: int) -> torch.Generator:
    """The random numbers of one step of one process: independent of how the run got there."""
    key = f"{seed}/{stage}/{step}/{rank}".encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


def lr_lambda(cfg: StageConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def run_stage(
    name: str,
    objective: nn.Module,
    host_batch: HostFn,
    make_batch: BatchFn,
    cfg: StageConfig,
    out_dir: Path,
    accelerator: Accelerator,
    seed: int = 0,
    stop_after: int | None = None,
    workers: int = 0,
) -> list[dict[str, float]]:
    """Train ``objective`` for ``cfg.steps`` (resuming from ``out_dir/name`` if a checkpoint is
    there). ``stop_after`` ends the run early at that step (tests of resume). Returns the logged
    rows of this invocation."""
    stage_dir = out_dir / name
    ckpt = stage_dir / "checkpoint"
    log_path = stage_dir / "loss_log.jsonl"
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    model, optimizer, scheduler = accelerator.prepare(objective, optimizer, scheduler)
    ema = EMAModel(params, decay=cfg.ema) if cfg.ema else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    start = 0
    if (ckpt / "step.json").is_file():
        accelerator.load_state(str(ckpt))
        start = json.loads((ckpt / "step.json").read_text())["step"]
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    rows: list[dict[str, float]] = []
    rank = accelerator.process_index
    bar = tqdm(
        range(start, end),
        desc=name,
        initial=start,
        total=cfg.steps,
        disable=not accelerator.is_main_process,
        dynamic_ncols=True,
    )
    tic = time.perf_counter()
    model.train()
    hosts = host_batches(host_batch, range(start, end), rank, workers)
    for step, host in zip(bar, hosts, strict=True):
        batch = make_batch(step, rank, stage_generator(seed, name, step, rank), host)
        loss, logs = model(batch)
        accelerator.backward(loss)
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(params)
        values = {"loss": loss.detach(), **{k: v.detach() for k, v in logs.items()}}
        # mean over processes, ignoring NaN (a value a process's batch did not have)
        means = {
            k: torch.nanmean(accelerator.gather(v.float().reshape(1))).item()
            for k, v in values.items()
        }
        row = {
            "step": step + 1,
            **means,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - tic,
        }
        rows.append(row)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
        if accelerator.is_main_process and ((step + 1) % cfg.log_every == 0 or step + 1 == end):
            stage_dir.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        if (step + 1) % cfg.save_every == 0 or step + 1 == end:
            accelerator.wait_for_everyone()
            accelerator.save_state(str(ckpt))
            if accelerator.is_main_process:
                (ckpt / "step.json").write_text(json.dumps({"step": step + 1}))
    bar.close()
    if end == cfg.steps and ema is not None:
        ema.copy_to(params)
    if end == cfg.steps and accelerator.is_main_process:
        (stage_dir / "done.json").write_text(json.dumps({"steps": cfg.steps}))
    accelerator.wait_for_everyone()  # after the marker: every process then sees the stage done
    return rows


def stage_done(out_dir: Path, name: str) -> bool:
    return (out_dir / name / "done.json").is_file()
