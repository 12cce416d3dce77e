"""The continuous autoregressive loop: cache equivalence, batching, embedding CFG, forced images."""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import DynamicCache

from engine.config import FeatureAlignment
from engine.errors import Cancelled
from engine.generate import LoopOptions, Prompt, decode_step, ends_in_loop, generate, left_pad
from engine.prompt import encode_conversation
from engine.template import NUM_IMAGE_TOKENS, ImageRole, Role, TemplateTurn


def make_prompt(tok, model, text: str, n_images: int = 0, seed: int = 0) -> Prompt:
    parts = (*([ImageRole.IMAGE] * n_images), text)
    enc = encode_conversation(tok, [TemplateTurn(Role.USER, parts)], max_tokens=1024, reserve=100)
    g = torch.Generator().manual_seed(seed)
    feats = (
        torch.randn(n_images * NUM_IMAGE_TOKENS, model.config.feature_dim, generator=g)
        if n_images
        else None
    )
    return Prompt(enc.ids, enc.image_mask, feats)


def test_kv_cache_decoding_equals_full_forward(model, tokenizer):
    prompt = make_prompt(tokenizer, model, "a red circle", n_images=1)
    embeds, mask, pos = left_pad([prompt], model)
    extra = torch.randn(1, 5, model.config.llm.hidden_size) * 0.02
    full_h, _full_logits = model(torch.cat([embeds, extra], 1))
    cache = DynamicCache(config=model.llm.config)
    h, _ = model(embeds, attention_mask=mask, position_ids=pos, cache=cache)
    steps = []
    for i in range(5):
        mask = torch.cat([mask, mask.new_ones(1, 1)], 1)
        step_h, _step_logits = model(
            extra[:, i : i + 1], attention_mask=mask, position_ids=pos[:, -1:] + i + 1, cache=cache
        )
        steps.append(step_h)
    torch.testing.assert_close(torch.cat([h, *steps], 1), full_h, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_batch_equals_items_run_singly(model, tokenizer, cfg):
    prompts = [
        make_prompt(tokenizer, model, "a red circle", 0),
        make_prompt(
            tokenizer, model, "edit the image: move the big blue star left please", 1, seed=3
        ),
    ]
    opts = LoopOptions(max_new_tokens=6, wants_image=True, embedding_cfg=cfg, temperature=0.8)
    batch = generate(model, tokenizer, prompts, opts, seeds=[11, 12])
    for prompt, seed, got in zip(prompts, [11, 12], batch, strict=True):
        (single,) = generate(model, tokenizer, [prompt], opts, seeds=[seed])
        assert got.text_ids() == single.text_ids()
        assert len(got.images) == len(single.images) == 1
        torch.testing.assert_close(got.images[0], single.images[0], atol=1e-4, rtol=1e-3)


def test_embedding_cfg_at_scale_one_equals_no_cfg(model, tokenizer, monkeypatch):
    prompt = make_prompt(tokenizer, model, "a green star")
    plain = generate(
        model, tokenizer, [prompt], LoopOptions(wants_image=True, max_new_tokens=3), [0]
    )[0]
    # scale 1 must not start the second stream at all, and give the same features
    calls = []
    import engine.generate as g

    real = g._uncond_step
    monkeypatch.setattr(g, "_uncond_step", lambda *a: calls.append(1) or real(*a))
    again = generate(
        model,
        tokenizer,
        [prompt],
        LoopOptions(wants_image=True, max_new_tokens=3, embedding_cfg=1.0),
        [0],
    )[0]
    assert calls == []
    torch.testing.assert_close(plain.images[0], again.images[0])
    guided = generate(
        model,
        tokenizer,
        [prompt],
        LoopOptions(wants_image=True, max_new_tokens=3, embedding_cfg=1.0001),
        [0],
    )[0]
    torch.testing.assert_close(plain.images[0], guided.images[0], atol=1e-3, rtol=1e-2)
    assert len(calls) == NUM_IMAGE_TOKENS


@pytest.mark.parametrize("alignment", list(FeatureAlignment))
def test_forced_image_run_gives_64_features_and_closes(model, tokenizer, alignment):
    tokens = []
    opts = LoopOptions(wants_image=True, max_new_tokens=4, alignment=alignment)
    (reply,) = generate(
        model,
        tokenizer,
        [make_prompt(tokenizer, model, "a square")],
        opts,
        [5],
        callback=lambda r, kind, v: tokens.append((kind, v)),
    )
    assert [s.shape for s in reply.images] == [(NUM_IMAGE_TOKENS, model.config.feature_dim)]
    progress = [v for k, v in tokens if k == "image_token"]
    assert progress == list(range(1, NUM_IMAGE_TOKENS + 1))
    assert sum(1 for k, _ in tokens if k == "image") == 1


def test_alignments_are_one_slot_apart(model, tokenizer):
    prompt = make_prompt(tokenizer, model, "a circle")
    shifted = generate(
        model, tokenizer, [prompt], LoopOptions(wants_image=True, max_new_tokens=2), [1]
    )[0].images[0]
    official = generate(
        model,
        tokenizer,
        [prompt],
        LoopOptions(wants_image=True, max_new_tokens=2, alignment=FeatureAlignment.OFFICIAL),
        [1],
    )[0].images[0]
    # the official reading of slot k is the hidden state the shifted reading uses for slot k+1
    torch.testing.assert_close(official[:-1], shifted[1:], atol=1e-5, rtol=1e-4)


def test_text_only_task_never_opens_an_image(model, tokenizer):
    opts = LoopOptions(wants_image=False, max_new_tokens=30, temperature=1.5)
    (reply,) = generate(model, tokenizer, [make_prompt(tokenizer, model, "describe", 1)], opts, [0])
    assert reply.images == []
    assert tokenizer.img_start_id not in reply.text_ids()
    assert len(reply.text_ids()) <= 30


def test_cancel_stops_within_one_step(model, tokenizer):
    flag = threading.Event()
    seen = []

    def on_token(row, kind, value):
        seen.append(kind)
        if kind == "image_token" and value == 10:
            flag.set()

    with pytest.raises(Cancelled):
        generate(
            model,
            tokenizer,
            [make_prompt(tokenizer, model, "x")],
            LoopOptions(wants_image=True),
            [0],
            on_token,
            flag.is_set,
        )
    assert seen.count("image_token") == 10


def test_same_seed_same_tokens_and_sampling_differs_across_seeds(model, tokenizer):
    prompt = make_prompt(tokenizer, model, "a cat")
    opts = LoopOptions(temperature=1.0, top_p=0.95, wants_image=False, max_new_tokens=12)
    a = generate(model, tokenizer, [prompt], opts, [1])[0].text_ids()
    b = generate(model, tokenizer, [prompt], opts, [1])[0].text_ids()
    c = generate(model, tokenizer, [prompt], opts, [2])[0].text_ids()
    assert a == b
    assert a != c


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_static_batched_loop_equals_the_eager_loop(model, tokenizer, cfg):
    """One static cache, the unconditional streams as rows of the same batch: the same text
    tokens and the same features as a dynamic cache per stream."""
    prompts = [
        make_prompt(tokenizer, model, "a red circle", 0),
        make_prompt(
            tokenizer, model, "edit the image: move the big blue star left please", 1, seed=3
        ),
    ]
    opts = LoopOptions(
        max_new_tokens=6, wants_image=True, embedding_cfg=cfg, temperature=0.8, max_images=2
    )
    eager = generate(model, tokenizer, prompts, opts, seeds=[11, 12])
    static = generate(model, tokenizer, prompts, opts, seeds=[11, 12], static=True)
    for a, b in zip(eager, static, strict=True):
        assert a.text_ids() == b.text_ids()
        assert len(a.images) == len(b.images) >= 1
        for x, y in zip(a.images, b.images, strict=True):
            torch.testing.assert_close(y, x, atol=1e-4, rtol=1e-4)


def test_static_loop_runs_the_unconditional_streams_in_the_same_call(model, tokenizer):
    calls = []

    def counting(model_, embeds, mask, positions, cache):
        calls.append(embeds.shape[0])
        return decode_step(model_, embeds, mask, positions, cache)

    opts = LoopOptions(max_new_tokens=3, wants_image=True, embedding_cfg=2.0)
    generate(
        model,
        tokenizer,
        [make_prompt(tokenizer, model, "a star")],
        opts,
        [0],
        static=True,
        step=counting,
    )
    assert set(calls) == {2} and len(calls) >= NUM_IMAGE_TOKENS + 2  # one batch of 2, every step


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_captured_step_equals_eager_on_cuda(tokenizer):
    from engine.generate import captured_decode_step
    from engine.testing import random_model

    model = random_model().to("cuda")
    prompt = make_prompt(tokenizer, model, "a red circle")
    prompt = Prompt(prompt.ids, prompt.image_mask, None)
    opts = LoopOptions(max_new_tokens=4, wants_image=True, embedding_cfg=3.0)
    (eager,) = generate(model, tokenizer, [prompt], opts, [0])
    (captured,) = generate(
        model, tokenizer, [prompt], opts, [0], static=True, step=captured_decode_step()
    )
    assert eager.text_ids() == captured.text_ids()
    torch.testing.assert_close(captured.images[0], eager.images[0], atol=1e-3, rtol=1e-3)


@pytest.mark.slow
def test_the_static_step_traces_as_one_graph(model, tokenizer):
    """What CUDA graphs need, checked on the CPU: torch.compile captures the whole static decode
    step in one graph (fullgraph: no break), once for the whole turn, and it computes the same."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    traced = torch.compile(decode_step, backend="eager", dynamic=False, fullgraph=True)
    prompt = make_prompt(tokenizer, model, "a red circle")
    opts = LoopOptions(max_new_tokens=4, wants_image=True, embedding_cfg=3.0)
    (got,) = generate(model, tokenizer, [prompt], opts, [0], static=True, step=traced)
    (want,) = generate(model, tokenizer, [prompt], opts, [0])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert got.text_ids() == want.text_ids()
    torch.testing.assert_close(got.images[0], want.images[0], atol=1e-4, rtol=1e-4)
    torch._dynamo.reset()


def test_the_static_cache_is_reused_zeroed_across_turns(model, tokenizer):
    """A captured graph is bound to its cache: the next turn of the same shape gets the same
    cache back, emptied, and computes the same as a fresh one."""
    opts = LoopOptions(max_new_tokens=3, wants_image=True, embedding_cfg=2.0)
    prompt = make_prompt(tokenizer, model, "a star")
    (first,) = generate(model, tokenizer, [prompt], opts, [0], static=True)
    cache = model._static_cache[1]
    generate(model, tokenizer, [make_prompt(tokenizer, model, "a moon")], opts, [0], static=True)
    assert model._static_cache[1] is cache  # same bucket, same cache
    (third,) = generate(model, tokenizer, [prompt], opts, [0], static=True)
    assert third.text_ids() == first.text_ids()
    torch.testing.assert_close(third.images[0], first.images[0], atol=0, rtol=0)


@pytest.mark.parametrize(
    ("ids", "loops"),
    [
        ([5] * 8, True),  # one token, 8 times
        ([5] * 7, False),
        ([1, 2, 3, 9, 4, 9, 4, 9, 4, 9, 4], True),  # " a, a, a, a"
        ([9, 4, 9, 4, 9, 4], False),  # three repeats only
        ([1, 2, 3, 4, 5] * 4, True),
        ([1, 2, 3, 4, 5] * 3 + [1, 2, 3, 4], False),
        ([7, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 3, False),  # a period of 10 is not a short cycle
        (list(range(40)), False),
        ([], False),
    ],
)
def test_ends_in_loop(ids, loops):
    assert ends_in_loop(ids) is loops


def test_a_looping_reply_stops_where_the_loop_is_seen(model, tokenizer):
    # the random model, greedy, falls into short cycles within a few tokens
    opts = LoopOptions(wants_image=False, max_new_tokens=60)
    stopped = 0
    for text in ("describe", "a cat", "x"):
        (reply,) = generate(model, tokenizer, [make_prompt(tokenizer, model, text, 1)], opts, [0])
        ids = reply.text_ids()
        if len(ids) < 60:
            stopped += 1
            assert ends_in_loop(ids) and not ends_in_loop(ids[:-1])
        else:
            assert not any(ends_in_loop(ids[:n]) for n in range(len(ids)))
    assert stopped, "the random model did not loop: the guard went untested"
