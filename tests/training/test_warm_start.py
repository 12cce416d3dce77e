import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.bundled import BUNDLED_DIR
from engine.config import WeGenConfig, wegen_tiny
from engine.model import WeGenModel
from training.loop import stage_done
from training.warm_start import main, warm_start


@pytest.fixture(scope="module")
def tower(tmp_path_factory):
    """A run folder holding only a vision tower of the preset's shape (the stem included)."""
    folder = tmp_path_factory.mktemp("tower")
    torch.manual_seed(7)
    state = WeGenModel(wegen_tiny()).state_dict()
    save_file(
        {k: v.contiguous() for k, v in state.items() if k.startswith("vision.")},
        str(folder / "model.safetensors"),
    )
    return folder


def test_takes_the_tower_from_one_folder_and_the_rest_from_the_base(tmp_path, tower):
    out = tmp_path / "run"
    result = warm_start(out, BUNDLED_DIR, [("vision.", tower)], ("vae",))
    assert result.fresh == ()
    state = load_file(out / "model.safetensors")
    base = load_file(BUNDLED_DIR / "model.safetensors")
    source = load_file(tower / "model.safetensors")
    vision = [k for k in state if k.startswith("vision.")]
    assert vision and all(torch.equal(state[k], source[k]) for k in vision)
    rest = [k for k in state if not k.startswith("vision.")]
    assert all(torch.equal(state[k], base[k].float()) for k in rest)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    assert result.sources == {str(BUNDLED_DIR): len(rest), str(tower): len(vision)}
    config = WeGenConfig.load(out / "config.json")
    assert config.vision.conv_stem == wegen_tiny().vision.conv_stem
    # the kept autoencoder keeps its latent scale, and reproduce will skip its stage
    bundled_scale = WeGenConfig.load(BUNDLED_DIR / "config.json").vae.scaling_factor
    assert config.vae.scaling_factor == bundled_scale
    assert json.loads((out / "vae" / "scale.json").read_text())["scaling_factor"] == bundled_scale
    assert stage_done(out, "vae") and not stage_done(out, "vision")
    assert (out / "tokenizer.json").read_bytes() == (BUNDLED_DIR / "tokenizer.json").read_bytes()
    # the folder loads into the preset's model as reproduce loads it
    WeGenModel(config).load_state_dict(state)


def test_tensors_no_source_has_start_fresh_and_are_listed(tmp_path):
    # a tower without the conv stem: its linear patch embedding does not fit the preset's stem
    plain = replace(wegen_tiny(), vision=replace(wegen_tiny().vision, conv_stem=()))
    state = WeGenModel(plain).state_dict()
    folder = tmp_path / "plain"
    folder.mkdir()
    save_file(
        {k: v.contiguous() for k, v in state.items() if k.startswith("vision.")},
        str(folder / "model.safetensors"),
    )
    result = warm_start(tmp_path / "run", BUNDLED_DIR, [("vision.", folder)])
    assert result.fresh and all(
        k.startswith("vision.tower.patch_embed.proj.") for k in result.fresh
    )
    assert any(k.endswith(".0.weight") for k in result.fresh)


def test_refuses_to_overwrite_a_run_and_names_bad_input(tmp_path, tower, capsys):
    out = tmp_path / "run"
    warm_start(out, BUNDLED_DIR, [("vision.", tower)])
    with pytest.raises(ValueError, match="already holds a run"):
        warm_start(out, BUNDLED_DIR)
    with pytest.raises(ValueError, match="unknown stage"):
        warm_start(tmp_path / "other", BUNDLED_DIR, done=("vea",))
    with pytest.raises(SystemExit, match="no folder"):
        main(["--out", str(tmp_path / "x"), "--base", str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "y"), "--base", str(BUNDLED_DIR), "--take", "vision"])
    assert "PREFIX=FOLDER" in capsys.readouterr().err


def test_a_preset_with_a_less_compressing_vae_keeps_everything_else(tmp_path):
    from training.presets import wegen_tiny_vae4x

    config = wegen_tiny_vae4x()
    assert config.vae.downsample == 4 and config.latent_size == 32
    result = warm_start(tmp_path / "run", BUNDLED_DIR, done=("vision", "mllm", "sft"),
                        config=config)  # fmt: skip
    state = load_file(tmp_path / "run" / "model.safetensors")
    base = load_file(BUNDLED_DIR / "model.safetensors")
    # only autoencoder tensors start afresh, and the rest is the bundled model's
    assert result.fresh and all(k.startswith("decoder.vae.") for k in result.fresh)
    kept = [k for k in state if k not in result.fresh]
    assert any(k.startswith("decoder.unet.") for k in kept)
    assert all(torch.equal(state[k], base[k].float()) for k in kept)
    model = WeGenModel(WeGenConfig.load(tmp_path / "run" / "config.json")).eval()
    model.load_state_dict(state)
    with torch.no_grad():
        latents = model.decoder.encode_pixels(torch.rand(1, 3, 128, 128))
        assert latents.shape == (1, 16, 32, 32)
        assert model.decoder.decode_latents(latents).shape == (1, 3, 128, 128)


def test_an_autoencoder_from_fit_vae_goes_into_a_model_with_its_scale(tmp_path):
    from training import fit_vae

    vae_run = tmp_path / "vae"
    fit_vae.main(["--out", str(vae_run), "--candidate", "4x16-w64", "--max-steps", "2",
                  "--probe-n", "2", "--ceilings-n", "0", "--batch", "4"])  # fmt: skip
    log = [json.loads(line) for line in (vae_run / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 0 and log[-1]["step"] == 2 and "scaling_factor" in log[-1]
    trained = load_file(vae_run / "model.safetensors")
    assert trained and all(k.startswith("decoder.vae.") for k in trained)

    main(["--out", str(tmp_path / "run"), "--base", str(BUNDLED_DIR), "--preset", str(vae_run),
          "--take", f"decoder.vae.={vae_run}", "--done", "vision,vae,mllm,sft"])  # fmt: skip
    config = WeGenConfig.load(tmp_path / "run" / "config.json")
    assert config.vae == WeGenConfig.load(vae_run / "config.json").vae
    assert config.vae.scaling_factor == log[-1]["scaling_factor"]
    assert config.vae.downsample == 4 and not config.vae.mid_block_attention
    state = load_file(tmp_path / "run" / "model.safetensors")
    base = load_file(BUNDLED_DIR / "model.safetensors")
    assert all(torch.equal(state[k], v.float()) for k, v in trained.items())
    assert torch.equal(
        state["llm.model.embed_tokens.weight"], base["llm.model.embed_tokens.weight"].float()
    )
    model = WeGenModel(config).eval()
    model.load_state_dict(state)  # the UNet's input grew to the new latents: it starts afresh
    with torch.no_grad():
        latents = model.decoder.encode_pixels(torch.rand(1, 3, 128, 128))
        assert latents.shape == (1, 16, 32, 32)


def test_the_committed_gate_1_autoencoder_keeps_a_heldout_scene():
    """training/weights/vae-4x16-w64 loads as fit_vae wrote it and round-trips a held-out
    render far better than noise (its model card numbers come from the same round trips)."""
    from pathlib import Path

    from training import fit_vae
    from training.checks.decoder import vae_round_trip
    from training.evaluation.scores import psnr
    from training.stages.vision import pixels_of

    folder = Path(fit_vae.__file__).parent / "weights" / "vae-4x16-w64"
    model = fit_vae.load(folder).eval()
    assert model.config.vae.downsample == 4 and not model.config.vae.mid_block_attention
    (_, sample), *_ = fit_vae.heldout_samples(fit_vae.T2I.kind, 1, 0, fit_vae.T2I.accept, 128)
    truth = sample.images[-1]
    (back,) = vae_round_trip(model, pixels_of([truth]))
    assert psnr(back, truth) > 30.0
    ceilings = json.loads((folder / "ceilings.json").read_text())
    assert ceilings["t2i_single"]["vae"] > 0.38  # the bundled VAE's, same 48 samples
