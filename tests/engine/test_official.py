"""The official checkpoint layout: key manifests on the meta device, and a tiny layout round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.config import wegen_7b, wegen_tiny
from engine.decoder import unet_kwargs
from engine.errors import ModelFolderError
from engine.folder import load_model_folder, verify_model_folder
from engine.model import WeGenModel
from engine.official import (
    AGENT_BIN,
    EVA_FILE,
    UNET_DIR,
    VAE_DIR,
    convert_official,
    load_official,
    map_agent_key,
    map_eva_key,
)
from engine.runtime import Runtime

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
CPU = Runtime(torch.device("cpu"), torch.float32)


def _manifest(name: str) -> dict[str, list[int]]:
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"{path} is not beside this checkout")
    return json.loads(path.read_text())["keys"]


def _coverage(keys: dict[str, list[int]], mapper, expected: dict[str, tuple[int, ...]]) -> set[str]:
    covered = set()
    for key, shape in keys.items():
        for name, rows in mapper(key, tuple(shape)):
            assert name in expected, f"{key} maps to {name}, which the 7B model lacks"
            got = tuple(shape) if rows is None else (rows.stop - rows.start, *shape[1:])
            assert got == expected[name], f"{key}: {got} vs {expected[name]}"
            covered.add(name)
    return covered


def test_every_official_key_maps_to_a_parameter_and_every_parameter_is_covered():
    with torch.device("meta"):
        model = WeGenModel(wegen_7b())
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    agent = _manifest("official_agent_keys.json")
    eva = _manifest("official_eva_visual_keys.json")
    assert len(agent) == 3027 and len(eva) == 772
    covered = _coverage(agent, map_agent_key, expected)
    assert covered == set(expected)  # the agent dict alone covers everything (EVA included)
    eva_covered = _coverage(eva, map_eva_key, expected)
    assert eva_covered == {k for k in expected if k.startswith("vision.")}


def test_eva_variants_are_normalised():
    assert map_eva_key("model.visual.blocks.3.mlp.fc1.weight", (8, 4)) == [
        ("vision.tower.blocks.3.mlp.fc1.weight", None)
    ]
    assert map_eva_key("norm.weight", (4,)) == [] and map_eva_key("head.weight", (2, 4)) == []
    (q, qs), (v, vs) = map_eva_key("blocks.0.attn.qkv.bias", (12,))
    assert (q, v) == ("vision.tower.blocks.0.attn.q_bias", "vision.tower.blocks.0.attn.v_bias")
    assert (qs, vs) == (slice(0, 4), slice(8, 12))
    with pytest.raises(ModelFolderError, match="WeGen does not have"):
        map_agent_key("something.else", (1,))


# --- a tiny model written in the official layout ------------------------------------------------
def _write_official(model: WeGenModel, tokenizer, root: Path, *, legacy: bool = False) -> Path:
    """The official layout; ``legacy`` writes the ``.bin``/``.pt`` files in torch's pre-zip format."""
    state = model.state_dict()
    agent, eva, unet, vae = {}, {}, {}, {}
    for name, t in state.items():
        t = t.clone()
        if name.startswith("llm."):
            agent[name] = t
        elif name == "input_proj.weight":
            agent["input_resampler.proj.weight"] = t
        elif name == "output_proj.weight":
            agent["output_resampler.proj.weight"] = t
        elif name.startswith("decoder.unet."):
            unet[name[len("decoder.unet.") :]] = t
        elif name.startswith("decoder.vae."):
            key = (
                name[len("decoder.vae.") :]
                .replace(".to_q.", ".query.")
                .replace(".to_out.0.", ".proj_attn.")
            )
            vae[key] = t  # the old attention names, as early SDXL VAE files have
        elif name.endswith(".attn.q_bias"):
            base = name[len("vision.tower.") : -len("q_bias")]
            v = state[name[: -len("q_bias")] + "v_bias"]
            eva[base + "qkv.bias"] = torch.cat([t, torch.randn_like(t), v])  # any key bias
        elif not name.endswith(".attn.v_bias"):
            eva[name[len("vision.tower.") :]] = t
    agent["llm.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    agent["adapter.resampler.scale"] = torch.tensor(1.0)
    for rel in (UNET_DIR, VAE_DIR, "pretrained/EVA-CLIP", "pretrained/SEED-X/tok"):
        (root / rel).mkdir(parents=True)
    torch.save(agent, root / AGENT_BIN, _use_new_zipfile_serialization=not legacy)
    torch.save(eva, root / EVA_FILE, _use_new_zipfile_serialization=not legacy)
    save_file(unet, str(root / UNET_DIR / "diffusion_pytorch_model.bf16.safetensors"))
    (root / UNET_DIR / "config.json").write_text(json.dumps(unet_kwargs(model.config)))
    save_file(vae, str(root / VAE_DIR / "diffusion_pytorch_model.safetensors"))
    (root / VAE_DIR / "config.json").write_text("{}")
    tokenizer.save(root / "pretrained/SEED-X/tok/tokenizer.json")
    return root


@pytest.fixture(scope="module")
def official_folder(tmp_path_factory):
    from engine.testing import random_model, tiny_tokenizer

    model = random_model(seed=3)
    return model, _write_official(
        model, tiny_tokenizer(), tmp_path_factory.mktemp("official") / "ckpt"
    )


def test_tiny_official_layout_loads_exactly(official_folder):
    model, folder = official_folder
    loaded, tok = load_official(folder, CPU, config=wegen_tiny())
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, msg=name)
    assert tok.img_start_id is not None
    assert verify_model_folder(folder) == []


def test_convert_then_load_our_format(official_folder, tmp_path):
    model, folder = official_folder
    out = convert_official(folder, tmp_path / "converted", torch.float32, config=wegen_tiny())
    loaded, _ = load_model_folder(out, CPU)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, msg=name)


def test_official_folder_problems_are_named(official_folder, tmp_path):
    _, folder = official_folder
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / AGENT_BIN).write_bytes((folder / AGENT_BIN).read_bytes()[:1000])
    problems = verify_model_folder(broken)
    assert any("visual.pt is missing" in p for p in problems)
    assert any("stage1_final/unet/config.json is missing" in p for p in problems)
    with pytest.raises(ModelFolderError, match="missing"):
        load_official(broken, CPU, config=wegen_tiny())


def test_truncated_agent_bin_is_refused_by_name(official_folder, tmp_path):
    import shutil

    _, folder = official_folder
    copy = shutil.copytree(folder, tmp_path / "copy")
    data = (copy / AGENT_BIN).read_bytes()
    (copy / AGENT_BIN).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match=r"pytorch_model\.bin could not be read safely"):
        load_official(copy, CPU, config=wegen_tiny())


def test_stock_sdxl_unet_config_is_refused(official_folder, tmp_path):
    import shutil

    _, folder = official_folder
    copy = shutil.copytree(folder, tmp_path / "copy")
    cfg = json.loads((copy / UNET_DIR / "config.json").read_text())
    cfg["cross_attention_dim"] = 2048
    (copy / UNET_DIR / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="cross_attention_dim is 2048"):
        load_official(copy, CPU, config=wegen_tiny())


def test_legacy_non_zip_checkpoints_load_without_mmap(tmp_path):
    from engine.testing import random_model, tiny_tokenizer

    model = random_model(seed=4)
    folder = _write_official(model, tiny_tokenizer(), tmp_path / "ckpt", legacy=True)
    assert not (folder / AGENT_BIN).read_bytes().startswith(b"PK")  # really the old format
    loaded, _ = load_official(folder, CPU, config=wegen_tiny())
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, msg=name)


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(self.target),))

    def __init__(self, target: Path) -> None:
        self.target = str(target)


@pytest.mark.parametrize("legacy", [True, False])
def test_a_checkpoint_holding_code_is_refused_and_runs_nothing(official_folder, tmp_path, legacy):
    import shutil

    _, folder = official_folder
    copy = shutil.copytree(folder, tmp_path / "copy")
    ran = tmp_path / "code-ran"
    torch.save(
        {"llm.x": torch.ones(1), "evil": _Payload(ran)},
        copy / AGENT_BIN,
        _use_new_zipfile_serialization=not legacy,
    )
    with pytest.raises(ModelFolderError, match=r"pytorch_model\.bin could not be read safely"):
        load_official(copy, CPU, config=wegen_tiny())
    assert not ran.exists()
