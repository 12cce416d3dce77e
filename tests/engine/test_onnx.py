"""The ONNX Runtime backend: the bundled model exported once, then run against PyTorch eager.

Real onnxruntime, no mocks. Parity: same request and seed; greedy text identical, the 64 generated
features within 1e-3 relative error, images >= 40 dB PSNR. Bad ONNX folders fail with the file
named and nothing loaded.
"""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from engine import api
from engine.bundled import BUNDLED_DIR
from engine.chat_engine import WeGenEngine
from engine.errors import ModelFolderError, RuntimeChoiceError
from engine.folder import load_model_folder
from engine.generate import LoopOptions, Prompt, generate
from engine.onnx_export import (
    describe_graph,
    export_graph,
    export_onnx,
    fp16_folder,
    quantize_folder,
    save_graph,
    share_llm_weights,
)
from engine.onnx_folder import (
    FORMAT,
    GRAPHS,
    SCHEMA_VERSION,
    read_onnx_folder,
    sha256_file,
    source_sha256,
    verify_onnx_folder,
)
from engine.onnx_graphs import graph_specs
from engine.onnx_runtime import cache_root, load_onnx, load_onnx_folder
from engine.prompt import encode_conversation
from engine.runtime import Runtime, select_runtime
from engine.template import ImageRole, Role, TemplateTurn

pytestmark = pytest.mark.skipif(not BUNDLED_DIR.is_dir(), reason="the bundled model is absent")

CPU = api.RuntimeRequest(device="cpu", precision="fp32")
ONNX_RUNTIME = select_runtime(api.RuntimeRequest(device="cpu", precision="fp32", backend="onnx"))


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    """The bundled model exported once for this module (about a minute on 2 cores)."""
    steps = []
    out = export_onnx(
        BUNDLED_DIR,
        tmp_path_factory.mktemp("onnx") / "wegen-tiny-onnx",
        progress=lambda done, total, what: steps.append((done, total)),
    )
    assert steps[0][0] == 0 and steps[-1][0] == steps[-1][1]
    return out


@pytest.fixture(scope="module")
def torch_model():
    model, tok = load_model_folder(BUNDLED_DIR, Runtime(torch.device("cpu"), torch.float32))
    return model, tok


@pytest.fixture(scope="module")
def onnx_model(onnx_dir):
    return load_onnx_folder(onnx_dir, ONNX_RUNTIME)


@pytest.fixture(scope="module")
def engines(onnx_dir):
    eager, onnx = WeGenEngine(), WeGenEngine()
    eager.load(str(BUNDLED_DIR), CPU)
    onnx.load(str(onnx_dir), api.RuntimeRequest(device="cpu", precision="fp32", backend="onnx"))
    return eager, onnx


def run(engine, request):
    events = []
    engine.run(request, events.append, threading.Event())
    assert isinstance(events[-1], api.Finished), events[-1]
    return events


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = (np.asarray(im, dtype=np.float64) for im in (a, b))
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


def scene(seed: int = 0, size: int = 128) -> Image.Image:
    """A few flat coloured rectangles on a light background, like the shapes world."""
    rng = np.random.default_rng(seed)
    pixels = np.full((size, size, 3), 235, dtype=np.uint8)
    for _ in range(3):
        x, y = rng.integers(0, size - 40, 2)
        w, h = rng.integers(16, 40, 2)
        pixels[y : y + h, x : x + w] = rng.integers(0, 255, 3)
    return Image.fromarray(pixels, "RGB")


# --- the folder -----------------------------------------------------------------------------------
def test_export_writes_a_versioned_self_describing_folder(onnx_dir):
    data = json.loads((onnx_dir / "config.json").read_text())
    assert data["format"] == FORMAT and data["schema_version"] == SCHEMA_VERSION
    assert data["source"]["sha256"] == source_sha256(BUNDLED_DIR)
    assert data["opset"] >= 18 and data["precision"] == "fp32" and data["quantize"] is None
    assert {"torch", "onnxruntime", "onnx"} <= set(data["versions"])
    assert list(data["graphs"]) == list(GRAPHS)
    decode = data["graphs"]["llm_decode"]
    names = [a["name"] for a in decode["inputs"]]
    assert names[:3] == ["inputs_embeds", "attention_mask", "position_ids"]
    assert "past.0.key" in names and "present.0.value" in [a["name"] for a in decode["outputs"]]
    # batch and cache length stayed dynamic (a size-1 example would have fixed them to 1)
    assert all(a["shape"][0] == "batch" for a in decode["inputs"])
    assert isinstance(decode["inputs"][3]["shape"][2], str)
    assert (onnx_dir / "tokenizer.json").read_bytes() == (
        BUNDLED_DIR / "tokenizer.json"
    ).read_bytes()
    assert verify_onnx_folder(onnx_dir) == []


def test_export_is_deterministic(onnx_dir, torch_model, tmp_path):
    model, _ = torch_model
    specs = {s.name: s for s in graph_specs(model)}
    recorded = read_onnx_folder(onnx_dir).graphs
    for name in ("input_proj", "feedback"):
        export_graph(
            specs[name], tmp_path / specs[name].file, opset=read_onnx_folder(onnx_dir).opset
        )
        (meta,) = recorded[name].files.values()
        assert sha256_file(tmp_path / specs[name].file) == meta["sha256"], name


# --- parity with PyTorch eager ----------------------------------------------------------------------
def test_batch_two_runs_through_every_dynamic_dimension(torch_model, onnx_model):
    model, _ = torch_model
    onnx, _ = onnx_model
    pixels = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model.vision(pixels)
    assert relative_error(want, onnx.vision(pixels)) < 1e-4
    latents = torch.randn(2, 16, 12, 12, generator=torch.Generator().manual_seed(1))
    args = (latents, torch.tensor([900.0, 10.0]), want, torch.zeros(2, 6))
    with torch.no_grad():
        noise = model.decoder(*args)
    assert relative_error(noise, onnx.decoder.forward(*args)) < 1e-4  # a 96 px image too


@pytest.mark.parametrize(
    ("parts", "cfg"),
    [
        (("Generate a painting: a large red circle at the top left",), 1.0),
        ((ImageRole.IMAGE, "Edit the image: make the circle blue"), 2.0),
    ],
    ids=["text-to-image", "edit-with-embedding-cfg"],
)
def test_token_loop_features_match(torch_model, onnx_model, parts, cfg):
    model, tok = torch_model
    onnx, _ = onnx_model
    turn = TemplateTurn(Role.USER, parts)
    encoded = encode_conversation(tok, [turn], max_tokens=1024, reserve=100)
    image = model.vision.preprocess([scene()])
    with torch.no_grad():
        torch_feats = model.vision(image)[0] if encoded.image_indices else None
    onnx_feats = (
        onnx.vision(onnx.vision.preprocess([scene()]))[0] if encoded.image_indices else None
    )
    opts = LoopOptions(max_new_tokens=8, embedding_cfg=cfg, wants_image=True)

    def loop(m, feats):
        return generate(m, tok, [Prompt(encoded.ids, encoded.image_mask, feats)], opts, [3])[0]

    want, got = loop(model, torch_feats), loop(onnx, onnx_feats)
    assert got.text_ids() == want.text_ids()
    (want_image,), (got_image,) = want.images, got.images
    assert got_image.shape == (64, model.config.feature_dim)
    assert relative_error(want_image, got_image) < 1e-3


@pytest.mark.parametrize(
    ("task", "roles", "strength"),
    [
        (api.Task.GENERATE, (), 1.0),
        (api.Task.RESTORE, (ImageRole.RESTORE,), 1.0),
        (api.Task.EDIT, (ImageRole.IMAGE,), 0.6),  # SDEdit: the VAE encoder runs too
    ],
)
def test_chat_turns_match_eager(engines, task, roles, strength):
    eager, onnx = engines
    parts = [api.ImagePart(scene(i), r, f"in{i}.png") for i, r in enumerate(roles)]
    request = api.Request(
        api.Turn.user("a small blue star in the centre", *parts),
        task=task,
        settings=api.GenerationSettings(
            seed=5, steps=2, max_new_tokens=8, guidance=3.0, denoise_strength=strength
        ),
    )
    want, got = run(eager, request), run(onnx, request)
    assert got[-1].reply.text == want[-1].reply.text
    (a,), (b,) = want[-1].reply.images, got[-1].reply.images
    assert psnr(a.image, b.image) >= 40
    assert got[-1].timings.to_dict().keys() == want[-1].timings.to_dict().keys()


def test_describe_gives_the_same_greedy_answer(engines):
    eager, onnx = engines
    request = api.Request(
        api.Turn.user(
            "What colour is the largest object?", api.ImagePart(scene(3), ImageRole.IMAGE)
        ),
        task=api.Task.DESCRIBE,
        settings=api.GenerationSettings(seed=0, max_new_tokens=12),
    )
    want, got = run(eager, request), run(onnx, request)
    assert got[-1].reply.text == want[-1].reply.text and not got[-1].reply.images


def test_model_info_names_the_backend(engines):
    _, onnx = engines
    assert onnx.info.backend == "onnx" and onnx.info.device == "cpu"
    assert onnx.info.parameters == engines[0].info.parameters


def test_int8_folder_runs_close_to_fp32(onnx_dir, engines, tmp_path):
    int8 = shutil.copytree(onnx_dir, tmp_path / "int8")
    quantize_folder(int8)
    found = read_onnx_folder(int8)
    assert found.quantize == "int8" and verify_onnx_folder(int8) == []
    sizes = {
        name: (onnx_dir / f"{name}.onnx").stat().st_size / (int8 / f"{name}.onnx").stat().st_size
        for name in ("llm_prefill", "llm_decode")
    }
    assert all(ratio > 2.5 for ratio in sizes.values()), sizes  # int8 weights: about 4x smaller
    engine = WeGenEngine()
    engine.load(str(int8), api.RuntimeRequest(device="cpu", precision="fp32", backend="onnx"))
    request = api.Request(
        api.Turn.user("a large red circle at the top left"),
        task=api.Task.GENERATE,
        settings=api.GenerationSettings(seed=0, steps=3, max_new_tokens=4),
    )
    (want,), (got,) = (
        run(engines[1], request)[-1].reply.images,
        run(engine, request)[-1].reply.images,
    )
    assert psnr(want.image, got.image) > 30  # close, not equal: measured 41-46 dB at 20 steps


def test_fp16_folder_keeps_float32_io_and_stays_close(onnx_dir, onnx_model, tmp_path):
    half = shutil.copytree(onnx_dir, tmp_path / "fp16")
    fp16_folder(half)
    found = read_onnx_folder(half)
    assert found.precision == "fp16" and verify_onnx_folder(half) == []
    assert found.graphs["unet"].inputs[0]["type"] == "tensor(float)"  # the loop stays float32
    assert (half / "unet.onnx").stat().st_size < 0.6 * (onnx_dir / "unet.onnx").stat().st_size
    # meant for GPUs; the CPU provider runs it too, which is enough to check the numbers
    runtime = Runtime(torch.device("cpu"), torch.float16, "onnx", onnx_device="cpu")
    model, _ = load_onnx_folder(half, runtime)
    pixels = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    features = onnx_model[0].vision(pixels)
    assert relative_error(features, model.vision(pixels)) < 1e-2
    latents = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    args = (latents, torch.tensor([900.0, 10.0]), features, torch.zeros(2, 6))
    assert relative_error(onnx_model[0].decoder.forward(*args), model.decoder.forward(*args)) < 1e-2


def test_large_models_share_the_llm_weights_between_prefill_and_decode(onnx_dir, tmp_path):
    import onnx

    big = shutil.copytree(onnx_dir, tmp_path / "big")
    data = json.loads((big / "config.json").read_text())
    for name in ("llm_prefill", "llm_decode"):  # as a 7B export saves them: weights beside
        save_graph(onnx.load(str(big / f"{name}.onnx")), big / f"{name}.onnx", large=True)
        data["graphs"][name] = describe_graph(big, f"{name}.onnx")
    (big / "config.json").write_text(json.dumps(data))
    share_llm_weights(big)
    assert not (big / "llm_decode.onnx.data").exists()
    assert list(read_onnx_folder(big).graphs["llm_decode"].files) == [
        "llm_decode.onnx",
        "llm_prefill.onnx.data",
    ]
    assert verify_onnx_folder(big) == []
    model, _ = load_onnx_folder(big, ONNX_RUNTIME)
    reference, _ = load_onnx_folder(onnx_dir, ONNX_RUNTIME)
    embeds = torch.randn(1, 5, 256, generator=torch.Generator().manual_seed(0))
    outputs = []
    for m in (model, reference):
        cache = m.new_cache()
        m(embeds, cache=cache, last_only=True)
        outputs.append(m(embeds[:, :1], cache=cache, last_only=True)[1])
    assert torch.equal(*outputs)


def test_pytorch_folder_reuses_its_cached_export(onnx_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WEGEN_CACHE", str(tmp_path))
    cached = cache_root() / f"{source_sha256(BUNDLED_DIR)[:24]}-fp32"
    shutil.copytree(onnx_dir, cached)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in cached.iterdir())
    for _ in range(2):  # the second time the source's hash is remembered, not recomputed
        model, _ = load_onnx(BUNDLED_DIR, ONNX_RUNTIME)
        assert model.folder.path == cached
    assert sorted((p.name, p.stat().st_mtime_ns) for p in cached.iterdir()) == before
    memo = json.loads((cache_root() / "sources.json").read_text())
    assert memo[str(BUNDLED_DIR.resolve())]["sha256"] == source_sha256(BUNDLED_DIR)


# --- bad folders and impossible choices ------------------------------------------------------------
@pytest.fixture
def broken(onnx_dir, tmp_path):
    """A fresh copy of the export to damage."""
    return shutil.copytree(onnx_dir, tmp_path / "copy")


def _edit_config(folder, change):
    path = folder / "config.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _load_fails(folder, match):
    engine = WeGenEngine()
    with pytest.raises(ModelFolderError, match=match):
        engine.load(str(folder), api.RuntimeRequest(device="cpu", precision="fp32", backend="onnx"))
    assert engine.model is None  # nothing half-loaded


def test_another_schema_version_is_refused(broken):
    _edit_config(broken, lambda d: d.update(schema_version=SCHEMA_VERSION + 1))
    _load_fails(broken, r"config\.json has ONNX schema version 2")


def test_missing_graph_is_named(broken):
    (broken / "unet.onnx").unlink()
    _load_fails(broken, r"unet\.onnx is missing")


def test_truncated_graph_is_named(broken):
    path = broken / "llm_decode.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _load_fails(broken, r"llm_decode\.onnx has \d+ bytes but config\.json records")


def test_corrupt_graph_of_the_recorded_size_is_named(broken):
    path = broken / "feedback.onnx"
    path.write_bytes(b"\0" * path.stat().st_size)
    _load_fails(broken, r"feedback\.onnx could not be loaded by onnxruntime")
    assert any("feedback.onnx" in p for p in verify_onnx_folder(broken))


def test_folder_verification_checks_onnx_folders_too(onnx_dir, broken):
    """What the settings dialog's Verify runs (`engine.folder.verify_model_folder`)."""
    from engine.folder import verify_model_folder

    assert verify_model_folder(onnx_dir) == []
    path = broken / "unet.onnx"
    path.write_bytes(path.read_bytes()[:100])
    assert any("unet.onnx" in p for p in verify_model_folder(broken))


def test_graph_from_another_model_is_named(broken):
    # a graph whose inputs differ from config.json's record, at the recorded size
    shutil.copyfile(broken / "input_proj.onnx", broken / "vae_encoder.onnx")
    size = (broken / "vae_encoder.onnx").stat().st_size
    _edit_config(
        broken,
        lambda d: d["graphs"]["vae_encoder"]["files"]["vae_encoder.onnx"].update(bytes=size),
    )
    _load_fails(broken, r"vae_encoder\.onnx does not match .*config\.json.*another model")


def test_onnx_folder_needs_the_onnx_backend(onnx_dir):
    with pytest.raises(RuntimeChoiceError, match="ONNX model folder: choose the onnx backend"):
        WeGenEngine().load(str(onnx_dir), CPU)


@pytest.mark.parametrize(
    ("device", "provider", "package"),
    [
        ("cuda", "CUDAExecutionProvider", "onnxruntime-gpu"),
        ("tensorrt", "TensorrtExecutionProvider", "TensorRT"),
        ("npu", "CANNExecutionProvider", "onnxruntime-cann"),
    ],
)
def test_missing_execution_provider_names_the_package(device, provider, package):
    import onnxruntime

    if provider in onnxruntime.get_available_providers():
        pytest.skip(f"{provider} is installed here")
    with pytest.raises(RuntimeChoiceError, match=rf"{provider} is not installed.*{package}"):
        select_runtime(api.RuntimeRequest(device=device, backend="onnx"))


def test_onnx_runtime_choices():
    assert ONNX_RUNTIME.onnx_device == "cpu" and ONNX_RUNTIME.describe() == "cpu · fp32 · onnx"
    with pytest.raises(RuntimeChoiceError, match="fp32 or fp16"):
        select_runtime(api.RuntimeRequest(device="cpu", precision="bf16", backend="onnx"))


# --- the command line -------------------------------------------------------------------------
def test_cli_info_reads_an_onnx_folder_without_loading_it(onnx_dir, capsys):
    from engine.cli import main

    assert main(["info", "--model", str(onnx_dir), "--device", "cpu", "--backend", "onnx"]) == 0
    out = capsys.readouterr().out
    exported = read_onnx_folder(onnx_dir)
    assert f"model      {exported.config.name}" in out
    assert f"{sum(exported.parameters.values()):>15,}" in out


def test_cli_export_refuses_a_folder_that_is_not_empty_before_exporting(onnx_dir, capsys):
    from engine.cli import main

    assert main(["export-onnx", str(BUNDLED_DIR), str(onnx_dir)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["export-onnx", str(onnx_dir), str(onnx_dir) + "-again"]) == 2
    assert "already an ONNX model folder" in capsys.readouterr().err
