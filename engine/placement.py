"""Where the model's parts live, and how much device memory each memory mode needs.

A `PlacementPlan` is computed from a `WeGenConfig` alone: the model is built on the meta device
(shapes, no weights, no memory), so the plan for the 7B preset costs a few seconds on any machine.

    python -m engine.placement --preset wegen-7b --precision fp16 --gpu-gib 24

What is counted exactly:
  * parameter bytes per module (llm, vision, projectors, unet, vae) at the chosen precision, with
    the VAE in float32 when ``vae.force_upcast`` (as `engine.folder.place` does), and the
    floating buffers (rotary tables) at the same dtype;
  * for ``int8``, the LLM's ``nn.Linear`` weights at one byte each plus one scale per output
    channel in the compute dtype (weight-only, per-channel, as torchao's int8 weight-only
    quantization stores them); its embedding and norms stay in the compute dtype;
  * the KV cache: 2 (K and V) x layers x kv heads x head width x tokens x streams, ``cfg_batch``
    streams in the image-token phase as a static cache holding the conditional and the
    embedding-CFG stream side by side would (today's dynamic cache gives the unconditional stream
    its ≤ 66 tokens only, so with embedding CFG this is an upper bound).

What is approximated (closed forms, not a trace; each phase's term is multiplied by
`ACTIVATION_MARGIN`): the transient activations of one forward call, assuming inference without
autograd (intermediates are freed as soon as Python drops them) and fused attention
(``scaled_dot_product_attention`` with a flash or memory-efficient kernel, which never builds the
score matrix; a math fallback would add heads x tokens² per attention call):
  * vision: the pixels, the residual stream and the wider of the attention (q, k, v, rotary
    copies) and MLP (fc1 and its activation) working sets of one block;
  * text: the prompt's prefill (residual, q/k/v, the SwiGLU MLP's three widths, a causal mask of
    tokens² entries) plus one layer's cache being re-concatenated;
  * image tokens: one decode step per stream (tiny) on top of the cache;
  * denoise: the UNet's skip connections at the latent size and batch (2 with CFG), plus the
    largest working set of one block (a ResNet block reads three copies of its input, the
    up path's input being the skip concatenated; a transformer block about 20 widths per token,
    with its GEGLU feed-forward);
  * vae: the decoder's largest ResNet or upsampling working set at the output size (batch 1, the
    engine decodes one image at a time), in the VAE's dtype.
Not counted: the CUDA context, cuBLAS/cuDNN workspaces and allocator fragmentation. They are what
`headroom` leaves free: a mode fits when its peak plus the headroom is at most the free memory.
The calibration point is ../shared/docs/PERFORMANCE.md (one SDXL-size CFG step at 1024², fp16:
5.2 GiB peak against 4.70 GiB of weights, so ≈ 0.5 GiB transient; the closed form counts 0.33 GB,
x `ACTIVATION_MARGIN` ≈ 0.5 GB). ``benchmarks/gpu_turn.py`` prints the measured peaks next to this
plan's so the margin can be checked on a real card.

Modes (the order `auto` tries them in):
  * ``normal``: every module stays on the device;
  * ``low``: only the running phase's modules are on the device (the projectors, a few MB,
    always), the others wait on the CPU;
  * ``int8``: as ``low``, with the LLM's linear weights in int8.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.config import WeGenConfig, preset

PRECISION_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
MODULES = ("llm", "vision", "projectors", "unet", "vae")
PHASES = ("vision", "text", "image_tokens", "denoise", "vae")
MODES = ("normal", "low", "int8")
#: the modules each phase runs (the projectors stay on the device in every mode: the token loop's
#: tensors live where they are)
PHASE_MODULES = {
    "vision": ("vision",),
    "text": ("llm",),
    "image_tokens": ("llm",),
    "denoise": ("unet",),
    "vae": ("vae",),
}
ALWAYS_RESIDENT = ("projectors",)
#: the closed-form activation estimates are multiplied by this (see the module docstring)
ACTIVATION_MARGIN = 1.5
#: kept free on top of a mode's peak: CUDA context, kernel workspaces, fragmentation
HEADROOM_FIXED = 512 * 2**20
HEADROOM_FRACTION = 0.05
GIB = 2**30


@dataclass(frozen=True)
class ModuleSize:
    """One module's resident size on the device."""

    name: str  # one of MODULES
    parameters: int  # number of parameters
    dtype: str  # "fp32", "fp16" or "bf16": what its weights are stored in
    parameter_bytes: int  # parameters x bytes per element of ``dtype``
    buffer_bytes: int  # floating buffers (rotary tables) cast to ``dtype``, others as built
    int8_bytes: int  # resident bytes with weight-only int8 linears (= ``bytes`` except the LLM)

    @property
    def bytes(self) -> int:
        """Resident bytes in the normal and low modes."""
        return self.parameter_bytes + self.buffer_bytes


@dataclass(frozen=True)
class PhaseNeed:
    """What one phase of a turn adds on top of the resident weights."""

    phase: str  # one of PHASES
    modules: tuple[str, ...]  # the modules it runs
    transient_bytes: int  # activations (x ACTIVATION_MARGIN), plus the KV cache for LLM phases
    kv_cache_bytes: int  # the part of ``transient_bytes`` that is the KV cache (0 elsewhere)
    note: str  # what the estimate covers, for a person


@dataclass(frozen=True)
class ModePeak:
    """A memory mode's device memory over one turn."""

    mode: str  # one of MODES
    per_phase: tuple[tuple[str, int], ...]  # (phase, resident weights + transient bytes)
    peak_bytes: int  # the largest of ``per_phase``
    peak_phase: str  # the phase that sets the peak
    needs_bytes: int  # peak + headroom: the free memory this mode needs


@dataclass(frozen=True)
class PlacementPlan:
    """Device memory per module, per phase and per mode for one config, precision and turn."""

    name: str  # the config's name (the preset)
    precision: str  # the compute precision: "fp32", "fp16" or "bf16"
    context: int  # tokens in the LLM's context (prompt + reply), the KV cache's length
    cfg_batch: int  # LLM streams for the image tokens (2: conditional + embedding CFG)
    image_size: int  # output side in pixels (the latent side is this / the VAE's downsampling)
    modules: tuple[ModuleSize, ...]
    phases: tuple[PhaseNeed, ...]
    modes: tuple[ModePeak, ...]  # in the order `choose` tries them

    def module(self, name: str) -> ModuleSize:
        return next(m for m in self.modules if m.name == name)

    def mode(self, name: str) -> ModePeak:
        for m in self.modes:
            if m.mode == name:
                return m
        raise ValueError(f"unknown memory mode {name!r}; choose one of {', '.join(MODES)}")

    @property
    def weight_bytes(self) -> int:
        return sum(m.bytes for m in self.modules)

    def fits(self, mode: str, free_bytes: int) -> bool:
        return self.mode(mode).needs_bytes <= free_bytes

    def choose(self, free_bytes: int) -> str | None:
        """``memory: auto``: the first mode (normal, low, int8) that fits, or None."""
        return next((m.mode for m in self.modes if m.needs_bytes <= free_bytes), None)

    def sentence(self, mode: str, free_bytes: int | None = None) -> str:
        """What ``mode`` needs, in one sentence a person reads (the settings dialog's line)."""
        m = self.mode(mode)
        text = (
            f"{_MODE_WORDS[mode]} needs {gib(m.needs_bytes)} of free device memory "
            f"(peak {gib(m.peak_bytes)} in {_PHASE_WORDS[m.peak_phase]}, plus headroom)"
        )
        if free_bytes is None:
            return text + "."
        if m.needs_bytes <= free_bytes:
            return text + f": fits the {gib(free_bytes)} free."
        return text + f": does not fit the {gib(free_bytes)} free."

    def report(self, free_bytes: int | None = None) -> str:
        """The whole plan as text: modules, phases, modes, and the choice for ``free_bytes``."""
        lines = [
            f"{self.name} at {self.precision}: {self.image_size}² images, "
            f"{self.context} tokens of context, {self.cfg_batch} LLM stream(s) for the image "
            "tokens, UNet batch 2 (CFG)",
            "",
            "weights on the device:",
        ]
        for m in self.modules:
            int8 = f"  (int8: {gib(m.int8_bytes)})" if m.int8_bytes != m.bytes else ""
            lines.append(
                f"  {m.name:<11} {m.parameters / 1e9:7.3f} B params  {m.dtype}  {gib(m.bytes)}{int8}"
            )
        lines += [f"  {'total':<11} {'':>16}        {gib(self.weight_bytes)}", "", "transient:"]
        for p in self.phases:
            lines.append(f"  {p.phase:<13} {gib(p.transient_bytes):>10}  {p.note}")
        lines += ["", "peak per mode (weights resident in that phase + transient):"]
        for mp in self.modes:
            phases = "  ".join(f"{ph}={b / GIB:.2f}" for ph, b in mp.per_phase)
            lines.append(f"  {mp.mode:<7} peak {gib(mp.peak_bytes)} ({mp.peak_phase})  [{phases}]")
        lines.append("")
        lines += [self.sentence(m.mode, free_bytes) for m in self.modes]
        if free_bytes is not None:
            chosen = self.choose(free_bytes)
            lines.append(
                f"auto: {chosen}"
                if chosen
                else f"auto: nothing fits {gib(free_bytes)}; choose a smaller image size or "
                "context, or run on the CPU"
            )
        return "\n".join(lines)


_MODE_WORDS = {
    "normal": "Normal (everything on the device)",
    "low": "Low memory (only the running part on the device)",
    "int8": "Int8 (low memory with an int8 language model)",
}
_PHASE_WORDS = {
    "vision": "the vision encoder",
    "text": "the text",
    "image_tokens": "the image tokens",
    "denoise": "denoising",
    "vae": "the VAE decode",
}


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


# --- weights ----------------------------------------------------------------------------------
def _meta_model(config: WeGenConfig) -> nn.Module:
    from engine.model import WeGenModel

    with torch.device("meta"):
        return WeGenModel(config)


def module_parts(model: nn.Module) -> dict[str, list[nn.Module]]:
    """The modules of a `WeGenModel` by part name (the same split as ``parameter_counts``)."""
    return {
        "llm": [model.llm],
        "vision": [model.vision],
        "projectors": [model.input_proj, model.output_proj],
        "unet": [model.decoder.unet],
        "vae": [model.decoder.vae],
    }


def module_sizes(
    config: WeGenConfig, precision: str, model: nn.Module | None = None
) -> list[ModuleSize]:
    """`ModuleSize` per part, from a meta-device build of ``config`` (or the given model)."""
    if precision not in PRECISION_BYTES:
        raise ValueError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")
    model = model if model is not None else _meta_model(config)
    width = PRECISION_BYTES[precision]
    sizes = []
    for name, parts in module_parts(model).items():
        dtype = precision
        if name == "vae" and config.vae.force_upcast:
            dtype = "fp32"
        b = PRECISION_BYTES[dtype]
        params = sum(p.numel() for m in parts for p in m.parameters())
        buffers = sum(
            t.numel() * (b if t.is_floating_point() else t.element_size())
            for m in parts
            for t in m.buffers()
        )
        int8 = params * b
        if name == "llm":
            linear = [m for part in parts for m in part.modules() if isinstance(m, nn.Linear)]
            weights = sum(m.weight.numel() for m in linear)
            scales = sum(m.out_features for m in linear)
            int8 = (params - weights) * width + weights + scales * width
        sizes.append(ModuleSize(name, params, dtype, params * b, buffers, int8 + buffers))
    return sizes


# --- transient memory per phase ---------------------------------------------------------------
def kv_cache_bytes(config: WeGenConfig, precision: str, tokens: int, batch: int) -> int:
    """K and V for ``tokens`` positions of ``batch`` streams, every layer."""
    c = config.llm
    head = c.hidden_size // c.num_heads
    return 2 * c.num_layers * c.num_kv_heads * head * tokens * batch * PRECISION_BYTES[precision]


def _vision_bytes(config: WeGenConfig, b: int) -> int:
    v = config.vision
    n = v.grid**2 + 1  # patch tokens + the class token
    hidden = round(v.width * v.mlp_ratio)
    pixels = 3 * v.image_size**2 * (4 + b)  # float32 input and its normalised copy
    block = max(6 * n * v.width, 2 * n * hidden)  # attention (q, k, v, rotary) vs MLP
    return pixels + b * (3 * n * v.width + block)


def _prefill_bytes(config: WeGenConfig, b: int, tokens: int) -> int:
    c = config.llm
    per_token = 6 * c.hidden_size + 3 * c.intermediate_size
    one_layer_cache = kv_cache_bytes(config, "fp32", tokens, 1) // 4 * b // c.num_layers
    logits = c.vocab_size * (b + 4)
    return b * (tokens * per_token + tokens * tokens) + one_layer_cache + logits


def _decode_bytes(config: WeGenConfig, b: int, batch: int) -> int:
    c = config.llm
    return batch * (b * (6 * c.hidden_size + 3 * c.intermediate_size) + c.vocab_size * (b + 4))


def _unet_bytes(config: WeGenConfig, b: int, batch: int, latent: int) -> int:
    u = config.unet
    ch = u.block_out_channels
    levels = len(ch)
    res = [latent // 2**i for i in range(levels)]
    inputs = config.vae.latent_channels + (config.feature_dim if u.spatial_context else 0)
    skips = ch[0] * res[0] ** 2  # conv_in's output
    for i in range(levels):
        skips += u.layers_per_block * ch[i] * res[i] ** 2
        if i < levels - 1:
            skips += ch[i] * res[i + 1] ** 2  # the downsampler's output
    block = inputs * res[0] ** 2
    for i in range(levels):
        up_in = ch[min(i + 1, levels - 1)] + ch[i]  # the up path's input: previous + skip
        block = max(block, (3 * up_in + 2 * ch[i]) * res[i] ** 2)
        if i < levels - 1:  # upsampling into this level
            block = max(block, 2 * ch[i + 1] * res[i] ** 2 + ch[i + 1] * res[i + 1] ** 2)
        if i > 0 or levels == 1:  # cross-attention levels (the first is plain DownBlock2D)
            block = max(block, 20 * ch[i] * res[i] ** 2)
    latents = 3 * config.vae.latent_channels * latent**2 * 4  # float32 scheduler state
    return batch * b * (skips + block) + batch * latents


def _vae_bytes(config: WeGenConfig, b: int, size: int) -> int:
    ch = tuple(reversed(config.vae.block_out_channels))  # decoder order: deepest first
    levels = len(ch)
    res = [size // 2 ** (levels - 1 - i) for i in range(levels)]
    block = 0
    for i in range(levels):
        cin = ch[i - 1] if i else ch[0]
        block = max(block, (3 * cin + ch[i]) * res[i] ** 2)  # first ResNet of the level
        if i < levels - 1:  # the upsampler: input, interpolated, convolved
            block = max(block, ch[i] * res[i] ** 2 + 2 * ch[i] * res[i + 1] ** 2)
    return b * block + 3 * size**2 * 4  # + the float32 pixels


def phase_needs(
    config: WeGenConfig, precision: str, context: int, cfg_batch: int, image_size: int
) -> list[PhaseNeed]:
    b = PRECISION_BYTES[precision]
    vae_b = 4 if config.vae.force_upcast else b
    latent = image_size // config.vae.downsample
    kv_text = kv_cache_bytes(config, precision, context, 1)
    kv_image = kv_cache_bytes(config, precision, context, cfg_batch)

    def margin(n: int) -> int:
        return math.ceil(n * ACTIVATION_MARGIN)

    return [
        PhaseNeed(
            "vision",
            PHASE_MODULES["vision"],
            margin(_vision_bytes(config, b)),
            0,
            f"one {config.vision.image_size}² image through the tower",
        ),
        PhaseNeed(
            "text",
            PHASE_MODULES["text"],
            kv_text + margin(_prefill_bytes(config, b, context)),
            kv_text,
            f"prefill of {context} tokens, KV cache {gib(kv_text)}",
        ),
        PhaseNeed(
            "image_tokens",
            PHASE_MODULES["image_tokens"],
            kv_image + margin(_decode_bytes(config, b, cfg_batch)),
            kv_image,
            f"64 decode steps x {cfg_batch} streams, KV cache {gib(kv_image)}",
        ),
        PhaseNeed(
            "denoise",
            PHASE_MODULES["denoise"],
            margin(_unet_bytes(config, b, 2, latent)),
            0,
            f"UNet batch 2 (CFG) at a {latent}² latent",
        ),
        PhaseNeed(
            "vae",
            PHASE_MODULES["vae"],
            margin(_vae_bytes(config, vae_b, image_size)),
            0,
            f"VAE decode of one {image_size}² image in {'fp32' if vae_b == 4 else precision}",
        ),
    ]


# --- the plan ---------------------------------------------------------------------------------
def headroom(peak: int) -> int:
    return HEADROOM_FIXED + math.ceil(peak * HEADROOM_FRACTION)


def plan(
    config: WeGenConfig,
    precision: str = "fp16",
    *,
    context: int | None = None,
    cfg_batch: int = 2,
    image_size: int | None = None,
    model: nn.Module | None = None,
) -> PlacementPlan:
    """The placement plan for ``config``: ``context`` tokens (default: the model's maximum),
    ``cfg_batch`` LLM streams for the image tokens (2 with embedding CFG; the UNet always runs
    batch 2, guidance being on by default), ``image_size`` (default: the preset's). ``model``
    may be an already built model (its parameters are counted instead of a meta build's)."""
    context = context or config.llm.max_positions
    image_size = image_size or config.decoder.image_size
    if not 1 <= context <= config.llm.max_positions:
        raise ValueError(f"context must be 1 to {config.llm.max_positions} tokens")
    if cfg_batch not in (1, 2):
        raise ValueError("cfg_batch is 1 (no embedding CFG) or 2 (with it)")
    if image_size % config.vae.downsample:
        raise ValueError(f"image_size must be a multiple of {config.vae.downsample}")
    sizes = module_sizes(config, precision, model)
    phases = phase_needs(config, precision, context, cfg_batch, image_size)
    modes = []
    for mode in MODES:
        per_phase = []
        for p in phases:
            resident = MODULES if mode == "normal" else (*ALWAYS_RESIDENT, *p.modules)
            weights = sum(
                m.int8_bytes if mode == "int8" else m.bytes for m in sizes if m.name in resident
            )
            per_phase.append((p.phase, weights + p.transient_bytes))
        phase, peak = max(per_phase, key=lambda item: item[1])
        modes.append(ModePeak(mode, tuple(per_phase), peak, phase, peak + headroom(peak)))
    return PlacementPlan(
        name=config.name,
        precision=precision,
        context=context,
        cfg_batch=cfg_batch,
        image_size=image_size,
        modules=tuple(sizes),
        phases=tuple(phases),
        modes=tuple(modes),
    )


def free_device_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device now (what `PlacementPlan.choose` is given), else None."""
    if device.type == "cuda" and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m engine.placement",
        description="Device memory per module, phase and memory mode, from the config alone.",
    )
    parser.add_argument("--preset", default="wegen-7b")
    parser.add_argument("--precision", default="fp16", choices=sorted(PRECISION_BYTES))
    parser.add_argument("--context", type=int, default=None, help="tokens (default: the maximum)")
    parser.add_argument("--cfg-batch", type=int, default=2, choices=(1, 2))
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument(
        "--gpu-gib", type=float, default=None, help="free device memory in GiB: which mode fits"
    )
    args = parser.parse_args(argv)
    try:
        result = plan(
            preset(args.preset),
            args.precision,
            context=args.context,
            cfg_batch=args.cfg_batch,
            image_size=args.image_size,
        )
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    free = None if args.gpu_gib is None else int(args.gpu_gib * GIB)
    print(result.report(free))


if __name__ == "__main__":
    main()
