"""The continuous autoregressive loop: text tokens, then 64 fed-back visual tokens per image.

In the spirit of gpt-fast's generate.py: `prefill`, `decode_step` and `generate` are small named
functions around an explicit KV cache. A batch of prompts runs together (left padding, explicit
position ids); each row is a little state machine:

* TEXT: sample a token (greedy / temperature / top-p). ``<img>`` switches the row to IMAGE.
* IMAGE step k (0..63): h is the last hidden state (at ``<img>`` for k = 0). With embedding CFG
  (scale s != 1) h = h_u + s (h - h_u), where h_u comes from a second, unconditional cache that
  saw ``<img>`` alone and then the same fed-back inputs. The next input is not a token embedding
  but ``input_proj(output_proj(h))``. After the 64th, ``</img>`` is forced and the row returns
  to TEXT (a reply holds at most ``max_images`` images).
* DONE after ``</s>``; the row then idles on padding until the batch finishes.

`decode_step` is the only function that runs the model per token. ``generate(..., static=True)``
runs it on a static KV cache with the embedding-CFG streams as more rows of the same batch, so
every step has one shape and `captured_decode_step` (CUDA graphs through torch.compile) can
replace it; the dynamic-cache path with a cache per unconditional stream is the reference.

The loop asks the model for six things only (`LanguageModel`): ``device``, ``new_cache()``,
``embed_tokens``, ``embed``, a call returning the last hidden state and logits, and the
projectors (``features_to_embeds``, ``output_proj``). `WeGenModel` answers with PyTorch modules;
the ONNX backend (engine/onnx_runtime.py) answers with onnxruntime sessions, so one loop serves
both.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from engine.config import FeatureAlignment
from engine.errors import Cancelled
from engine.sampling import sample_token
from engine.template import NUM_IMAGE_TOKENS
from engine.tokenizer import WeGenTokenizer


class LanguageModel(Protocol):
    """The module calls the loop makes: `engine.model.WeGenModel` or the ONNX backend's model."""

    @property
    def device(self) -> torch.device: ...
    def new_cache(self) -> Any: ...
    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor: ...
    def embed(
        self,
        input_ids: torch.Tensor,
        image_features: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor: ...
    def __call__(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def features_to_embeds(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...
    def output_proj(self, hidden: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Prompt:
    """One rendered prompt: ids (T,), the image-slot mask (T,) and the features of its images."""

    ids: torch.Tensor
    image_mask: torch.Tensor
    image_features: torch.Tensor | None  # (N * 64, F) in slot order, or None


@dataclass(frozen=True)
class LoopOptions:
    temperature: float = 0.0
    top_p: float = 0.9
    max_new_tokens: int = 256  # text tokens; image tokens are not counted
    embedding_cfg: float = 1.0
    wants_image: bool | None = None  # True: must produce an image; False: must not; None: free
    max_images: int = 1
    alignment: FeatureAlignment = FeatureAlignment.SHIFTED


@dataclass
class Reply:
    """A row's output: text token runs and image features (64, F), in order."""

    segments: list[list[int] | torch.Tensor] = field(default_factory=list)

    @property
    def images(self) -> list[torch.Tensor]:
        return [s for s in self.segments if isinstance(s, torch.Tensor)]

    def text_ids(self) -> list[int]:
        return [t for s in self.segments if isinstance(s, list) for t in s]


class Phase(enum.Enum):
    TEXT = 0
    IMAGE = 1
    DONE = 2


@dataclass
class _Row:
    reply: Reply
    generator: torch.Generator
    phase: Phase = Phase.TEXT
    k: int = 0  # image tokens produced in the current image
    text_tokens: int = 0
    images: int = 0
    shifted: list[torch.Tensor] = field(default_factory=list)
    official: list[torch.Tensor] = field(default_factory=list)
    uncond: Any = None  # the unconditional stream's KV cache (model.new_cache())
    uncond_len: int = 0
    h_uncond: torch.Tensor | None = None


#: callback(row, kind, value): kind "text" (a token id), "image_token" (tokens done) or "image" (features)
LoopCallback = Callable[[int, str, object], None]


def left_pad(
    prompts: list[Prompt], model: LanguageModel
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embed and left-pad prompts -> embeds (B, T, D), attention mask (B, T), position ids (B, T)."""
    length = max(len(p.ids) for p in prompts)
    device = model.device
    rows, masks = [], []
    for p in prompts:
        embeds = model.embed(
            p.ids[None].to(device), p.image_features, p.image_mask[None].to(device)
        )[0]  # (T_i, D)
        pad = length - len(p.ids)
        rows.append(torch.cat([embeds.new_zeros(pad, embeds.shape[-1]), embeds]))
        masks.append(
            torch.cat(
                [torch.zeros(pad, dtype=torch.long), torch.ones(len(p.ids), dtype=torch.long)]
            )
        )
    mask = torch.stack(masks).to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return torch.stack(rows), mask, positions


def decode_step(
    model: LanguageModel,
    embeds: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    cache: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token for every row: embeds (B, 1, D), mask (B, T_total), positions (B, 1).

    Returns the last hidden state (B, D) and logits (B, V). This is the function a static
    cache and a compiled / graph-captured step replace.
    """
    hidden, logits = model(
        embeds, attention_mask=mask, position_ids=positions, cache=cache, last_only=True
    )
    return hidden[:, -1], logits[:, -1]


def captured_decode_step() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """`decode_step` compiled with ``mode="reduce-overhead"``: on CUDA the whole step (every
    layer's kernels, the static cache's in-place writes) is captured once as a CUDA graph and
    replayed per token, which is what the launch-bound loop needs. Static shapes only: use it
    with ``generate(..., static=True)``. The outputs are copied out of the graph's memory, which
    the next replay overwrites."""
    compiled = torch.compile(decode_step, mode="reduce-overhead", dynamic=False)

    def step(
        model: LanguageModel,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        torch.compiler.cudagraph_mark_step_begin()
        hidden, logits = compiled(model, embeds, mask, positions, cache)
        return hidden.clone(), logits.clone()

    return step


#: The prompt runs through the same computation, over all its positions at once (kept eager:
#: its length varies, so it is not worth compiling).
prefill = decode_step


#: A text run that ends in the same 1 to `LOOP_MAX_PERIOD` tokens said `LOOP_REPEATS` times in a
#: row, `LOOP_MIN_TOKENS` tokens at least (" a, a, a, a", "the the the the the the the the"), is a
#: loop a small model will not leave by itself: the row then closes its text as at the budget.
LOOP_MAX_PERIOD = 8
LOOP_REPEATS = 4
LOOP_MIN_TOKENS = 8


def ends_in_loop(ids: list[int]) -> bool:
    """Whether ``ids`` ends in a loop (`LOOP_REPEATS` repeats of a short cycle)."""
    for period in range(1, LOOP_MAX_PERIOD + 1):
        span = period * max(LOOP_REPEATS, -(-LOOP_MIN_TOKENS // period))
        if len(ids) >= span and ids[-span:] == ids[-period:] * (span // period):
            return True
    return False


def _text_logits(
    logits: torch.Tensor, row: _Row, tok: WeGenTokenizer, opts: LoopOptions
) -> torch.Tensor:
    """Mask what a TEXT step may not produce, and force ``<img>`` / ``</s>`` when text runs out."""
    logits = logits.float().clone()
    blocked = [tok.img_end_id, tok.bos_id, tok.unk_id, *tok.image_token_ids]
    may_open = opts.wants_image is not False and row.images < opts.max_images
    must_open = opts.wants_image is True and row.images == 0
    if not may_open:
        blocked.append(tok.img_start_id)
    if must_open:
        blocked.append(tok.eos_id)
    logits[blocked] = float("-inf")
    run = row.reply.segments[-1] if row.reply.segments else []
    looping = isinstance(run, list) and ends_in_loop(run)
    if row.text_tokens >= opts.max_new_tokens or looping:  # out of budget, or a loop: close
        forced = tok.img_start_id if must_open else tok.eos_id
        logits.fill_(float("-inf"))
        logits[forced] = 0.0
    return logits


@torch.no_grad()
def generate(
    model: LanguageModel,
    tok: WeGenTokenizer,
    prompts: list[Prompt],
    opts: LoopOptions,
    seeds: list[int],
    callback: LoopCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    static: bool = False,
    step: DecodeStep | None = None,
) -> list[Reply]:
    """Run the loop for a batch of prompts; returns one `Reply` per prompt.

    ``static`` (models with ``new_static_cache``): one static KV cache, and with embedding CFG the
    unconditional streams as B more rows of the same batch (`_Streams`), so every step, text or
    image, is one call of the same shape; ``step`` replaces `decode_step` for those calls (a
    compiled, graph-captured one). Otherwise each unconditional stream has its own dynamic cache
    (the reference the static path is tested against).
    """
    if len(seeds) != len(prompts):
        raise ValueError("one seed per prompt is needed")
    device = model.device
    rows = [_Row(Reply(), torch.Generator().manual_seed(s)) for s in seeds]
    guided = opts.embedding_cfg != 1.0
    notify = callback or (lambda row, kind, value: None)
    step = step or decode_step

    def token_embed(token: int) -> torch.Tensor:
        return model.embed_tokens(torch.tensor([token], device=device))[0]  # (D,)

    embeds, mask, positions = left_pad(prompts, model)
    streams = _Streams(model, opts, embeds, mask, positions, batched=static and guided)
    cache = model.new_static_cache(streams.rows, streams.length) if static else model.new_cache()  # type: ignore[attr-defined]
    h, logits = prefill(model, *streams.prefill_inputs(), cache)
    while any(r.phase is not Phase.DONE for r in rows):
        if cancel is not None and cancel():
            raise Cancelled()
        inputs = []
        for i, row in enumerate(rows):
            if row.phase is Phase.IMAGE:
                if streams.batched:
                    row.h_uncond = h[len(rows) + i]
                inputs.append(
                    _image_step(model, tok, row, h[i], opts, guided, notify, i, token_embed)
                )
                continue
            if row.phase is Phase.DONE:
                inputs.append(token_embed(tok.eos_id))
                continue
            token = sample_token(
                _text_logits(logits[i], row, tok, opts), opts.temperature, opts.top_p, row.generator
            )
            if token == tok.eos_id:
                row.phase = Phase.DONE
            elif token == tok.img_start_id:
                row.phase, row.k = Phase.IMAGE, 0
                row.shifted, row.official = [], []
                streams.restart_uncond(i)
            else:
                row.text_tokens += 1
                if not row.reply.segments or not isinstance(row.reply.segments[-1], list):
                    row.reply.segments.append([])
                row.reply.segments[-1].append(token)
                notify(i, "text", token)
            inputs.append(token_embed(token))
        step_in = torch.stack(inputs)[:, None]  # (B, 1, D)
        if all(r.phase is Phase.DONE for r in rows):
            break
        h, logits = step(model, *streams.step_inputs(step_in, static), cache)
        if guided and not streams.batched:
            for i, row in enumerate(rows):
                if row.phase is Phase.IMAGE and row.k < NUM_IMAGE_TOKENS:
                    _uncond_step(model, row, step_in[i : i + 1])
    return [r.reply for r in rows]


#: decode_step's signature: (model, embeds, mask, positions, cache) -> (hidden, logits)
DecodeStep = Callable[
    [LanguageModel, torch.Tensor, torch.Tensor, torch.Tensor, Any],
    tuple[torch.Tensor, torch.Tensor],
]


#: the static cache's length is rounded up to a multiple of this
STATIC_BUCKET = 256


class _Streams:
    """The rows the model runs each step, their attention mask and their positions.

    Unbatched: the B prompts. Batched (embedding CFG on a static cache): 2B rows, the B
    conditional ones then each one's unconditional twin. A twin is fed exactly what its row is
    fed, so until ``<img>`` it computes the same (finite) states; at ``<img>`` (`restart_uncond`)
    its mask forgets every earlier slot and its positions restart at 0, so from there it is the
    stream that saw ``<img>`` alone and then the same fed-back inputs: attention gives masked
    slots exactly zero weight. Every row writes the same cache slot each step, as a static cache
    wants (left padding is the same trick).
    """

    def __init__(
        self,
        model: LanguageModel,
        opts: LoopOptions,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        batched: bool,
    ) -> None:
        self.batched = batched
        twice = (lambda t: torch.cat([t, t])) if batched else (lambda t: t)
        self.embeds, self.mask, self.positions = twice(embeds), twice(mask), twice(positions)
        self.rows = self.mask.shape[0]
        # every step the loop can take: text, and per image <img> + 64 tokens + </img>
        steps = opts.max_new_tokens + opts.max_images * (NUM_IMAGE_TOKENS + 2) + 2
        # in buckets, so that turns of similar length share one cache shape (one captured graph)
        self.length = -(-(mask.shape[1] + steps) // STATIC_BUCKET) * STATIC_BUCKET
        self.next_pos = self.positions[:, -1] + 1  # (S,)

    def prefill_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.embeds, self.mask, self.positions

    def restart_uncond(self, row: int) -> None:
        """Row ``row`` just chose ``<img>``: its twin starts over, at the slot ``<img>`` fills."""
        if self.batched:
            twin = self.mask.shape[0] // 2 + row
            self.mask[twin] = 0
            self.next_pos[twin] = 0

    def step_inputs(
        self, step_in: torch.Tensor, static: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """embeds (S, 1, D), the mask with the new slot (S, T + 1), or padded to the static
        cache's length, and positions (S, 1); then the positions move on."""
        if self.batched:
            step_in = torch.cat([step_in, step_in])
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.rows, 1)], dim=1)
        mask = self.mask
        if static:
            mask = torch.nn.functional.pad(mask, (0, self.length - mask.shape[1]))
        positions = self.next_pos[:, None]
        self.next_pos = self.next_pos + 1
        return step_in, mask, positions


def _image_step(
    model: LanguageModel,
    tok: WeGenTokenizer,
    row: _Row,
    h: torch.Tensor,
    opts: LoopOptions,
    guided: bool,
    notify: LoopCallback,
    index: int,
    token_embed: Callable[[int], torch.Tensor],
) -> torch.Tensor:
    """One IMAGE step for a row; returns its next input embedding (D,)."""
    if row.k >= 1:  # h sits at <img_{k-1}>: the official reading of feature k-1
        row.official.append(model.output_proj(h))
    if row.k == NUM_IMAGE_TOKENS:  # all 64 produced: close the image
        chosen = row.official if opts.alignment is FeatureAlignment.OFFICIAL else row.shifted
        features = torch.stack(chosen)  # (64, F)
        row.reply.segments.append(features)
        row.phase, row.images, row.uncond = Phase.TEXT, row.images + 1, None
        notify(index, "image", features)
        return token_embed(tok.img_end_id)
    if guided:
        assert row.h_uncond is not None
        h = row.h_uncond + opts.embedding_cfg * (h - row.h_uncond)
    feature, next_embed = model.features_to_embeds(h)
    row.shifted.append(feature)
    row.k += 1
    notify(index, "image_token", row.k)
    return next_embed


def _uncond_step(model: LanguageModel, row: _Row, step_in: torch.Tensor) -> None:
    """Feed the unconditional stream the same input the conditional row just received."""
    if row.uncond is None:  # the stream starts at <img>
        row.uncond, row.uncond_len = model.new_cache(), 0
    position = torch.tensor([[row.uncond_len]], device=step_in.device)
    hidden, _ = model(step_in, position_ids=position, cache=row.uncond, last_only=True)
    row.uncond_len += 1
    row.h_uncond = hidden[0, -1]
