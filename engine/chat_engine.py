"""`WeGenEngine`: the real implementation of the Engine API (engine/api.py).

One chat turn, as numbered steps:
1. check the request and resolve settings against the model's defaults;
2. encode every image of the conversation with the vision tower (cached by pixel fingerprint);
3. PSR, if asked: sample a detailed rewrite of a brief request that keeps its words (engine/psr.py)
   and generate from it;
4. render the conversation, apply the context policy (engine/prompt.py), run the token loop;
5. decode each generated image with the de-tokenizer, with step previews;
6. report the reply and the timings.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from engine import api
from engine.caches import use_compile_cache
from engine.errors import Cancelled, PromptError, RuntimeChoiceError, WeGenError
from engine.folder import CONFIG, load_model_folder
from engine.generate import DecodeStep, LoopOptions, Prompt, captured_decode_step, generate
from engine.images import from_model_output, image_fingerprint, to_model_input
from engine.model import WeGenModel
from engine.official import is_official_folder, load_official
from engine.onnx_folder import is_onnx_folder
from engine.prompt import TOKENS_PER_IMAGE, encode_conversation
from engine.psr import PSR_TRIES, best_rewrite, try_seed
from engine.runtime import (
    Offloader,
    Runtime,
    apply_memory_mode,
    resolve_memory,
    select_runtime,
    synchronize,
)
from engine.template import (
    PSR_INSTRUCTION,
    TASK_TEXT_LIMIT,
    TASK_WANTS_IMAGE,
    ImageRole,
    Role,
    Task,
    TemplateTurn,
    task_text,
)
from engine.tokenizer import WeGenTokenizer

log = logging.getLogger(__name__)

PSR_TEMPERATURE = 0.9  # used when PSR is on and the request asks for greedy text
FEATURE_CACHE_SIZE = 64
#: the load step the compiled backend's warm-up shows (the app shows it under "Loading the model")
WARM_UP_STEP = "compiling for this device (the first launch only; later ones reuse it)"


def to_pil(pixels: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> an RGB image, through the one checked conversion (NaN refused)."""
    return from_model_output(pixels.permute(1, 2, 0).float().numpy())


class WeGenEngine:
    """Holds one loaded model; `run` is meant to be called from one worker thread at a time."""

    def __init__(self) -> None:
        self.model: WeGenModel | None = None
        self.tokenizer: WeGenTokenizer | None = None
        self.runtime: Runtime | None = None
        self.info: api.ModelInfo | None = None
        self.offloader: Offloader | None = None  # the low and int8 memory modes' hooks
        self._decode_step: DecodeStep | None = None  # the captured step (compiled, CUDA)
        self._features: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    # --- loading ------------------------------------------------------------------------------
    def load(
        self,
        model_dir: str,
        runtime: api.RuntimeRequest | None = None,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> api.ModelInfo:
        """Load a model folder. With the onnx backend a PyTorch folder is exported once into the
        user's cache first; with the compiled backend the model is compiled (`warm_up`) before
        this returns. ``progress(done, total, what)`` reports those long steps."""
        rt = select_runtime(runtime)
        if rt.backend == "onnx":
            from engine.onnx_runtime import load_onnx

            onnx_model, tokenizer = load_onnx(model_dir, rt, progress)
            return self.attach(onnx_model, tokenizer, rt, str(model_dir))  # type: ignore[arg-type]
        if is_onnx_folder(model_dir):
            raise RuntimeChoiceError(
                f"{model_dir} is an ONNX model folder: choose the onnx backend to run it"
            )
        # anything but an explicit normal loads into RAM first: the memory mode is resolved (and
        # the parts placed) from the model's placement plan before they go to the device
        on_load = rt if rt.memory == "normal" else replace(rt, device=torch.device("cpu"))
        if is_official_folder(model_dir) and not (Path(model_dir) / CONFIG).is_file():
            model, tokenizer = load_official(model_dir, on_load)
        else:
            model, tokenizer = load_model_folder(model_dir, on_load)
        info = self.attach(model, tokenizer, rt, str(model_dir))
        return self.warm_up(progress) if rt.backend == "compiled" else info

    def warm_up(self, progress: Callable[[int, int, str], None] | None = None) -> api.ModelInfo:
        """Compile now rather than in the user's first turn: one text-to-image turn with the
        default settings (its image tokens through the captured decode step, two denoising steps
        through the compiled UNet), reported through ``progress`` as a load step. torch.compile
        keeps what it built in `engine.caches`' compile folder, so a later launch reads it back
        instead of compiling again. Returns the model info with the seconds it took."""
        assert self.info is not None, "attach a model first"
        if progress is not None:
            progress(0, 1, WARM_UP_STEP)
        start = time.perf_counter()
        request = api.Request(
            api.Turn.user("a red circle", task=Task.GENERATE),
            settings=api.GenerationSettings(seed=0, steps=2, max_new_tokens=8),
            task=Task.GENERATE,
        )
        with self._lock:
            self._run(request, lambda _event: None, lambda: False)
        seconds = round(time.perf_counter() - start, 1)
        log.info("compiled for %s in %.1f s", self.info.device, seconds)
        self.info = replace(self.info, warm_up_seconds=seconds)
        return self.info

    def attach(
        self, model: WeGenModel, tokenizer: WeGenTokenizer, runtime: Runtime, folder: str = ""
    ) -> api.ModelInfo:
        """Use an already built model (tests, training evaluation), or the ONNX backend's
        `engine.onnx_runtime.OnnxModel`, which answers the same module calls.

        The memory mode is resolved here (``auto``: from the placement plan and the device's free
        memory) and applied: int8 quantizes the LLM, low and int8 attach the offload hooks."""
        runtime, advice = resolve_memory(runtime, model)
        self.offloader = None if runtime.backend == "onnx" else apply_memory_mode(model, runtime)
        log.info("%s", advice.note)
        if runtime.backend == "compiled":
            use_compile_cache()  # before anything compiles
            if not isinstance(model.decoder.unet, torch._dynamo.OptimizedModule):
                # compiled once, whatever attaches it again
                model.decoder.unet = torch.compile(model.decoder.unet)  # type: ignore[assignment]
        self._decode_step = captured_decode_step() if runtime.captures_decode else None
        self.model, self.tokenizer, self.runtime = model, tokenizer, runtime
        self._features.clear()
        cfg = model.config
        down = cfg.vae.downsample
        sizes = tuple(
            s
            for s in (
                cfg.decoder.image_size // 2,
                cfg.decoder.image_size,
                cfg.decoder.image_size * 3 // 2,
            )
            if s % down == 0
        )
        self.info = api.ModelInfo(
            name=cfg.name,
            folder=folder or cfg.name,
            device=runtime.device_name,
            precision=runtime.precision,
            backend=runtime.backend,
            parameters=model.parameter_counts(),
            image_size=cfg.decoder.image_size,
            allowed_sizes=sizes,
            default_steps=cfg.decoder.default_steps,
            default_guidance=cfg.decoder.default_guidance,
            max_context=cfg.llm.max_positions,
            memory=runtime.memory,
            memory_advice=advice,
        )
        return self.info

    # --- one turn -----------------------------------------------------------------------------
    def run(
        self,
        request: api.Request,
        on_event: Callable[[api.Event], None],
        cancel: api.CancelFlag | None = None,
    ) -> None:
        """Run one chat turn, reporting through ``on_event``; never raises for user errors."""
        rid = request.request_id
        stop = cancel.is_set if cancel is not None else (lambda: False)
        try:
            with self._lock:
                reply, timings = self._run(request, on_event, stop)
            on_event(api.Finished(rid, reply, timings))
        except Cancelled:
            on_event(api.Cancelled(rid))
        except WeGenError as e:
            on_event(api.Failed(rid, str(e)))
        except torch.OutOfMemoryError:
            on_event(
                api.Failed(
                    rid,
                    "the device ran out of memory: choose a smaller image size, the low or "
                    "int8 memory mode (Settings, or --memory), or a smaller model",
                )
            )
        except Exception as e:  # the worker thread must survive anything
            log.exception("request %s failed", rid)
            on_event(
                api.Failed(
                    rid,
                    f"internal error ({type(e).__name__}: {e}); the details are "
                    "in the log — please report them",
                )
            )

    def _run(
        self, request: api.Request, emit: Callable[[api.Event], None], stop: Callable[[], bool]
    ) -> tuple[api.Turn, api.TurnTimings]:
        if self.model is None or self.tokenizer is None or self.runtime is None:
            raise WeGenError("no model is loaded: choose a model folder in Settings")
        model, tok = self.model, self.tokenizer
        rid = request.request_id
        timings: dict[str, float] = {}
        clock = _Clock(self.runtime.device, timings)

        # 1. check the request, resolve settings
        s = self._resolve(request)
        seed = s.seed if s.seed is not None else secrets.randbelow(2**31)
        message = request.message
        if message.role is not Role.USER:
            raise PromptError("the new message must be a user turn")
        if not message.text.strip() and not message.images and request.task is Task.AUTO:
            raise PromptError("the message is empty: type a request or attach an image")
        wants_image = TASK_WANTS_IMAGE[request.task]
        history = list(request.history)
        if request.task in (Task.EDIT, Task.VARIATIONS) and not _has_image(history, message):
            raise PromptError("there is no image to work on yet: generate one or attach one first")

        # 2. encode the images of the conversation
        with clock("encode"):
            turns = [*history, message]
            parts = [p for t in turns for p in t.images]
            features = [self._encode_image(p.image) for p in parts]
        if stop():
            raise Cancelled()

        # 3. PSR: sample a detailed rewrite of a brief request
        user_text = message.text
        rewrite = None
        if s.psr and wants_image is not False and user_text.strip():
            with clock("rewrite"):
                rewrite = self._rewrite(user_text, s, seed, stop)
            emit(api.Rewrite(rid, rewrite))
            user_text = rewrite

        # 4. the token loop
        template_turns = [
            *(_template_turn(t) for t in history),
            _user_template_turn(message.images, request.task, user_text),
        ]
        reserve = s.max_new_tokens + (TOKENS_PER_IMAGE if wants_image is not False else 0) + 1
        encoded = encode_conversation(
            tok, template_turns, max_tokens=model.config.llm.max_positions, reserve=reserve
        )
        image_feats = (
            torch.cat([features[i] for i in encoded.image_indices])
            if encoded.image_indices
            else None
        )
        prompt = Prompt(encoded.ids, encoded.image_mask, image_feats)
        opts = LoopOptions(
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=min(s.max_new_tokens, TASK_TEXT_LIMIT.get(request.task, 1 << 30)),
            embedding_cfg=s.embedding_cfg,
            wants_image=wants_image,
            alignment=model.config.decoder.feature_alignment,
        )
        streamed: list[int] = []
        shown = ""
        parts = _PhaseParts()

        def on_loop(row: int, kind: str, value: object) -> None:
            nonlocal shown
            parts.loop_event(kind, value)
            if kind == "text":
                streamed.append(int(value))  # type: ignore[call-overload]
                text = tok.decode(streamed)
                if len(text) > len(shown) and not text.endswith("\ufffd"):
                    emit(api.TextDelta(rid, text[len(shown) :]))
                    shown = text
            elif kind == "image_token":
                emit(api.ImageTokenProgress(rid, int(value), model.config.num_image_tokens))  # type: ignore[call-overload]
            elif kind == "image":
                streamed.clear()
                shown = ""

        with clock("tokens"):
            (reply,) = generate(model, tok, [prompt], opts, [seed], on_loop, stop, **self._loop())

        # 5. decode the images (starting from the latest image, if asked to keep some of it)
        init = None
        if s.denoise_strength < 1 and (latest := _latest_image(history, message)) is not None:
            size = s.size or model.config.decoder.image_size
            init = torch.from_numpy(to_model_input(latest, size)).permute(2, 0, 1)[None]
        parts_out: list[str | api.ImagePart] = []
        image_index = 0
        for segment in reply.segments:
            if isinstance(segment, list):
                text = tok.decode(segment)
                if text:
                    parts_out.append(text)
                continue

            def on_step(step: int, total: int, preview: torch.Tensor | None) -> None:
                parts.last_step = time.perf_counter()
                emit(
                    api.DenoiseStep(
                        rid, step, total, to_pil(preview[0]) if preview is not None else None
                    )
                )

            with clock("denoise"):
                pixels = model.decoder.sample(
                    segment[None],
                    seeds=[seed + image_index],
                    steps=s.steps,
                    guidance=s.guidance,
                    size=s.size,
                    callback=on_step,
                    previews=s.previews,
                    cancel=stop,
                    init=init,
                    strength=s.denoise_strength,
                )
            parts.vae += time.perf_counter() - parts.last_step
            image = to_pil(pixels[0])
            metadata = self._metadata(request, s, seed + image_index, user_text, rewrite)
            emit(api.ImageDone(rid, image_index, image, metadata))
            parts_out.append(api.ImagePart(image, ImageRole.IMAGE))
            image_index += 1
        # the clock's "tokens" holds the image tokens and its "denoise" the VAE: split them
        spent = api.TurnTimings(
            encode=timings.get("encode", 0.0),
            rewrite=timings.get("rewrite", 0.0),
            text=timings.get("tokens", 0.0) - parts.image_tokens,
            image_tokens=parts.image_tokens,
            denoise=timings.get("denoise", 0.0) - parts.vae,
            vae=parts.vae,
            dropped_turns=encoded.dropped_turns,
        )
        return api.Turn(Role.ASSISTANT, tuple(parts_out)), spent

    # --- pieces ---------------------------------------------------------------------------------
    def _resolve(self, request: api.Request) -> api.GenerationSettings:
        assert self.model is not None and self.info is not None
        s = request.settings.validate()  # ranges and finiteness: engine.api.SETTING_RANGES
        d = self.model.config.decoder
        down = self.model.config.vae.downsample
        size = s.size or d.image_size
        api.check_size(size, d.image_size, down, self.info.name)
        steps = s.steps or d.default_steps
        if not 1 <= steps <= 1000:
            raise PromptError("steps must be between 1 and 1000")
        if s.max_new_tokens < 1:
            raise PromptError("max_new_tokens must be at least 1")
        if not 0 < s.top_p <= 1 or s.temperature < 0:
            raise PromptError("temperature must be ≥ 0 and top_p in (0, 1]")
        if not 0 < s.denoise_strength <= 1:
            raise PromptError(
                "the redraw (denoise) strength must be above 0 and at most 1 (1 redraws it all)"
            )
        return api.GenerationSettings(
            seed=s.seed,
            steps=steps,
            guidance=d.default_guidance if s.guidance is None else s.guidance,
            embedding_cfg=s.embedding_cfg,
            size=size,
            psr=s.psr,
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            previews=s.previews,
            denoise_strength=s.denoise_strength,
        )

    def _loop(self) -> dict[str, Any]:
        """How the token loop runs on this runtime: `engine.generate.generate`'s keywords."""
        assert self.runtime is not None
        return {"static": self.runtime.static_loop, "step": self._decode_step}

    def _encode_image(self, image: Image.Image) -> torch.Tensor:
        assert self.model is not None
        key = image_fingerprint(image)
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        assert self.runtime is not None
        vision = self.model.vision
        with torch.no_grad():  # low memory: the offload hooks bring the tower to the device
            feats = vision(vision.preprocess([image]))[0].to(self.model.device)  # (64, F)
        self._features[key] = feats
        while len(self._features) > FEATURE_CACHE_SIZE:
            self._features.popitem(last=False)
        return feats

    def _rewrite(
        self,
        text: str,
        s: api.GenerationSettings,
        seed: int,
        stop: Callable[[], bool],
        tries: int = PSR_TRIES,
    ) -> str:
        """A sampled rewrite of ``text`` that keeps its words, else ``text`` itself
        (`engine.psr.best_rewrite`)."""
        return best_rewrite(text, self._rewrite_sampler(text, s, seed, stop), tries)

    def _rewrite_sampler(
        self, text: str, s: api.GenerationSettings, seed: int, stop: Callable[[], bool]
    ) -> Callable[[int], str]:
        """Try ``t`` -> the ``t``-th sampled rewrite of ``text`` for a request drawn with ``seed``."""
        assert self.model is not None and self.tokenizer is not None
        turn = TemplateTurn(Role.USER, (PSR_INSTRUCTION.format(text=text.strip()),))
        encoded = encode_conversation(
            self.tokenizer,
            [turn],
            max_tokens=self.model.config.llm.max_positions,
            reserve=s.max_new_tokens + 1,
        )
        opts = LoopOptions(
            temperature=s.temperature or PSR_TEMPERATURE,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            wants_image=False,
        )
        tok = self.tokenizer

        def sample(t: int) -> str:
            (reply,) = generate(
                self.model,
                tok,
                [Prompt(encoded.ids, encoded.image_mask, None)],
                opts,
                [try_seed(seed, t)],
                None,
                stop,
                **self._loop(),
            )
            return tok.decode(reply.text_ids()).strip() or text

        return sample

    def _metadata(
        self,
        request: api.Request,
        s: api.GenerationSettings,
        seed: int,
        prompt: str,
        rewrite: str | None,
    ) -> dict[str, Any]:
        assert self.info is not None
        return {
            "prompt": request.message.text,
            "model_prompt": prompt,
            "psr_rewrite": rewrite,
            "task": request.task.value,
            "settings": {**s.to_dict(), "seed": seed},
            "attachments": [
                {"role": p.role.value, "source": p.source} for p in request.message.images
            ],
            "history_turns": len(request.history),
            "model": self.info.name,
            "model_folder": str(Path(self.info.folder)),
            "runtime": {
                "device": self.info.device,
                "precision": self.info.precision,
                "backend": self.info.backend,
            },
        }


def _template_turn(turn: api.Turn) -> TemplateTurn:
    if turn.role is Role.USER:
        return _user_template_turn(turn.images, turn.task, turn.text)
    return TemplateTurn(
        turn.role, tuple(p.role if isinstance(p, api.ImagePart) else p for p in turn.parts)
    )


def _user_template_turn(images: tuple[api.ImagePart, ...], task: Task, text: str) -> TemplateTurn:
    """A user turn as the composer sends it: its images first, then the text phrased for ``task``."""
    phrased = task_text(task, text)
    return TemplateTurn(Role.USER, (*(p.role for p in images), *((phrased,) if phrased else ())))


def _has_image(history: list[api.Turn], message: api.Turn) -> bool:
    return _latest_image(history, message) is not None


def _latest_image(history: list[api.Turn], message: api.Turn) -> Image.Image | None:
    """The image a turn works on: the message's last attachment, else the conversation's latest."""
    for turn in (message, *reversed(history)):
        if turn.images:
            return turn.images[-1].image
    return None


class _PhaseParts:
    """Splits two timed phases: the image tokens out of "tokens" (from the first image token to
    the image) and the VAE decode out of "denoise" (from the last denoising step to the pixels)."""

    def __init__(self) -> None:
        self.image_tokens = self.vae = 0.0
        self.last_step = self._image_start = 0.0

    def loop_event(self, kind: str, value: object) -> None:
        if kind == "image_token" and value == 1:
            self._image_start = time.perf_counter()
        elif kind == "image":
            self.image_tokens += time.perf_counter() - self._image_start


class _Clock:
    """``with clock("phase"):`` adds the phase's wall time (device synchronised) to ``timings``."""

    def __init__(self, device: torch.device, timings: dict[str, float]) -> None:
        self.device, self.timings = device, timings

    def __call__(self, name: str) -> _Clock:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.timings[self._name] = (
            self.timings.get(self._name, 0.0) + time.perf_counter() - self._start
        )
