"""The placement plan against real parameter counts, and the memory modes' order and choice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.config import wegen_7b, wegen_tiny
from engine.folder import place
from engine.placement import (
    GIB,
    MODES,
    MODULES,
    PHASES,
    kv_cache_bytes,
    main,
    module_parts,
    plan,
)
from engine.runtime import Runtime


@pytest.fixture(scope="module")
def plan_7b():
    return plan(wegen_7b(), "fp16")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_tiny_meta_plan_equals_a_real_model_in_bytes(model, precision):
    """The meta build counts exactly what the real tiny model holds once placed."""
    meta = plan(wegen_tiny(), precision)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    real = place(_copy(model), Runtime(torch.device("cpu"), dtype))
    counts = real.parameter_counts()
    for name, parts in module_parts(real).items():
        stored = sum(p.numel() * p.element_size() for m in parts for p in m.parameters())
        assert meta.module(name).parameter_bytes == stored, name
        assert meta.module(name).parameters == counts[name], name
    assert meta.module("vae").dtype == "fp32"  # force_upcast keeps it there


def _copy(model):
    import copy

    return copy.deepcopy(model)


def test_7b_parameter_counts_are_the_official_sizes(plan_7b):
    # ranges checked against the preset built on meta: 6.741 B, 4.350 B, 2.526 B, 0.084 B
    params = {m.name: m.parameters for m in plan_7b.modules}
    assert 6.7e9 <= params["llm"] <= 7.0e9  # Llama-2-7B with 32330 tokens
    assert 4.3e9 <= params["vision"] <= 4.4e9  # EVA-CLIP-E-14-plus tower, no head
    assert 2.5e9 <= params["unet"] <= 2.6e9  # SDXL UNet, cross-attention 1792
    assert 80e6 <= params["vae"] <= 90e6  # SDXL VAE
    assert params["projectors"] == 2 * 4096 * 1792
    fp16 = {m.name: m.parameter_bytes for m in plan_7b.modules}
    assert fp16["llm"] == 2 * params["llm"]
    assert fp16["vae"] == 4 * params["vae"]  # force_upcast: float32


def test_int8_stores_the_llm_linears_in_one_byte(plan_7b):
    """Counted from the config by hand: Llama's linears at 1 byte + one fp16 scale per row."""
    llm = plan_7b.module("llm")
    c = wegen_7b().llm
    d, i, layers, v = c.hidden_size, c.intermediate_size, c.num_layers, c.vocab_size
    linear = layers * (4 * d * d + 3 * d * i) + v * d  # q k v o, gate up down; lm_head
    scales = layers * (4 * d + 2 * i + d) + v  # one per output row
    other = v * d + (2 * layers + 1) * d  # the embedding and the RMS norms
    assert llm.parameters == linear + other
    assert llm.int8_bytes == linear + 2 * scales + 2 * other + llm.buffer_bytes
    assert 0.45 < llm.int8_bytes / llm.bytes < 0.55
    for name in ("vision", "projectors", "unet", "vae"):
        assert plan_7b.module(name).int8_bytes == plan_7b.module(name).bytes


def test_kv_cache_is_linear_in_tokens_and_streams():
    c = wegen_7b()
    per_token = kv_cache_bytes(c, "fp16", 1, 1)
    assert per_token == 2 * 32 * 4096 * 2  # K and V, 32 layers, 4096 wide, 2 bytes: 0.5 MiB
    assert kv_cache_bytes(c, "fp16", 4096, 2) == 2 * 4096 * per_token
    short, long = plan(c, context=512), plan(c, context=4096)
    assert long.mode("low").per_phase[2][1] - short.mode("low").per_phase[2][1] >= (
        2 * (4096 - 512) * per_token
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("config", [wegen_7b, wegen_tiny])
def test_modes_are_ordered(config, precision):
    p = plan(config(), precision)
    normal, low, int8 = (p.mode(m) for m in MODES)
    assert normal.peak_bytes >= low.peak_bytes >= int8.peak_bytes
    assert int8.peak_bytes < normal.peak_bytes
    assert [ph for ph, _ in normal.per_phase] == list(PHASES)
    # normal holds every module in every phase; low never more than the phase's own + projectors
    for phase, need in zip(p.phases, normal.per_phase, strict=True):
        assert need[1] == p.weight_bytes + phase.transient_bytes
    for phase, need in zip(p.phases, low.per_phase, strict=True):
        own = sum(p.module(m).bytes for m in (*phase.modules, "projectors"))
        assert need[1] == own + phase.transient_bytes
    assert {m.name for m in p.modules} == set(MODULES)


def test_transients_grow_with_the_turn():
    c = wegen_7b()
    small, large = plan(c, image_size=512, cfg_batch=1), plan(c, image_size=1024, cfg_batch=2)
    for phase in ("image_tokens", "denoise", "vae"):
        s = next(p for p in small.phases if p.phase == phase).transient_bytes
        big = next(p for p in large.phases if p.phase == phase).transient_bytes
        assert big > s, phase
    # the fp32 VAE at 1024² needs more than the half-precision UNet step at its 128² latent
    vae = next(p for p in large.phases if p.phase == "vae").transient_bytes
    assert 1 * GIB < vae < 16 * GIB


def test_auto_picks_the_first_mode_that_fits(plan_7b):
    for free_gib in (80, 48, 24, 16, 12, 8, 4):
        free = free_gib * GIB
        chosen = plan_7b.choose(free)
        fitting = [m for m in MODES if plan_7b.fits(m, free)]
        assert chosen == (fitting[0] if fitting else None)
        if chosen is not None:  # every mode before it does not fit
            for earlier in MODES[: MODES.index(chosen)]:
                assert plan_7b.mode(earlier).needs_bytes > free
    # the targets of issue 22, as the plan computes them
    assert plan_7b.choose(80 * GIB) == "normal"
    assert plan_7b.choose(24 * GIB) == "low"
    assert plan_7b.choose(12 * GIB) == "int8"
    assert plan_7b.choose(4 * GIB) is None


def test_sentences_say_what_each_mode_needs(plan_7b):
    fits = plan_7b.sentence("low", 24 * GIB)
    assert "Low memory" in fits and "fits the 24.00 GiB free" in fits
    assert "does not fit" in plan_7b.sentence("normal", 24 * GIB)
    with pytest.raises(ValueError, match="unknown memory mode"):
        plan_7b.mode("tiny")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="precision"):
        plan(wegen_tiny(), "int4")
    with pytest.raises(ValueError, match="context"):
        plan(wegen_tiny(), context=10**6)
    with pytest.raises(ValueError, match="multiple"):
        plan(wegen_tiny(), image_size=130)


def test_cli_prints_the_plan_and_the_choice(capsys):
    main(["--preset", "wegen-tiny", "--precision", "bf16", "--gpu-gib", "1"])
    out = capsys.readouterr().out
    assert "wegen-tiny at bf16" in out and "auto: normal" in out
    with pytest.raises(SystemExit, match="unknown preset"):
        main(["--preset", "wegen-13b"])


@pytest.mark.slow
def test_gpu_benchmark_smoke_run_on_the_cpu(tmp_path):
    """benchmarks/gpu_turn.py's CPU path end to end (about 10 s on one thread): every phase is
    timed both ways and every mode's plan is written beside its (CPU: absent) measurement."""
    out = tmp_path / "gpu_turn.json"
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "benchmarks/gpu_turn.py", "--preset", "wegen-tiny"]
    command += ["--device", "cpu", "--quick", "--out", str(out)]
    subprocess.run(command, cwd=root, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["complete"] is True
    phases = {"text", "image_tokens", "denoise", "vae", "total"}
    assert phases <= result["eager"].keys() and phases <= result["optimised"].keys()
    assert all(result["eager"][k] > 0 and result["optimised"][k] > 0 for k in phases)
    assert any("static KV cache" in a for a in result["optimised"]["applied"])
    assert result["int8"].startswith("the engine's int8 mode")
    expected = plan(wegen_tiny(), "fp32", context=result["plan"]["context"], cfg_batch=1)
    assert result["plan"]["peaks"] == {m.mode: m.peak_bytes for m in expected.modes}
    assert set(result["memory"]) == set(MODES)
    for mode, entry in result["memory"].items():
        assert set(entry) == {"vision", "llm", "denoise", "vae"}
        assert all(v["measured"] is None for v in entry.values())  # no CUDA here
        per = dict(expected.mode(mode).per_phase)
        assert entry["denoise"]["plan"] == per["denoise"], mode
