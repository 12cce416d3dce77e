"""The official WeGen release (``wegen_mllm_ckpt/``), loaded unchanged and convertible once.

Layout (see ../shared/reference/OFFICIAL_CHECKPOINT.md)::

    wegen_mllm_ckpt/
      pytorch_model.bin                          llm.*, input/output_resampler (required), maybe adapter.*
      stage1_final/unet/                         config.json + diffusion_pytorch_model[.bf16].safetensors
      stage2_final/checkpoint-30000/             superseded by pytorch_model.bin: not read
      pretrained/EVA-CLIP/visual.pt              the EVA-CLIP-E tower, a plain state dict
      pretrained/stable-diffusion-xl-base-1.0/   vae/ (weights) and scheduler/ (config only)
      pretrained/meta-llama/Llama-2-7b-chat-hf/  config only (every llm.* tensor is overwritten)
      pretrained/SEED-X/...                      the tokenizer with the 330 added tokens

``.bin`` and ``.pt`` files are read with ``torch.load(weights_only=True)``: no code is executed.
Zip-format files (PyTorch >= 1.6) are memory-mapped; legacy (pre-zip) files cannot be, so they
are read whole into memory, with the same ``weights_only`` unpickler.
Names map to ours as follows (`map_agent_key`): ``llm.*`` unchanged, ``input_resampler.proj`` ->
``input_proj``, ``output_resampler.proj`` -> ``output_proj``, ``adapter.unet.*`` ->
``decoder.unet.*``, ``adapter.vae.*`` -> ``decoder.vae.*``, EVA ``*`` / ``adapter.visual_encoder.*``
-> ``vision.tower.*`` with the fused ``qkv.bias`` split into timm's ``q_bias`` and ``v_bias`` (the
key third is dropped: a constant key bias cancels in softmax). Ignored: rotary ``inv_freq``
buffers, the two unused ``scale`` scalars.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import SafetensorError, safe_open

from engine.config import WeGenConfig, wegen_7b
from engine.errors import ModelFolderError
from engine.folder import CONFIG, TOKENIZER, ShardWriter, expected_shapes, place
from engine.model import WeGenModel
from engine.runtime import Runtime
from engine.tokenizer import WeGenTokenizer

AGENT_BIN = "pytorch_model.bin"
UNET_DIR = "stage1_final/unet"
EVA_FILE = "pretrained/EVA-CLIP/visual.pt"
VAE_DIR = "pretrained/stable-diffusion-xl-base-1.0/vae"
LLAMA_DIR = "pretrained/meta-llama/Llama-2-7b-chat-hf"
TOKENIZER_ROOT = "pretrained/SEED-X"

#: (our name, rows of the source tensor to take or None for all)
Target = tuple[str, "slice | None"]

_IGNORED = re.compile(
    r"(\.rotary_emb\.inv_freq$|^input_resampler\.avgpoolquery\.scale$|"
    r"^adapter\.resampler\.scale$)"
)
_EVA_PREFIXES = ("adapter.visual_encoder.", "model.visual.", "visual.")
_EVA_DROPPED = re.compile(r"^(norm|fc_norm|head|rope)\.")
_VAE_RENAMES = (
    (".query.", ".to_q."),
    (".key.", ".to_k."),
    (".value.", ".to_v."),
    (".proj_attn.", ".to_out.0."),
)


def map_eva_key(key: str, shape: tuple[int, ...]) -> list[Target]:
    """An EVA-CLIP tower key (any of the usual prefixes) -> our ``vision.tower.*`` targets."""
    for prefix in _EVA_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    if _EVA_DROPPED.match(key):
        return []
    if key.endswith(".attn.qkv.bias"):
        width = shape[0] // 3
        base = "vision.tower." + key[: -len("qkv.bias")]
        return [(base + "q_bias", slice(0, width)), (base + "v_bias", slice(2 * width, 3 * width))]
    return [("vision.tower." + key, None)]


def map_agent_key(key: str, shape: tuple[int, ...]) -> list[Target]:
    """A key of the official agent state dict -> our targets (empty: ignored)."""
    if _IGNORED.search(key):
        return []
    if key.startswith("llm."):
        return [(key, None)]
    if key == "input_resampler.proj.weight":
        return [("input_proj.weight", None)]
    if key == "output_resampler.proj.weight":
        return [("output_proj.weight", None)]
    if key.startswith("adapter.unet."):
        return [("decoder.unet." + key[len("adapter.unet.") :], None)]
    if key.startswith("adapter.vae."):
        return [("decoder.vae." + _vae_name(key[len("adapter.vae.") :]), None)]
    if key.startswith("adapter.visual_encoder."):
        return map_eva_key(key, shape)
    raise ModelFolderError(
        f"{AGENT_BIN} holds {key!r}, which WeGen does not have: is this a WeGen checkpoint?"
    )


def _vae_name(key: str) -> str:
    for old, new in _VAE_RENAMES:  # diffusers' pre-0.14 attention names
        key = key.replace(old, new)
    return key


def is_official_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / AGENT_BIN).is_file() or (folder / UNET_DIR).is_dir()


def check_official_folder(folder: str | Path) -> list[str]:
    """Missing files of the official layout, each named; empty when complete."""
    folder = Path(folder)
    problems = []
    for rel in (AGENT_BIN, EVA_FILE, f"{UNET_DIR}/config.json", f"{VAE_DIR}/config.json"):
        if not (folder / rel).is_file():
            problems.append(f"{folder / rel} is missing (official WeGen layout)")
    if not _weights_in(folder / UNET_DIR, required=False):
        problems.append(f"{folder / UNET_DIR} has no diffusion_pytorch_model*.safetensors")
    if not _weights_in(folder / VAE_DIR, required=False):
        problems.append(f"{folder / VAE_DIR} has no diffusion_pytorch_model*.safetensors")
    try:
        find_tokenizer_dir(folder)
    except ModelFolderError as e:
        problems.append(str(e))
    return problems


def official_config(folder: Path, config: WeGenConfig | None = None) -> WeGenConfig:
    """The wegen-7b preset (or ``config``), checked against the folder's own config files."""
    config = config or wegen_7b()
    unet_cfg = _read_json(folder / UNET_DIR / "config.json")
    want = {
        "cross_attention_dim": config.feature_dim,
        "projection_class_embeddings_input_dim": 6 * config.unet.addition_time_embed_dim
        + config.feature_dim,
        "block_out_channels": list(config.unet.block_out_channels),
    }
    for key, value in want.items():
        if unet_cfg.get(key) != value:
            raise ModelFolderError(
                f"{folder / UNET_DIR / 'config.json'}: {key} is {unet_cfg.get(key)!r}, "
                f"WeGen's de-tokenizer needs {value!r} (is this the stage-1 WeGen UNet?)"
            )
    llama = folder / LLAMA_DIR / "config.json"
    if llama.is_file():
        hidden = _read_json(llama).get("hidden_size")
        if hidden != config.llm.hidden_size:
            raise ModelFolderError(
                f"{llama}: hidden_size {hidden} is not Llama-2-7B's {config.llm.hidden_size}"
            )
    return config


def find_tokenizer_dir(folder: Path) -> Path:
    root = folder / TOKENIZER_ROOT
    if root.is_dir():
        for candidate in sorted(
            {p.parent for pat in ("tokenizer.json", "tokenizer.model") for p in root.rglob(pat)}
        ):
            return candidate
    raise ModelFolderError(
        f"no tokenizer found under {root}: the SEED-X tokenizer folder "
        "(tokenizer.model + added_tokens.json) is part of the official download"
    )


def load_official_tokenizer(folder: Path) -> WeGenTokenizer:
    tok_dir = find_tokenizer_dir(folder)
    if (tok_dir / "tokenizer.json").is_file():
        return WeGenTokenizer.load(tok_dir / "tokenizer.json")
    try:  # the slow sentencepiece tokenizer: transformers converts it to a fast one
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(str(tok_dir))
    except Exception as e:
        raise ModelFolderError(
            f"could not read the tokenizer in {tok_dir} ({e}); install "
            "'sentencepiece' and 'protobuf' to convert it"
        ) from None
    return WeGenTokenizer(fast.backend_tokenizer, str(tok_dir))


# --- tensors ------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path} is missing (official WeGen layout)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFolderError(f"{path} is not valid JSON ({e})") from None


def _weights_in(folder: Path, required: bool = True) -> Path | None:
    for name in (
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.bf16.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
    ):
        if (folder / name).is_file():
            return folder / name
    if required:
        raise ModelFolderError(f"{folder} has no diffusion_pytorch_model*.safetensors")
    return None


ZIP_MAGIC = b"PK\x03\x04"  # how torch.save's zip format starts; legacy files start otherwise


def _torch_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelFolderError(f"{path} is missing (official WeGen layout)")
    with open(path, "rb") as f:
        zipped = f.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    try:  # mmap needs the zip format; a legacy file is read whole, as safely
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except Exception as e:  # pickle/zip errors of many kinds; never fall back to unsafe loading
        raise ModelFolderError(
            f"{path} could not be read safely ({type(e).__name__}: {e}); it "
            "may be truncated, or hold more than tensors"
        ) from None
    if isinstance(state, dict) and "module" in state and isinstance(state["module"], dict):
        state = state["module"]  # a DeepSpeed model-states file
    if not isinstance(state, dict):
        raise ModelFolderError(f"{path} does not hold a state dict")
    return state


def _safetensors(path: Path, rename=lambda k: k) -> Iterator[tuple[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                yield rename(key), f.get_tensor(key)
    except (SafetensorError, OSError) as e:
        raise ModelFolderError(f"{path} is not a readable safetensors file ({e})") from None


def official_tensors(folder: str | Path) -> Iterator[tuple[str, torch.Tensor, Path]]:
    """Our (name, tensor, source file) for every tensor, in the official load order.

    Later sources win: stage-1 UNet and the SDXL VAE first, then EVA, then pytorch_model.bin.
    """
    folder = Path(folder)
    unet = _weights_in(folder / UNET_DIR)
    vae = _weights_in(folder / VAE_DIR)
    assert unet is not None and vae is not None
    for key, tensor in _safetensors(unet):
        yield "decoder.unet." + key, tensor, unet
    for key, tensor in _safetensors(vae):
        yield "decoder.vae." + _vae_name(key), tensor, vae
    for source, mapper in ((folder / EVA_FILE, map_eva_key), (folder / AGENT_BIN, map_agent_key)):
        state = _torch_file(source)
        for key, tensor in state.items():
            for name, rows in mapper(key, tuple(tensor.shape)):
                yield name, (tensor[rows] if rows is not None else tensor), source


def _collect(folder: Path, config: WeGenConfig) -> Iterator[tuple[str, torch.Tensor]]:
    """Validated tensors: shapes checked, the agent's required tensors present, nothing missing."""
    expected = expected_shapes(config)
    seen: dict[str, torch.Tensor] = {}
    for name, tensor, source in official_tensors(folder):
        if name not in expected:
            raise ModelFolderError(f"{source} holds {name!r} (our name), which WeGen does not have")
        if tuple(tensor.shape) != expected[name]:
            hint = (
                " (a 224-px EVA-CLIP position table; WeGen needs the 448-px tower)"
                if name.endswith("pos_embed")
                else ""
            )
            raise ModelFolderError(
                f"{source}: {name!r} has shape {tuple(tensor.shape)}, WeGen needs "
                f"{expected[name]}{hint}"
            )
        seen[name] = tensor
    missing = [k for k in expected if k not in seen]
    if missing:
        raise ModelFolderError(
            f"{len(missing)} tensor(s) are missing from the official folder "
            f"{folder}, e.g. {missing[0]!r}: check {AGENT_BIN} is the full WeGen "
            "checkpoint"
        )
    yield from seen.items()


def load_official(
    folder: str | Path, runtime: Runtime, config: WeGenConfig | None = None
) -> tuple[WeGenModel, WeGenTokenizer]:
    """Load the official layout directly onto the runtime's device and dtype.

    ``config`` defaults to the wegen-7b preset; tests pass a small one.
    """
    folder = Path(folder)
    problems = check_official_folder(folder)
    if problems:
        raise ModelFolderError("; ".join(problems))
    config = official_config(folder, config)
    tokenizer = load_official_tokenizer(folder)
    state = dict(_collect(folder, config))
    with init_empty_weights(include_buffers=False):
        model = WeGenModel(config)
    model.load_state_dict(state, strict=True, assign=True)
    return place(model, runtime), tokenizer


def convert_official(
    src: str | Path,
    dst: str | Path,
    dtype: torch.dtype = torch.float16,
    progress=None,
    config: WeGenConfig | None = None,
) -> Path:
    """Convert the official layout into our model folder (shards of at most 4 GiB).

    Source files are memory-mapped where their format allows; shards are written as they fill.
    """
    src, dst = Path(src), Path(dst)
    problems = check_official_folder(src)
    if problems:
        raise ModelFolderError("; ".join(problems))
    config = official_config(src, config)
    tokenizer = load_official_tokenizer(src)
    dst.mkdir(parents=True, exist_ok=True)
    with ShardWriter(dst) as writer:
        for name, tensor in _collect(src, config):
            writer.add(name, tensor.to(dtype) if tensor.is_floating_point() else tensor)
            if progress is not None:
                progress(name)
    config.save(dst / CONFIG)
    tokenizer.save(dst / TOKENIZER)
    return dst
