"""One chat turn at full size on a GPU: eager vs optimised per phase, and peak memory per mode.

Not a test. Builds the preset with random weights (parameters on the meta device, then
``to_empty`` on the target device and a cheap normal init; buffers such as the rotary tables are
kept from the build), so nothing is downloaded and the speed is that of trained weights.

    python benchmarks/gpu_turn.py --out gpu_turn.json                  # wegen-7b on cuda, ≤ 8 min
    python benchmarks/gpu_turn.py --preset wegen-tiny --device cpu --quick --out /tmp/t.json

1. eager: the engine's reference path (fp16 on CUDA, eager backend: a dynamic KV cache and a
   separate stream for embedding CFG, VAE in float32), one turn of ``--text-tokens`` text tokens
   + 64 image tokens (embedding CFG ``--embedding-cfg``, 2 by default so the unconditional stream
   runs) + ``--steps`` steps + VAE, after a warm-up turn.
2. optimised: the engine's compiled backend (what ``backend: auto`` picks on CUDA): the token
   loop on a static KV cache with the unconditional stream as a second row of the same batch,
   its decode step captured as a CUDA graph (torch.compile reduce-overhead), the UNet compiled;
   plus bf16 everywhere (the VAE too: bf16 has float32's range, so the SDXL VAE does not
   overflow), the UNet in channels-last and diffusers' SDPA attention processors. The UNet's CFG
   runs as one batch of 2 in both. On the CPU (the smoke run) nothing is compiled: the static
   loop runs eager (``loop="static"``), so every line of the GPU run has run once.
3. memory: each mode as the engine applies it (`engine.runtime.apply_memory_mode`): normal with
   every part resident; low with accelerate's offload hooks (each part onto the device when it
   runs); int8 = low with the LLM quantized by the engine (torchao weight-only when installed,
   else, on CUDA, a small per-channel int8 linear defined here). Per phase,
   ``torch.cuda.max_memory_allocated`` is printed beside the plan's estimate.

Phases: text (text tokens, prefill included), image_tokens, denoise (UNet steps), vae, total.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import init_empty_weights
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import api
from engine.chat_engine import WeGenEngine
from engine.config import preset
from engine.folder import place
from engine.generate import LoopOptions, Prompt, generate
from engine.model import WeGenModel
from engine.placement import GIB, MODES, module_parts, plan
from engine.runtime import PRECISIONS, Runtime, apply_memory_mode, int8_method, synchronize
from engine.testing import tiny_tokenizer
from engine.tokenizer import WeGenTokenizer

PROMPT = "a large red striped circle at the top left and a small blue star in the centre"


# --- the model ----------------------------------------------------------------------------------
def random_model(name: str, device: torch.device, dtype: torch.dtype) -> WeGenModel:
    """The preset at full size with random weights, built without materialising it twice."""
    with init_empty_weights(include_buffers=False):  # parameters on meta, buffers real
        model = WeGenModel(preset(name))
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    model.to(dtype)
    model.to_empty(device=device)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
        for n, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.02)
            elif n.endswith("weight"):  # norm scales
                p.fill_(1.0)
            else:
                p.zero_()
    return place(model, Runtime(device, dtype))


class Int8Linear(nn.Module):
    """Weight-only int8 with one scale per output row (when torchao is not installed)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach()
        scale = (w.abs().amax(dim=1).float() / 127).clamp(min=1e-8)  # (out,)
        self.register_buffer("weight", (w.float() / scale[:, None]).round().to(torch.int8))
        self.register_buffer("scale", scale.to(w.dtype))
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight.to(x.dtype)) * self.scale
        return out if self.bias is None else out + self.bias


def quantize_llm(model: WeGenModel, runtime: Runtime) -> str:
    """The LLM's linear weights to int8 in place, as the engine's int8 mode does where it can;
    returns which implementation did it."""
    from engine.errors import RuntimeChoiceError
    from engine.runtime import quantize_llm_int8

    try:
        method = int8_method(runtime.device)
        quantize_llm_int8(model.llm, runtime)
        return f"the engine's int8 mode ({method})"
    except RuntimeChoiceError as e:  # a GPU without torchao (the device machine's image)
        print(f"{e}; using the int8 linear here")
    except Exception as e:  # a torchao built for another torch: say so, use ours
        print(f"torchao failed ({type(e).__name__}: {e}); using the int8 linear here")
    for parent in list(model.llm.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, child_name, Int8Linear(child))
    return "per-channel int8 linear (benchmarks/gpu_turn.py)"


# --- timing one turn --------------------------------------------------------------------------
def time_turn(
    engine: WeGenEngine,
    steps: int,
    text_tokens: int,
    runs: int,
    warmup: bool = True,
    embedding_cfg: float = 2.0,
) -> dict[str, float]:
    """Median phase seconds over ``runs`` turns after a warm-up turn (which also compiles)."""
    request = api.Request(
        api.Turn.user(PROMPT),
        task=api.Task.GENERATE,
        settings=api.GenerationSettings(
            seed=0,
            steps=steps,
            max_new_tokens=text_tokens,
            previews=False,
            embedding_cfg=embedding_cfg,
        ),
    )
    samples: list[dict[str, float]] = []
    warm = 0.0
    for i in range(-1 if warmup else 0, runs):
        events: list[api.Event] = []
        start = time.perf_counter()
        engine.run(request, events.append, threading.Event())
        elapsed = time.perf_counter() - start
        if not isinstance(events[-1], api.Finished):
            raise RuntimeError(f"the turn failed: {events[-1]}")
        if i < 0:
            warm = elapsed
            continue
        t = events[-1].timings
        samples.append(
            {
                "text": t.text,
                "image_tokens": t.image_tokens,
                "denoise": t.denoise,
                "vae": t.vae,
                "total": elapsed,
            }
        )
    out = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    out["warmup_turn"] = warm
    if engine.runtime is not None and engine.runtime.device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(engine.runtime.device) / GIB
    return out


def optimise(model: WeGenModel, dtype: torch.dtype, vae_precision: str) -> list[str]:
    """Apply the outside-the-engine options; returns what was applied, in words."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    applied = []
    model.to(dtype)
    applied.append(f"{dtype} weights")
    if vae_precision == "fp32":
        model.decoder.vae.to(torch.float32)
    applied.append(f"VAE in {vae_precision if dtype != torch.float32 else 'fp32'}")
    model.decoder.unet.to(memory_format=torch.channels_last)
    applied.append("UNet channels-last")
    model.decoder.unet.set_attn_processor(AttnProcessor2_0())
    model.decoder.vae.set_attn_processor(AttnProcessor2_0())
    applied.append("SDPA attention processors (UNet, VAE)")
    applied.append(f"LLM attention: {getattr(model.llm.config, '_attn_implementation', '?')}")
    applied.append("UNet CFG as one batch of 2 (the engine's own)")
    return applied


# --- memory per mode and phase ----------------------------------------------------------------
def arrange(model: WeGenModel, resident: set[str], device: torch.device) -> None:
    """Put the ``resident`` parts on ``device`` and the others on the CPU."""
    for name, parts in module_parts(model).items():
        for m in parts:
            m.to(device if name in resident else torch.device("cpu"))
    if device.type == "cuda":
        torch.cuda.empty_cache()


def phase_runs(
    model: WeGenModel,
    tok: WeGenTokenizer,
    device: torch.device,
    context: int,
    text_tokens: int,
    cfg_batch: int,
) -> dict[str, Callable[[], object]]:
    """One call per measured phase: a prompt filling ``context`` tokens with the reply, the UNet
    at batch 2 for two steps, one VAE decode. The LLM's text and image tokens share one run."""
    cfg = model.config
    ids = torch.randint(10, 500, (context - text_tokens - 66,))
    prompt = Prompt(ids, torch.zeros_like(ids, dtype=torch.bool), None)
    opts = LoopOptions(
        max_new_tokens=text_tokens, wants_image=True, embedding_cfg=2.0 if cfg_batch == 2 else 1.0
    )

    def vision() -> object:
        dtype = next(model.vision.parameters()).dtype
        size = cfg.vision.image_size
        return model.vision(torch.rand(1, 3, size, size, device=device, dtype=dtype))

    def llm() -> object:
        return generate(model, tok, [prompt], opts, [0])

    def denoise() -> object:
        latent = cfg.latent_size
        x = torch.randn(2, cfg.vae.latent_channels, latent, latent, device=device)
        features = torch.randn(2, cfg.num_image_tokens, cfg.feature_dim, device=device)
        t = torch.full((2,), 500, device=device)
        time_ids = torch.zeros(2, 6, device=device)
        for _ in range(2):
            model.decoder(x, t, features, time_ids)

    def vae() -> object:
        latent = cfg.latent_size
        return model.decoder.decode_latents(
            torch.randn(1, cfg.vae.latent_channels, latent, latent, device=device)
        )

    return {"vision": vision, "llm": llm, "denoise": denoise, "vae": vae}


def measure_mode(
    model: WeGenModel, mode: str, device: torch.device, runs: dict[str, Callable[[], object]]
) -> dict[str, int | None]:
    """Peak allocated bytes per phase in ``mode`` (None off CUDA). normal: every part resident;
    low and int8: the engine's offload hooks (`apply_memory_mode`, attached by the caller) bring
    each part in as its phase runs, so the peak includes the move."""
    peaks: dict[str, int | None] = {}
    if mode == "normal":
        arrange(model, set(module_parts(model)), device)
    for phase, run in runs.items():
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            run()
        synchronize(device)
        peaks[phase] = (
            int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
        )
    return peaks


def planned(p, mode: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    per = dict(p.mode(mode).per_phase)
    return {
        "vision": per["vision"],
        "llm": max(per["text"], per["image_tokens"]),
        "denoise": per["denoise"],
        "vae": per["vae"],
    }


# --- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="wegen-7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default=None, help="eager baseline (default fp16 on CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--text-tokens", type=int, default=20)
    parser.add_argument("--context", type=int, default=1024, help="tokens for the memory runs")
    parser.add_argument("--cfg-batch", type=int, default=1, choices=(1, 2))
    parser.add_argument(
        "--embedding-cfg", type=float, default=2.0, help="the timed turns' LLM CFG (1 = off)"
    )
    parser.add_argument("--runs", type=int, default=2, help="timed turns after the warm-up")
    parser.add_argument("--vae", default="bf16", choices=("bf16", "fp32"), help="optimised VAE")
    parser.add_argument("--compile", default=None, action=argparse.BooleanOptionalAction)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--quick", action="store_true", help="2 steps, 4 text tokens, 1 run")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: 1 for --quick on the CPU)"
    )
    parser.add_argument("--out", default="gpu_turn.json")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu --preset wegen-tiny --quick")
    precision = args.precision or ("fp16" if device.type == "cuda" else "fp32")
    compile_unet = args.compile if args.compile is not None else device.type == "cuda"
    config = preset(args.preset)
    steps = args.steps or (2 if args.quick else config.decoder.default_steps)
    text_tokens = 4 if args.quick else args.text_tokens
    runs = 1 if args.quick else args.runs
    warmup = not args.quick or compile_unet  # a compiled run's first turn compiles
    context = min(args.context, config.llm.max_positions)
    if args.quick:
        context = min(context, 128)
    modes = [m for m in args.modes.split(",") if m]
    threads = args.threads or (1 if args.quick and device.type == "cpu" else None)
    if threads:  # a smoke run on a shared CPU: two threads on busy cores wait on each other
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    started = time.perf_counter()
    result: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "preset": config.name,
        "image_size": config.decoder.image_size,
        "steps": steps,
        "text_tokens": text_tokens,
        "image_tokens": config.num_image_tokens,
    }

    out = Path(args.out)

    def log(text: str) -> None:
        """Print a step and save what is measured so far (a timeout still leaves a JSON)."""
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", flush=True)
        result["seconds"] = time.perf_counter() - started
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    # 1. build
    dtype = PRECISIONS[precision]
    model = random_model(args.preset, device, dtype)
    tok = tiny_tokenizer()
    log(f"built {config.name} with random weights on {device} ({precision})")

    # 2. eager
    engine = WeGenEngine()
    engine.attach(model, tok, Runtime(device, dtype, "eager"), f"{config.name} (random)")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result["eager"] = {
        "precision": precision,
        **time_turn(engine, steps, text_tokens, runs, warmup, args.embedding_cfg),
    }
    log("eager " + _phases(result["eager"]))

    # 3. memory per mode (eager modules at the baseline precision)
    p = plan(config, precision, context=context, cfg_batch=args.cfg_batch)
    result["plan"] = {
        "precision": precision,
        "context": context,
        "cfg_batch": args.cfg_batch,
        "peaks": {m.mode: m.peak_bytes for m in p.modes},
        "report": p.report(),
    }
    runs_by_phase = phase_runs(model, tok, device, context, text_tokens, args.cfg_batch)
    memory: dict = {}
    result["memory"] = memory
    if "normal" in modes:
        memory["normal"] = _memory_entry(
            measure_mode(model, "normal", device, runs_by_phase), p, "normal"
        )
        log("memory normal: " + _memory_line(memory["normal"]))

    # 4. optimised
    # bf16 where the device has it; on the CPU (the smoke run) bf16 is slow: keep the baseline
    fast_dtype = torch.bfloat16 if device.type == "cuda" else dtype
    applied = optimise(model, fast_dtype, args.vae)
    backend = "compiled" if compile_unet else "eager"
    fast_runtime = Runtime(device, fast_dtype, backend, loop="static")
    applied.append("token loop: static KV cache, the embedding-CFG stream in the same batch")
    if fast_runtime.captures_decode:
        applied.append("decode step captured (torch.compile reduce-overhead: CUDA graphs)")
    if compile_unet:
        applied.append("--backend compiled: torch.compile of the UNet")
    unet = model.decoder.unet
    fast = WeGenEngine()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fast.attach(model, tok, fast_runtime, f"{config.name} (random)")
    try:
        timings = time_turn(fast, steps, text_tokens, runs, warmup, args.embedding_cfg)
    except Exception as e:  # a compiler failure must not lose the rest of the run
        if not compile_unet:
            raise
        log(f"the compiled turn failed ({type(e).__name__}: {e}); timing without compile")
        applied.append(f"torch.compile FAILED: {type(e).__name__}: {e}")
        model.decoder.unet = unet
        fast_runtime = Runtime(device, fast_dtype, "eager", loop="static")
        fast.attach(model, tok, fast_runtime, f"{config.name} (random)")
        timings = time_turn(fast, steps, text_tokens, runs, warmup, args.embedding_cfg)
    result["optimised"] = {
        "precision": Runtime(device, fast_dtype).precision,
        "applied": applied,
        **timings,
    }
    log("optimised " + _phases(result["optimised"]))
    result["speedup"] = {
        k: result["eager"][k] / v
        for k, v in result["optimised"].items()
        if isinstance(v, float) and v > 0 and k not in ("warmup_turn", "peak_gib")
    }

    # 5. low and int8 memory, as the engine applies them, on the uncompiled modules at the
    # baseline precision again: the offload hooks first, then (int8) the LLM quantized under them
    del fast, engine
    model.decoder.unet = unet
    model = place(model, Runtime(device, dtype))
    model.decoder.unet.to(memory_format=torch.contiguous_format)
    if "low" in modes or "int8" in modes:
        apply_memory_mode(model, Runtime(device, dtype, memory="low"))
        runs_by_phase = phase_runs(model, tok, device, context, text_tokens, args.cfg_batch)
    if "low" in modes:
        memory["low"] = _memory_entry(measure_mode(model, "low", device, runs_by_phase), p, "low")
        log("memory low (offload hooks): " + _memory_line(memory["low"]))
    if "int8" in modes:
        result["int8"] = quantize_llm(model, Runtime(device, dtype, memory="int8"))
        memory["int8"] = _memory_entry(
            measure_mode(model, "int8", device, runs_by_phase), p, "int8"
        )
        log(f"memory int8 ({result['int8']}): " + _memory_line(memory["int8"]))
    print_table(result)
    result["complete"] = True
    log(f"wrote {out}")
    return result


def _memory_entry(measured: dict[str, int | None], p, mode: str) -> dict:  # type: ignore[no-untyped-def]
    plan_peaks = planned(p, mode)
    return {phase: {"measured": measured[phase], "plan": plan_peaks[phase]} for phase in measured}


def _memory_line(entry: dict) -> str:
    def fmt(v: int | None) -> str:
        return "-" if v is None else f"{v / GIB:.2f}"

    return "  ".join(f"{ph}={fmt(v['measured'])}/{fmt(v['plan'])} GiB" for ph, v in entry.items())


def _phases(t: dict) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in t.items() if isinstance(v, float))


def print_table(r: dict) -> None:
    print(f"\n{r['preset']} on {r['device']} ({r['date']}), torch {r['torch']}")
    print(
        f"one turn: {r['text_tokens']} text tokens + {r['image_tokens']} image tokens + "
        f"{r['steps']} steps + VAE at {r['image_size']}²"
    )
    print(f"{'phase':<14}{'eager s':>10}{'optimised s':>13}{'speed-up':>10}")
    for k in ("text", "image_tokens", "denoise", "vae", "total"):
        e, o = r["eager"][k], r["optimised"][k]
        ratio = f"{e / o:.2f}x" if o > 0 else "-"
        print(f"{k:<14}{e:>10.3f}{o:>13.3f}{ratio:>10}")
    print(f"warm-up turn (compiles): {r['optimised']['warmup_turn']:.1f} s")
    if "peak_gib" in r["eager"] and "peak_gib" in r["optimised"]:
        print(
            f"peak memory of a turn: eager {r['eager']['peak_gib']:.2f} GiB, "
            f"optimised {r['optimised']['peak_gib']:.2f} GiB"
        )
    print("\npeak memory per mode and phase, measured / plan (GiB):")
    for mode, entry in r["memory"].items():
        print(f"  {mode:<7} {_memory_line(entry)}")


if __name__ == "__main__":
    main()
