"""Model folders: round trip, sharding, and every broken file named in the message."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from engine.config import WeGenConfig
from engine.errors import ModelFolderError
from engine.folder import ShardWriter, load_model_folder, verify_model_folder, weight_files
from engine.runtime import Runtime

CPU = Runtime(torch.device("cpu"), torch.float32)


@pytest.fixture
def folder(model_folder, tmp_path):
    return shutil.copytree(model_folder, tmp_path / "m")


def test_round_trip_is_exact(folder, model_folder):
    from engine.testing import random_model

    loaded, _tok = load_model_folder(folder, CPU)
    reference = random_model(seed=0)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert verify_model_folder(folder) == []
    assert not any(p.requires_grad for p in loaded.parameters())


def test_bf16_runtime_keeps_the_vae_in_float32(folder):
    loaded, _ = load_model_folder(folder, Runtime(torch.device("cpu"), torch.bfloat16))
    assert loaded.llm.lm_head.weight.dtype == torch.bfloat16
    assert next(loaded.decoder.vae.parameters()).dtype == torch.float32


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors"])
def test_missing_file_is_named(folder, name):
    (folder / name).unlink()
    with pytest.raises(ModelFolderError, match=name.replace(".", r"\.") + " is missing"):
        load_model_folder(folder, CPU)
    assert any(name in p for p in verify_model_folder(folder))


def test_truncated_weights_are_named(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(
        ModelFolderError, match="model.safetensors is not a readable safetensors file"
    ):
        load_model_folder(folder, CPU)


def test_corrupt_tokenizer_is_named(folder):
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(ModelFolderError, match="tokenizer.json is not a valid tokenizer file"):
        load_model_folder(folder, CPU)


def test_shapes_that_do_not_match_the_config_are_refused(folder):
    cfg = WeGenConfig.load(folder / "config.json")
    llm = cfg.llm.__class__(**{**cfg.llm.__dict__, "hidden_size": 128, "intermediate_size": 352})
    cfg.replace(llm=llm).save(folder / "config.json")
    with pytest.raises(ModelFolderError, match="has shape .* but config.json needs"):
        load_model_folder(folder, CPU)
    assert verify_model_folder(folder)


def test_nan_weights_are_refused(folder):
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    state["output_proj.weight"][0, 0] = float("nan")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelFolderError, match="'output_proj.weight' contains NaN"):
        load_model_folder(folder, CPU)


def test_sharded_weights_round_trip(folder):
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    with ShardWriter(folder, shard_bytes=4_000_000) as writer:
        for name, tensor in state.items():
            writer.add(name, tensor)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 3
    assert set(weight_files(folder)) == set(state)
    loaded, _ = load_model_folder(folder, CPU)
    assert torch.equal(loaded.state_dict()["output_proj.weight"], state["output_proj.weight"])
