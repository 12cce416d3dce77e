"""The Engine API: the one seam between the desktop (or CLI) and the engine.

Plain dataclasses only, no torch and no Qt, so the desktop can import this module without loading
a model and tests can drive the desktop with a fake engine that emits scripted events.

A caller builds a `Request` (the conversation so far, the new user message with its attachments,
`GenerationSettings` and an optional task hint), then calls ``engine.run(request, on_event,
cancel)``. ``run`` blocks, calling ``on_event`` from the calling thread with `TextDelta`,
`Rewrite`, `ImageTokenProgress`, `DenoiseStep`, `ImageDone`, and finally exactly one of
`Finished`, `Cancelled` or `Failed`. ``cancel`` is anything with ``is_set()`` (a
``threading.Event``); the token loop and the denoise loop check it every step.

It is also all the app imports from the engine (a test keeps it so): the enums, the error
classes, image loading (`load_image`), the atomic writers and the PNG metadata
(`engine.png_metadata`), the bundled model's name and folder, WeGen's `version` and `build`
(`engine.build_info`), `verify_model_folder` and `create_engine`, the factory of the real
engine, which imports torch only when called.
"""

from __future__ import annotations

import math
import numbers
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from engine.build_info import build, version
from engine.bundled import BUNDLED_DIR, BUNDLED_NAME, knows_only_shapes
from engine.errors import Cancelled as CancelledError
from engine.errors import (
    ImageInputError,
    ModelFolderError,
    OutputPathError,
    SettingsError,
    WeGenError,
)
from engine.files import new_file_mode, write_file_atomic, write_png_atomic
from engine.images import load_image, supported_formats
from engine.png_metadata import (
    TRAINED_ALGORITHMIC_MEDIA,
    PngMetadata,
    Recipe,
    copy_file_atomic,
    migrate_record,
    read_png_metadata,
    recipe_from_metadata,
    save_png_atomic,
)
from engine.template import NUM_IMAGE_TOKENS, ImageRole, Role, Task

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "BACKENDS",
    "BUNDLED_DIR",
    "BUNDLED_NAME",
    "DEVICES",
    "FROZEN_NO_COMPILE",
    "MEMORY_MODES",
    "NUM_IMAGE_TOKENS",
    "PRECISIONS",
    "SETTING_RANGES",
    "TRAINED_ALGORITHMIC_MEDIA",
    "CancelFlag",
    "Cancelled",
    "CancelledError",
    "DenoiseStep",
    "Engine",
    "Event",
    "Failed",
    "Finished",
    "GenerationSettings",
    "ImageDone",
    "ImageInputError",
    "ImagePart",
    "ImageRole",
    "ImageTokenProgress",
    "MemoryAdvice",
    "ModelFolderError",
    "ModelInfo",
    "OutputPathError",
    "PngMetadata",
    "Range",
    "Recipe",
    "Request",
    "Rewrite",
    "Role",
    "RuntimeRequest",
    "SettingsError",
    "Task",
    "TextDelta",
    "Turn",
    "TurnTimings",
    "WeGenError",
    "build",
    "copy_file_atomic",
    "create_engine",
    "knows_only_shapes",
    "load_image",
    "migrate_record",
    "new_file_mode",
    "read_png_metadata",
    "recipe_from_metadata",
    "save_png_atomic",
    "supported_formats",
    "usable_backends",
    "verify_model_folder",
    "version",
    "write_file_atomic",
    "write_png_atomic",
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


# --- what each setting allows ---------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """The values a setting allows: ``low`` to ``high`` inclusive, whole numbers if ``integer``.

    The one table of these, `SETTING_RANGES`, is what `GenerationSettings.validate` checks and
    what the app's controls and the CLI's help offer.
    """

    low: float
    high: float
    integer: bool = False
    note: str = ""  # what a value means, for messages: "1 = off"

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        note = f" ({self.note})" if self.note else ""
        return f"{kind} from {_number(self.low)} to {_number(self.high)}{note}"

    def span(self) -> str:
        """``"1..1000"``, for help texts."""
        return f"{_number(self.low)}..{_number(self.high)}"

    def allows(self, value: object) -> bool:
        if isinstance(value, bool):
            return False
        if self.integer:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            return False
        return self.low <= value <= self.high  # type: ignore[operator]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


#: Seeds the engine accepts: what torch's generators take, and what the app's seed box (a 32-bit
#: signed spin box) can show, so every image made by the CLI can be repeated in the app.
SEED_RANGE = Range(0, 2**31 - 1, integer=True)
#: Denoising steps; 1000 is the schedulers' number of training timesteps.
STEPS_RANGE = Range(1, 1000, integer=True)
GUIDANCE_RANGE = Range(1.0, 20.0, note="1 = off")
EMBEDDING_CFG_RANGE = Range(1.0, 10.0, note="1 = off")
DENOISE_STRENGTH_RANGE = Range(0.05, 1.0, note="1 redraws it all, lower keeps more of it")
TEMPERATURE_RANGE = Range(0.0, 5.0, note="0 = greedy")
TOP_P_RANGE = Range(0.01, 1.0)
MAX_NEW_TOKENS_RANGE = Range(1, 4096, integer=True)
#: The widest output side in pixels; each model allows fewer (see `ModelInfo.allowed_sizes`).
SIZE_RANGE = Range(16, 4096, integer=True)

#: Every numeric setting and its range, by `GenerationSettings` field name.
SETTING_RANGES: dict[str, Range] = {
    "seed": SEED_RANGE,
    "steps": STEPS_RANGE,
    "guidance": GUIDANCE_RANGE,
    "embedding_cfg": EMBEDDING_CFG_RANGE,
    "size": SIZE_RANGE,
    "temperature": TEMPERATURE_RANGE,
    "top_p": TOP_P_RANGE,
    "max_new_tokens": MAX_NEW_TOKENS_RANGE,
    "denoise_strength": DENOISE_STRENGTH_RANGE,
}
#: How messages name a setting where its field name would not say it
_SETTING_NAMES = {
    "embedding_cfg": "the embedding CFG scale",
    "denoise_strength": "the redraw (denoise) strength",
    "max_new_tokens": "max_new_tokens (the reply's text budget)",
    "size": "the image size",
}


def size_limits(image_size: int, downsample: int) -> tuple[int, int, int]:
    """(smallest, largest, multiple): the output sides a model with native side ``image_size``
    and a VAE that downsamples by ``downsample`` can draw. The smallest is a quarter of its own
    size but at least an 8 × 8 latent; the largest twice its own size."""
    return max(image_size // 4, downsample * 8), image_size * 2, downsample


def check_size(size: int, image_size: int, downsample: int, model: str) -> None:
    """`SettingsError` unless ``size`` is within `size_limits` (the engine's check, which the CLI
    also runs from a model's config before loading it)."""
    low, high, multiple = size_limits(image_size, downsample)
    if size % multiple or not low <= size <= high:
        raise SettingsError(
            f"image size {size} is not possible with {model}: use a multiple of {multiple} "
            f"between {low} and {high} (its own size is {image_size})"
        )


@dataclass(frozen=True)
class GenerationSettings:
    """What the user can set for one turn. ``None`` means the model's default.

    Constructing one checks nothing (settings saved by older versions must still load);
    `validate` checks every field against `SETTING_RANGES` and is what the engine calls before
    any work, and the CLI before it loads a model.
    """

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

    def validate(self) -> GenerationSettings:
        """``self`` if every setting is allowed, else `SettingsError` naming the first that is not
        and saying what is allowed. NaN and infinity are never allowed; ``None`` (the model's
        default) is allowed where the field's type says so."""
        for name, allowed in SETTING_RANGES.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if not allowed.allows(value):
                label = _SETTING_NAMES.get(name, name)
                unset = _OPTIONAL.get(name)
                unset = f", or none for {unset}" if unset else ""
                raise SettingsError(f"{label} must be {allowed.describe()}{unset}; got {value!r}")
        for name in ("psr", "previews"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name} must be true or false; got {getattr(self, name)!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        """Known fields of ``data`` (others ignored), unchecked: call `validate` before use."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


#: settings that may be ``None``, and what that means
_OPTIONAL = {
    "seed": "a random seed",
    "steps": "the model's default",
    "guidance": "the model's default",
    "size": "the model's default",
}


@dataclass(frozen=True)
class Request:
    """One chat turn to run: ``history`` (alternating, starting with a user turn, ending with an
    assistant turn) and the new user ``message``."""

    message: Turn
    history: tuple[Turn, ...] = ()
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    task: Task = Task.AUTO
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


#: The runtime choices, in one place without torch (the CLI's --help and the app's settings
#: offer them before torch is imported; engine.runtime resolves them).
DEVICES = ("auto", "cpu", "cuda", "npu", "mps", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: auto: compiled on CUDA (a static token loop with a captured decode step, the UNet compiled),
#: eager elsewhere (the fastest measured on the CPU: docs/benchmarks.md)
BACKENDS = ("auto", "eager", "compiled", "onnx")
#: auto: the first of normal, low, int8 whose planned peak fits the device's free memory
#: (engine.placement); normal: every part stays on the device; low: each part (vision, LLM, UNet,
#: VAE) is on the device only while it runs; int8: low, with the LLM's linear weights in int8.
#: On the CPU every mode but int8 is normal (the model lives in RAM either way).
MEMORY_MODES = ("auto", "normal", "low", "int8")
#: Why an installed (frozen) app does not offer the compiled backend.
FROZEN_NO_COMPILE = (
    "this installed copy of WeGen cannot compile models: torch.compile builds C++ (or Triton) "
    "code with a compiler and PyTorch's headers, which an installed app does not carry. Choose "
    "eager, or onnx (faster on the CPU); to compile, run WeGen from a source install"
)


def usable_backends() -> tuple[str, ...]:
    """The backends this copy can run: all of `BACKENDS`, less ``compiled`` in a frozen bundle."""
    if getattr(sys, "frozen", False):
        return tuple(b for b in BACKENDS if b != "compiled")
    return BACKENDS


@dataclass(frozen=True)
class RuntimeRequest:
    """Where and how to run: resolved by `engine.runtime.select_runtime`.

    device: "auto", "cuda", "cuda:1", "npu", "mps" or "cpu" ("tensorrt" with the onnx backend);
    precision: "auto", "fp32", "fp16" or "bf16"; backend: "auto" (compiled on CUDA, else eager),
    "eager" (the reference), "compiled" (the token loop on a static cache with the CFG streams
    batched, its decode step captured on CUDA, and torch.compile of the de-tokenizer's UNet) or
    "onnx" (ONNX Runtime on an exported folder, or on a PyTorch folder exported once into the
    cache); memory: one of `MEMORY_MODES` ("auto" resolved at load
    from the model's placement plan and the device's free memory).
    """

    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    memory: str = "auto"


@dataclass(frozen=True)
class MemoryAdvice:
    """What the loaded model needs per memory mode on its device, and what was chosen: the
    engine's placement plan (engine/placement.py) as plain data for the settings dialog."""

    device: str  # where the model runs, as `ModelInfo.device`
    free_bytes: int | None  # free device memory seen at load (None: not a GPU, or unknown)
    needs: tuple[tuple[str, int], ...]  # (mode, free bytes it needs), normal/low/int8 in order
    auto: str  # what "auto" picks on this device
    chosen: str  # the mode in effect
    note: str  # one sentence: why, in words a person reads

    def lines(self) -> list[str]:
        """The advice as short lines: each mode's need (and whether it fits), then the choice."""
        gib = 2**30
        out = []
        for mode, need in self.needs:
            fits = ""
            if self.free_bytes is not None:
                fits = " — fits" if need <= self.free_bytes else " — does not fit"
            out.append(f"{mode}: needs {need / gib:.2f} GiB{fits}")
        free = f"{self.free_bytes / gib:.2f} GiB free" if self.free_bytes is not None else ""
        out.append(f"auto picks {self.auto} on {self.device}" + (f" ({free})" if free else ""))
        return out


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
    memory: str = "normal"  # the memory mode in effect (auto resolved)
    memory_advice: MemoryAdvice | None = None  # None: the backend has no memory modes (onnx)
    warm_up_seconds: float | None = None  # the compiled backend's warm-up at load; None: none ran


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
class TurnTimings:
    """Wall-clock seconds a turn spent in each phase (the device synchronised at each edge). The
    phases do not overlap, so they add up to ``total``."""

    encode: float = 0.0  # the vision tower, on every image of the conversation
    rewrite: float = 0.0  # PSR: writing the detailed prompt (0 without PSR)
    text: float = 0.0  # the reply's text tokens, the prompt's prefill included
    image_tokens: float = 0.0  # the 64 fed-back visual tokens of each image
    denoise: float = 0.0  # the de-tokenizer's UNet steps
    vae: float = 0.0  # decoding the latents to pixels
    dropped_turns: int = 0  # early turns left out to fit the context window (not a time)

    @property
    def total(self) -> float:
        return self.encode + self.rewrite + self.text + self.image_tokens + self.denoise + self.vae

    def to_dict(self) -> dict[str, float]:
        """The phases and ``total`` (as stored with a turn and printed by the benchmarks)."""
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class Finished:
    request_id: str
    reply: Turn  # the assistant turn, to be appended to the history
    timings: TurnTimings = field(default_factory=TurnTimings)


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

    def load(
        self,
        model_dir: str,
        runtime: RuntimeRequest,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> ModelInfo:
        """Load a model folder; ``progress(done, total, what)`` reports long steps (the one-time
        ONNX export of a PyTorch folder, the compiled backend's compile)."""
        ...

    def run(
        self, request: Request, on_event: Callable[[Event], None], cancel: CancelFlag
    ) -> None: ...


def create_engine() -> Engine:
    """The real engine, `engine.chat_engine.WeGenEngine` (imports torch: call it where the model
    will run, e.g. on the app's worker thread)."""
    from engine.chat_engine import WeGenEngine

    return WeGenEngine()


def verify_model_folder(folder: str) -> list[str]:
    """The problems `engine.folder.verify_model_folder` finds in a model folder (imports torch;
    raises `ModelFolderError` for a folder that is no model folder at all)."""
    from engine.folder import verify_model_folder as verify

    return [str(problem) for problem in verify(folder)]
