"""The memory modes: auto's choice from the placement plan, low's offload hooks (which run on the
CPU too, moving nothing) and int8's quantized language model, each against normal."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from engine import api
from engine.chat_engine import WeGenEngine
from engine.config import wegen_tiny
from engine.errors import RuntimeChoiceError
from engine.generate import LoopOptions, Prompt, generate
from engine.placement import plan
from engine.prompt import encode_conversation
from engine.runtime import (
    Runtime,
    apply_memory_mode,
    int8_method,
    quantize_llm_int8,
    resolve_memory,
    select_runtime,
)
from engine.template import ImageRole, Role, TemplateTurn
from engine.testing import random_model

CPU32 = Runtime(torch.device("cpu"), torch.float32)
#: a CUDA runtime as data: resolve_memory only reads it when told the free memory
GPU16 = Runtime(torch.device("cuda", 0), torch.float16, memory="auto")


def _prompt(tok, text: str = "a red circle at the top left", images: int = 0) -> Prompt:
    parts = (*([ImageRole.IMAGE] * images), text)
    enc = encode_conversation(tok, [TemplateTurn(Role.USER, parts)], max_tokens=1024, reserve=100)
    feats = torch.randn(
        64 * images, wegen_tiny().feature_dim, generator=torch.Generator().manual_seed(1)
    )
    return Prompt(enc.ids, enc.image_mask, feats if images else None)


def _turn(model, tok, opts: LoopOptions):
    """Vision, the token loop and the de-tokenizer, as the engine calls them."""
    with torch.no_grad():
        image = Image.new("RGB", (40, 40), (200, 30, 30))
        feats = model.vision(model.vision.preprocess([image]))[0].to(model.device)
        prompt = _prompt(tok, images=1)
        prompt = Prompt(prompt.ids, prompt.image_mask, feats)
        (reply,) = generate(model, tok, [prompt], opts, [5])
        pixels = model.decoder.sample(reply.images[0][None], seeds=[3], steps=3, guidance=3.0)
    return reply, pixels


def test_every_mode_is_offered_and_others_refused():
    assert api.MEMORY_MODES == ("auto", "normal", "low", "int8")
    for mode in api.MEMORY_MODES:
        assert select_runtime(api.RuntimeRequest(device="cpu", memory=mode)).memory == mode
    with pytest.raises(RuntimeChoiceError, match="auto, normal, low, int8"):
        select_runtime(api.RuntimeRequest(device="cpu", memory="tiny"))


def test_auto_takes_the_first_mode_the_free_memory_holds(model):
    p = plan(wegen_tiny(), "fp16", model=model)
    need = {m.mode: m.needs_bytes for m in p.modes}
    assert need["normal"] > need["low"] > need["int8"]
    for free, expected in [
        (need["normal"], "normal"),
        (need["normal"] - 1, "low"),
        (need["low"], "low"),
        (need["low"] - 1, "int8"),
        (need["int8"], "int8"),
    ]:
        runtime, advice = resolve_memory(GPU16, model, free_bytes=free)
        assert runtime.memory == advice.chosen == advice.auto == expected, free
        assert advice.needs == tuple(need.items())
    runtime, advice = resolve_memory(GPU16, model, free_bytes=need["int8"] // 2)
    assert runtime.memory == "int8" and "nothing fits" in advice.note
    # an explicit mode is kept, with what auto would have taken beside it
    runtime, advice = resolve_memory(
        Runtime(GPU16.device, GPU16.dtype, memory="low"), model, free_bytes=need["normal"]
    )
    assert (runtime.memory, advice.auto) == ("low", "normal")
    assert advice.lines()[0].startswith("normal: needs") and "— fits" in advice.lines()[0]


def test_auto_on_the_cpu_is_normal_and_says_why(model):
    runtime, advice = resolve_memory(Runtime(CPU32.device, CPU32.dtype, memory="auto"), model)
    assert runtime.memory == advice.chosen == "normal" and advice.free_bytes is None
    assert "RAM" in advice.note
    runtime, advice = resolve_memory(Runtime(CPU32.device, CPU32.dtype, memory="low"), model)
    assert runtime.memory == "low" and "as normal does" in advice.note


def test_low_mode_hooks_run_every_part_and_change_nothing(tokenizer):
    normal, low = random_model(seed=0), random_model(seed=0)
    offloader = apply_memory_mode(low, Runtime(CPU32.device, CPU32.dtype, memory="low"))
    assert offloader is not None
    for part in ("vision", "llm", "unet", "vae"):
        assert hasattr(offloader.roots[part], "_hf_hook"), part  # accelerate's CpuOffload
    opts = LoopOptions(max_new_tokens=5, wants_image=True, embedding_cfg=2.0)
    reply_n, pixels_n = _turn(normal, tokenizer, opts)
    reply_l, pixels_l = _turn(low, tokenizer, opts)
    assert offloader.entered == ["vision", "llm", "unet", "vae"]
    assert reply_l.text_ids() == reply_n.text_ids()
    torch.testing.assert_close(reply_l.images[0], reply_n.images[0], atol=0, rtol=0)
    torch.testing.assert_close(pixels_l, pixels_n, atol=0, rtol=0)


def test_the_engine_reports_the_mode_it_chose(model_folder):
    eng = WeGenEngine()
    info = eng.load(str(model_folder), api.RuntimeRequest(device="cpu", memory="auto"))
    assert info.memory == "normal" and eng.offloader is None
    assert info.memory_advice is not None and info.memory_advice.chosen == "normal"
    assert [m for m, _ in info.memory_advice.needs] == ["normal", "low", "int8"]
    info = eng.load(str(model_folder), api.RuntimeRequest(device="cpu", memory="low"))
    assert info.memory == "low" and eng.offloader is not None


def _int8_close(tokenizer, method: str) -> None:
    normal, int8 = random_model(seed=0), random_model(seed=0)
    runtime = Runtime(CPU32.device, CPU32.dtype, memory="int8")
    assert quantize_llm_int8(int8.llm, runtime) == method
    prompt = _prompt(tokenizer)
    with torch.no_grad():
        embeds = normal.embed(prompt.ids[None])
        h_n, _ = normal(embeds)
        h_q, _ = int8(embeds)
    cos = torch.nn.functional.cosine_similarity(h_q.flatten(1), h_n.flatten(1)).item()
    assert cos > 0.995, cos
    # the 64 fed-back features stay close through the whole loop
    opts = LoopOptions(max_new_tokens=1, wants_image=True)
    (a,) = generate(normal, tokenizer, [prompt], opts, [0])
    (b,) = generate(int8, tokenizer, [prompt], opts, [0])
    assert a.text_ids() == b.text_ids()
    cos = torch.nn.functional.cosine_similarity(a.images[0], b.images[0], dim=-1)
    assert cos.min().item() > 0.99, cos.min().item()


def test_int8_features_are_close_to_fp32(tokenizer):
    _int8_close(tokenizer, int8_method(torch.device("cpu")))


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao not installed")
def test_int8_with_torchao_is_weight_only_and_close(tokenizer):
    _int8_close(tokenizer, "torchao")


@pytest.mark.skipif(importlib.util.find_spec("torchao") is not None, reason="torchao installed")
def test_int8_on_a_gpu_without_torchao_says_what_to_install():
    with pytest.raises(RuntimeChoiceError, match="pip install torchao"):
        int8_method(torch.device("cuda", 0))


def test_the_cli_and_the_app_offer_the_same_modes():
    import argparse

    from desktop.app_settings import AppSettings
    from engine.cli_options import add_runtime_options, runtime_request

    parser = argparse.ArgumentParser()
    add_runtime_options(parser)
    assert runtime_request(parser.parse_args([])).memory == AppSettings().memory == "auto"
    for mode in api.MEMORY_MODES:
        assert runtime_request(parser.parse_args(["--memory", mode])).memory == mode
        assert AppSettings(memory=mode).runtime().memory == mode
