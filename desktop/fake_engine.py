"""A scripted stand-in for the engine, for the desktop's tests and screenshots (never shipped as
the model). It implements the `engine.api.Engine` protocol: real PIL images, every event kind,
a step delay so that progress and cancel can be watched, and the cancel flag checked every step.

Like krita-ai-diffusion's MockClient: a test sets the script (``reply_text``, ``images``,
``fail_message``, ``load_error``...) and reads back ``requests`` to see what the UI sent.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from engine.api import (
    NUM_IMAGE_TOKENS,
    CancelFlag,
    Cancelled,
    DenoiseStep,
    Event,
    Failed,
    Finished,
    GenerationSettings,
    ImageDone,
    ImagePart,
    ImageTokenProgress,
    ModelFolderError,
    ModelInfo,
    Request,
    Rewrite,
    RuntimeRequest,
    Task,
    TextDelta,
    Turn,
    TurnTimings,
)

_PALETTE = [(220, 60, 50), (240, 170, 40), (60, 160, 90), (50, 110, 210), (150, 80, 190)]


@dataclass
class FakeEngine:
    name: str = "fake-tiny"  # the model name load() reports
    step_delay: float = 0.005  # seconds per token chunk / denoise step
    steps: int = 6
    image_size: int = 128
    reply_text: str = "Here is your image."
    images: int = 1  # images per reply (0 for a text-only answer)
    fail_message: str | None = None  # emit Failed with this instead of finishing
    raise_error: Exception | None = None  # raise this from run()
    load_error: str | None = None  # raise ModelFolderError from load()
    load_delay: float = 0.0
    load_steps: tuple[str, ...] = ()  # reported through load()'s progress, in order
    requests: list[Request] = field(default_factory=list)
    loads: list[tuple[str, RuntimeRequest]] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    steps_run: int = 0  # token chunks and denoise steps run so far, over all requests

    def load(
        self,
        model_dir: str,
        runtime: RuntimeRequest,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> ModelInfo:
        for done, what in enumerate(self.load_steps):
            if progress is not None:
                progress(done, len(self.load_steps), what)
        time.sleep(self.load_delay)
        self.loads.append((model_dir, runtime))
        if self.load_error:
            raise ModelFolderError(self.load_error)
        return ModelInfo(
            name=self.name,
            folder=model_dir,
            device="cpu",
            precision="fp32",
            backend="eager",
            parameters={"llm": 5_000_000, "unet": 17_000_000},
            image_size=self.image_size,
            allowed_sizes=(self.image_size, self.image_size * 2),
            default_steps=self.steps,
            default_guidance=3.0,
            max_context=2048,
        )

    def run(self, request: Request, on_event: Callable[[Event], None], cancel: CancelFlag) -> None:
        self.requests.append(request)
        self.running.set()
        try:
            self._run(request, on_event, cancel)
        finally:
            self.running.clear()

    def _run(self, request: Request, emit: Callable[[Event], None], cancel: CancelFlag) -> None:
        rid = request.request_id
        start = time.perf_counter()
        if self.raise_error is not None:
            raise self.raise_error
        settings = request.settings
        rewrite = self.rewrite(request) if settings.psr else None
        if rewrite is not None:
            emit(Rewrite(rid, rewrite))
        words = self.reply_text.split(" ")
        for i, word in enumerate(words):
            if cancel.is_set():
                emit(Cancelled(rid))
                return
            emit(TextDelta(rid, word if i == 0 else " " + word))
            time.sleep(self.step_delay)
        if self.fail_message is not None:
            emit(Failed(rid, self.fail_message))
            return
        n_images = 0 if request.task is Task.DESCRIBE else self.images
        parts: list[str | ImagePart] = [self.reply_text]
        steps = settings.steps or self.steps
        size = settings.size or self.image_size
        for index in range(n_images):
            for done in range(8, NUM_IMAGE_TOKENS + 1, 8):
                if cancel.is_set():
                    emit(Cancelled(rid))
                    return
                emit(ImageTokenProgress(rid, done, NUM_IMAGE_TOKENS))
                self.steps_run += 1
                time.sleep(self.step_delay)
            final = scene(request.message.text, settings.seed or 0, size, index)
            for step in range(1, steps + 1):
                if cancel.is_set():
                    emit(Cancelled(rid))
                    return
                blur = 8 * (steps - step) / steps
                preview = final.resize((64, 64)).filter(ImageFilter.GaussianBlur(blur))
                emit(DenoiseStep(rid, step, steps, preview if settings.previews else None))
                self.steps_run += 1
                time.sleep(self.step_delay)
            emit(ImageDone(rid, index, final, self.metadata(request, settings, steps, index)))
            parts.append(ImagePart(final))
        spent = TurnTimings(text=time.perf_counter() - start)  # the whole scripted turn
        emit(Finished(rid, Turn.assistant(*parts), spent))

    @staticmethod
    def rewrite(request: Request) -> str:
        """The scripted PSR rewrite of the message."""
        return f"A detailed picture of {request.message.text.strip()}, centred."

    @staticmethod
    def metadata(
        request: Request, settings: GenerationSettings, steps: int, index: int
    ) -> dict[str, Any]:
        """The same shape as the real engine's `ImageDone.metadata`."""
        used = {
            **settings.to_dict(),
            "seed": (settings.seed or 0) + index,
            "steps": steps,
            "guidance": settings.guidance if settings.guidance is not None else 3.0,
        }
        return {
            "prompt": request.message.text,
            "psr_rewrite": FakeEngine.rewrite(request) if settings.psr else None,
            "task": request.task.value,
            "settings": used,
            "history_turns": len(request.history),
            "model": "fake-tiny",
            "attachments": [
                {"role": p.role.value, "source": p.source} for p in request.message.images
            ],
        }


def scene(text: str, seed: int, size: int, index: int = 0) -> Image.Image:
    """A deterministic picture for ``text`` and ``seed``: a few coloured shapes on a sky."""
    digest = hashlib.sha256(f"{text}|{seed}|{index}".encode()).digest()
    image = Image.new("RGB", (size, size), (200 + digest[0] % 40, 220, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, size * 2 // 3, size, size), fill=(90 + digest[1] % 60, 150, 90))
    for k in range(3):
        colour = _PALETTE[digest[2 + k] % len(_PALETTE)]
        x, y = digest[5 + k] % (size // 2) + size // 8, digest[8 + k] % (size // 2) + size // 8
        r = size // 8 + digest[11 + k] % (size // 8)
        if digest[14 + k] % 2:
            draw.ellipse((x, y, x + r, y + r), fill=colour, outline=(30, 30, 30))
        else:
            draw.rectangle((x, y, x + r, y + r), fill=colour, outline=(30, 30, 30))
    return image
