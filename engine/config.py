"""Model configuration: frozen dataclasses, JSON round-trip, and the two presets.

A model folder's ``config.json`` is ``WeGenConfig.to_dict()``; reading it back rejects unknown keys
(naming them) and a version newer than this code understands. Code chooses the classes: the config
only holds numbers and a few documented switches.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelFolderError
from engine.template import NUM_IMAGE_TOKENS

CONFIG_VERSION = 1


class FeatureAlignment(str, enum.Enum):
    """Which hidden states become the 64 generated image features.

    ``SHIFTED``: the hidden state *before* each image slot (at ``<img>``, ``<img_00000>`` ...
    ``<img_00062>``) is that slot's feature, which is how training supervises it and what the
    token loop feeds back. ``OFFICIAL``: the hidden states *at* ``<img_00000>`` ...
    ``<img_00063>``, as the official inference script reads them (one slot late; see
    ../shared/reference/OFFICIAL_CHECKPOINT.md section 5).
    """

    SHIFTED = "shifted"
    OFFICIAL = "official"


class TimeIds(str, enum.Enum):
    """The SDXL ``time_ids`` the de-tokenizer is conditioned with.

    ``SIZE``: (H, W, 0, 0, H, W) as official inference does; ``ZEROS``: all zero, as official
    training did (and as our own training does).
    """

    SIZE = "size"
    ZEROS = "zeros"


@dataclass(frozen=True)
class LLMConfig:
    """The Llama language model (built with transformers' LlamaForCausalLM)."""

    vocab_size: int  # Llama-2's 32000 + the 330 WeGen tokens for the official model
    hidden_size: int  # width of the residual stream
    intermediate_size: int  # SwiGLU MLP width
    num_layers: int
    num_heads: int
    num_kv_heads: int  # = num_heads for Llama-2-7B (no GQA)
    max_positions: int  # context length in tokens (images count 66 each)
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        _positive(
            self,
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "max_positions",
        )
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError("llm: hidden_size must divide by num_heads, num_heads by num_kv_heads")


@dataclass(frozen=True)
class VisionConfig:
    """The vision tower (EVA, `engine.eva`) and the average pool to 64 visual tokens."""

    image_size: int  # input resolution (square, aspect not kept, bilinear)
    patch_size: int
    width: int  # feature width = the visual-token width (1792 for EVA-CLIP-E)
    depth: int
    num_heads: int
    mlp_ratio: float  # MLP width / width
    post_norm: bool = True  # EVA-CLIP-E uses post-norm blocks
    norm_eps: float = 1e-6
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)  # CLIP normalisation
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    # wegen-tiny only (EVA-CLIP embeds each patch linearly): the patch embedding as 3x3 stride-2
    # convolutions of these widths (log2(patch_size) of them), then a 1x1 one to ``width``. With
    # stage 0's token head, a tower trained from scratch on little data learns shape sooner with
    # it (training/checks/shape_learning.py, the wegen-tiny model card).
    conv_stem: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _positive(self, "image_size", "patch_size", "width", "depth", "num_heads")
        if self.conv_stem and 2 ** len(self.conv_stem) != self.patch_size:
            raise ValueError(
                f"vision: a conv stem of {len(self.conv_stem)} stride-2 layers makes "
                f"{2 ** len(self.conv_stem)}-pixel patches, not {self.patch_size}; give it "
                f"log2(patch_size) widths"
            )
        grid = self.image_size // self.patch_size
        side = round(NUM_IMAGE_TOKENS**0.5)
        if self.image_size % self.patch_size or grid % side:
            raise ValueError(
                f"vision: the patch grid ({self.image_size}/{self.patch_size}) must be a "
                f"multiple of {side} to pool to {NUM_IMAGE_TOKENS} tokens"
            )

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class UNetConfig:
    """The SDXL-layout de-tokenizer UNet (diffusers' UNet2DConditionModel)."""

    block_out_channels: tuple[int, ...]
    layers_per_block: int
    transformer_layers_per_block: tuple[int, ...]
    attention_head_dim: tuple[int, ...]
    norm_num_groups: int = 32
    addition_time_embed_dim: int = 256  # each of the 6 time_ids is embedded to this width
    # wegen-tiny only (the official UNet reads the features through cross-attention alone): the
    # 8x8 feature grid, upsampled to the latent size, is also concatenated to the UNet's input,
    # so each latent position sees the token drawn at its place from the first step
    spatial_context: bool = False

    def __post_init__(self) -> None:
        n = len(self.block_out_channels)
        if not (len(self.transformer_layers_per_block) == len(self.attention_head_dim) == n):
            raise ValueError(
                "unet: block_out_channels, transformer_layers_per_block and "
                "attention_head_dim must have one entry per level"
            )


@dataclass(frozen=True)
class VAEConfig:
    """The image autoencoder (diffusers' AutoencoderKL)."""

    block_out_channels: tuple[int, ...]  # one level per entry; downsampling 2^(levels-1)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    scaling_factor: float = 0.13025
    force_upcast: bool = True  # decode in float32 when the model runs in half precision
    # self-attention in the middle block (SDXL: yes). Without it the autoencoder is fully
    # convolutional, so it trains on small crops and runs at any size
    mid_block_attention: bool = True

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class SchedulerConfig:
    """Euler discrete sampling with the SDXL-base noise schedule."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    timestep_spacing: str = "leading"
    steps_offset: int = 1
    prediction_type: str = "epsilon"  # or "v_prediction": what the UNet outputs

    def __post_init__(self) -> None:
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(
                f"scheduler.prediction_type {self.prediction_type!r}: use 'epsilon' or "
                "'v_prediction'"
            )


@dataclass(frozen=True)
class DecoderConfig:
    """How generated features are turned into pixels, and the defaults a user starts from."""

    image_size: int  # output resolution (square)
    default_steps: int
    default_guidance: float  # classifier-free guidance against all-zero features; 1 = off
    feature_alignment: FeatureAlignment = FeatureAlignment.SHIFTED
    time_ids: TimeIds = TimeIds.ZEROS


@dataclass(frozen=True)
class WeGenConfig:
    """A whole WeGen model. ``name`` is shown to users; everything else is architecture."""

    name: str
    llm: LLMConfig
    vision: VisionConfig
    unet: UNetConfig
    vae: VAEConfig
    decoder: DecoderConfig
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    num_image_tokens: int = NUM_IMAGE_TOKENS
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        if self.num_image_tokens != NUM_IMAGE_TOKENS:
            raise ValueError(f"num_image_tokens must be {NUM_IMAGE_TOKENS}")
        if self.decoder.image_size % self.vae.downsample:
            raise ValueError("decoder.image_size must be a multiple of the VAE's downsampling")

    @property
    def feature_dim(self) -> int:
        """Width of one visual token (cross-attention width of the UNet)."""
        return self.vision.width

    @property
    def latent_size(self) -> int:
        return self.decoder.image_size // self.vae.downsample

    def replace(self, **changes: Any) -> WeGenConfig:
        return dataclasses.replace(self, **changes)

    # --- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeGenConfig:
        version = data.get("version", CONFIG_VERSION)
        if not isinstance(version, int) or version > CONFIG_VERSION:
            raise ValueError(
                f"config version {version!r} is newer than this WeGen understands "
                f"({CONFIG_VERSION}); update WeGen desktop"
            )
        return _from_dict(cls, data, "")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> WeGenConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFolderError(
                f"{path} is missing: a model folder needs its config.json"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFolderError(
                f"{path} is not valid JSON ({e}); restore it from the model's original download"
            ) from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ModelFolderError(f"{path}: {e}") from None


# --- presets ----------------------------------------------------------------------------------
def wegen_7b() -> WeGenConfig:
    """The official WeGen dimensions: Llama-2-7B, EVA-CLIP-E-14-plus at 448 px, SDXL decoder."""
    return WeGenConfig(
        name="wegen-7b",
        llm=LLMConfig(
            vocab_size=32330,
            hidden_size=4096,
            intermediate_size=11008,
            num_layers=32,
            num_heads=32,
            num_kv_heads=32,
            max_positions=4096,
            rms_norm_eps=1e-5,
        ),
        vision=VisionConfig(
            image_size=448,
            patch_size=14,
            width=1792,
            depth=64,
            num_heads=16,
            mlp_ratio=15360 / 1792,
        ),
        unet=UNetConfig(
            block_out_channels=(320, 640, 1280),
            layers_per_block=2,
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
        ),
        vae=VAEConfig(block_out_channels=(128, 256, 512, 512)),
        decoder=DecoderConfig(
            image_size=1024,
            default_steps=50,
            default_guidance=7.0,
            feature_alignment=FeatureAlignment.OFFICIAL,
            time_ids=TimeIds.SIZE,
        ),
    )


def wegen_tiny() -> WeGenConfig:
    """The same architecture, small enough for a chat turn in well under a second on 2 CPU cores."""
    return WeGenConfig(
        name="wegen-tiny",
        llm=LLMConfig(
            vocab_size=1354,
            hidden_size=256,
            intermediate_size=704,
            num_layers=4,
            num_heads=4,
            num_kv_heads=4,
            max_positions=1024,
        ),
        # a conv stem (EVA-CLIP: a linear patch embedding): trained from scratch on little data,
        # the small ViT learns shape sooner with it and stage 0's token head
        vision=VisionConfig(
            image_size=128,
            patch_size=8,
            width=192,
            depth=4,
            num_heads=3,
            mlp_ratio=4.0,
            conv_stem=(32, 64, 128),
        ),
        unet=UNetConfig(
            block_out_channels=(32, 64, 128),
            layers_per_block=1,
            transformer_layers_per_block=(1, 1, 1),
            attention_head_dim=(4, 4, 8),
            addition_time_embed_dim=32,
            # a small UNet trained on little data learns *what* to draw from cross-attention
            # long before it learns *where*: the spatial grid gives it the layout directly
            spatial_context=True,
        ),
        # 4x downsampling to 32x32 latents of 16 channels (SDXL: 8x, 4 channels): at 128 px an
        # 8x VAE lost shape and pattern and capped every image metric (training.checks.decoder
        # --ceilings; the sweep in training/weights/vae-4x16-w64). No mid-block attention: fully
        # convolutional, it draws any size and costs little more than its convolutions
        vae=VAEConfig(
            block_out_channels=(32, 64, 64),
            layers_per_block=1,
            latent_channels=16,
            mid_block_attention=False,
        ),
        decoder=DecoderConfig(image_size=128, default_steps=20, default_guidance=3.0),
        # v-prediction (SDXL: epsilon): a small, briefly trained UNet places objects better
        # from high noise when its target stays informative there. "trailing" steps (SDXL:
        # "leading") start sampling at t = 999, not 951, the noise level the UNet learnt to
        # start from (training/NOTES.md: paired end to end, edits kept more, nothing worse)
        scheduler=SchedulerConfig(prediction_type="v_prediction", timestep_spacing="trailing"),
    )


PRESETS: dict[str, typing.Callable[[], WeGenConfig]] = {
    "wegen-7b": wegen_7b,
    "wegen-tiny": wegen_tiny,
}


def preset(name: str) -> WeGenConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


# --- helpers ----------------------------------------------------------------------------------
def _positive(obj: object, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ValueError(f"{type(obj).__name__}.{name} must be positive")


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    return value


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{where or 'config'} must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown key {where + unknown[0]!r} in config"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}{name}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        missing = [
            n
            for n, f in fields.items()
            if n not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        raise ValueError(
            f"missing key {where + missing[0]!r} in config" if missing else str(e)
        ) from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, where + ".")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in hint)
            raise ValueError(f"{where} must be one of {allowed}, not {value!r}") from None
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"{where} must be a list")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_convert(item, v, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (isinstance(hint, type) and not isinstance(value, hint)) or (
        isinstance(value, bool) and hint is not bool
    ):
        raise TypeError(f"{where} must be {hint.__name__}, not {type(value).__name__}")
    return value
