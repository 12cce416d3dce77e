"""The Engine API: the one seam between the desktop (or CLI) and the engine.

Plain dataclasses only, no torch and no Qt, so the desktop can import this module without loading
a model and tests can drive the desktop with a fake engine that emits scripted events.

A caller builds a `Request` (the conversation so far, the new user message with its attachments,
`GenerationSettings` and an optional task hint), then calls ``engine.run(request, on_event,
cancel)``. ``run`` blocks, calling ``on_event`` from the calling thread with `TextDelta`,
`Rewrite`, `ImageTokenProgress`, `DenoiseStep`, `ImageDone`, and finally exactly one of
`Finished`, `Cancelled` or `Failed`. ``cancel`` is anything with ``is_set()`` (a
``threading.Event``); the token loop and the denoise loop check it every step.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from engine.template import ImageRole, Role, Task

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "CancelFlag",
    "Cancelled",
    "DenoiseStep",
    "Engine",
    "Event",
    "Failed",
    "Finished",
    "GenerationSettings",
    "ImageDone",
    "ImagePart",
    "ImageRole",
    "ImageTokenProgress",
    "ModelInfo",
    "Request",
    "Rewrite",
    "Role",
    "RuntimeRequest",
    "Task",
    "TextDelta",
    "Turn",
]


# --- request --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ImagePart:
    """An image in a turn. ``image`` is an RGB ``PIL.Image`` (see `engine.images.load_image`).

    ``source`` is the caller's name for it (a file path, say): it is written into the metadata of
    images made from it, never read by the engine.
    """

    image: Image
    role: ImageRole = ImageRole.IMAGE
    source: str = ""


@dataclass(frozen=True)
class Turn:
    """One turn: text pieces and images in reading order.

    A user turn in the history keeps the ``task`` hint it was sent with, so the engine phrases it
    again exactly as the model saw it then (and as training phrases it).
    """

    role: Role
    parts: tuple[str | ImagePart, ...]
    task: Task = Task.AUTO

    @classmethod
    def user(cls, text: str = "", *images: ImagePart, task: Task = Task.AUTO) -> Turn:
        """A user turn with its attachments first, then the text (how the composer sends it)."""
        return cls(Role.USER, (*images, text) if text else tuple(images), task)

    @classmethod
    def assistant(cls, *parts: str | ImagePart) -> Turn:
        return cls(Role.ASSISTANT, tuple(parts))

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


@dataclass(frozen=True)
class GenerationSettings:
    """What the user can set for one turn. ``None`` means the model's default."""

    seed: int | None = None  # None: a random seed, reported in the image's metadata
    steps: int | None = None  # denoising steps
    guidance: float | None = None  # de-tokenizer classifier-free guidance (1 = off)
    embedding_cfg: float = 1.0  # the LLM's embedding-space guidance for image tokens (1 = off)
    size: int | None = None  # output side in pixels, a multiple of the VAE's downsampling
    psr: bool = False  # Prompt Self-Rewriting: sample a detailed rewrite, then generate from it
    temperature: float = 0.0  # text sampling; 0 = greedy
    top_p: float = 0.9
    max_new_tokens: int = 256  # text tokens in the reply (image tokens not counted)
    previews: bool = True  # send a small preview with every denoising step
    # how much of the image being worked on (the conversation's latest) the de-tokenizer redraws:
    # 1 draws from noise alone, as WeGen does; lower starts from that image, noised (SDEdit)
    denoise_strength: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Request:
    """One chat turn to run: ``history`` (alternating, starting with a user turn, ending with an
    assistant turn) and the new user ``message``."""

    message: Turn
    history: tuple[Turn, ...] = ()
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    task: Task = Task.AUTO
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class RuntimeRequest:
    """Where and how to run: resolved by `engine.runtime.select_runtime`.

    device: "auto", "cuda", "cuda:1", "npu", "mps" or "cpu"; precision: "auto", "fp32", "fp16" or
    "bf16"; backend: "eager" or "compiled" (torch.compile of the UNet and the LLM step);
    memory: "normal" or "low" (vision tower and decoder parked on the CPU while unused).
    """

    device: str = "auto"
    precision: str = "auto"
    backend: str = "eager"
    memory: str = "normal"


@dataclass(frozen=True)
class ModelInfo:
    """What the UI shows about a loaded model and the defaults its controls start from."""

    name: str
    folder: str
    device: str
    precision: str
    backend: str
    parameters: dict[str, int]  # per part: llm, vision, projectors, unet, vae
    image_size: int
    allowed_sizes: tuple[int, ...]
    default_steps: int
    default_guidance: float
    max_context: int  # tokens


# --- events ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextDelta:
    request_id: str
    text: str


@dataclass(frozen=True)
class Rewrite:
    """PSR: the detailed prompt the model wrote for a brief request, before it generates."""

    request_id: str
    text: str


@dataclass(frozen=True)
class ImageTokenProgress:
    request_id: str
    done: int  # image tokens produced so far
    total: int  # 64


@dataclass(frozen=True, eq=False)
class DenoiseStep:
    request_id: str
    step: int  # 1-based
    total: int
    preview: Image | None  # a small RGB preview of the current estimate


@dataclass(frozen=True, eq=False)
class ImageDone:
    """A finished image. ``metadata`` holds everything needed to reproduce it (JSON-able)."""

    request_id: str
    index: int  # position among this reply's images
    image: Image
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    request_id: str
    reply: Turn  # the assistant turn, to be appended to the history
    timings: dict[str, float]  # seconds per phase: encode, text, image_tokens, denoise, vae, total


@dataclass(frozen=True)
class Cancelled:
    request_id: str


@dataclass(frozen=True)
class Failed:
    request_id: str
    message: str  # says what went wrong and what to do


Event = (
    TextDelta
    | Rewrite
    | ImageTokenProgress
    | DenoiseStep
    | ImageDone
    | Finished
    | Cancelled
    | Failed
)


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class Engine(Protocol):
    """What the desktop needs from an engine. `engine.chat_engine.WeGenEngine` is the real one."""

    def load(self, model_dir: str, runtime: RuntimeRequest) -> ModelInfo: ...

    def run(
        self, request: Request, on_event: Callable[[Event], None], cancel: CancelFlag
    ) -> None: ...
