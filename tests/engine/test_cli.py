"""wegen-cli as a user runs it: generate to PNG, chat, info, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from engine import api
from engine.cli import build_parser, cmd_chat, main


def test_generate_writes_a_png_with_metadata_and_seed_repeats(model_folder, tmp_path, capsys):
    out = tmp_path / "a.png"
    args = [
        "generate",
        "a red circle",
        "--model",
        str(model_folder),
        "--seed",
        "4",
        "--steps",
        "2",
        "-o",
    ]
    assert main([*args, str(out)]) == 0
    assert main([*args, str(tmp_path / "b.png")]) == 0
    a, b = Image.open(out), Image.open(tmp_path / "b.png")
    assert a.size == (128, 128) and np.array_equal(np.asarray(a), np.asarray(b))
    meta = json.loads(a.text["wegen"])
    assert meta["settings"]["seed"] == 4 and meta["prompt"] == "a red circle"


def test_generate_with_attachment_roles(model_folder, tmp_path):
    src = tmp_path / "old.png"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(src)
    out = tmp_path / "r.png"
    assert (
        main(
            [
                "generate",
                "",
                "--image",
                str(src),
                "--as",
                "restore",
                "--model",
                str(model_folder),
                "--steps",
                "1",
                "--seed",
                "1",
                "--denoise-strength",
                "0.4",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads(Image.open(out).text["wegen"])
    assert meta["task"] == "restore" and meta["attachments"] == [
        {"role": "restore", "source": str(src)}
    ]
    assert meta["settings"]["denoise_strength"] == 0.4


def test_bad_inputs_exit_2_with_a_message(model_folder, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert (
        main(
            [
                "generate",
                "x",
                "--image",
                str(bad),
                "--model",
                str(model_folder),
                "-o",
                str(tmp_path / "o.png"),
            ]
        )
        == 2
    )
    assert "notes.png" in capsys.readouterr().err
    assert main(["info", "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_info_prints_the_version_build_and_parameter_counts(model_folder, capsys):
    assert main(["info", "--model", str(model_folder), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"wegen      {api.version()}, {api.build()}"
    assert "wegen-tiny" in out and "unet" in out and "total" in out


def test_the_memory_option_reaches_the_engine(model_folder, capsys):
    assert main(["info", "--model", str(model_folder), "--device", "cpu", "--memory", "low"]) == 0
    assert "memory low" in capsys.readouterr().out


def test_chat_multi_turn_and_save(model_folder, tmp_path, capsys):
    lines = iter(["a blue star", f"/save {tmp_path / 'chat.png'}", "/image nowhere.png", "/quit"])
    args = build_parser().parse_args(
        ["chat", "--model", str(model_folder), "--seed", "2", "--steps", "1"]
    )
    assert cmd_chat(args, read=lambda prompt: next(lines)) == 0
    err = capsys.readouterr().err
    assert "nowhere.png" in err  # a bad attachment is reported and the chat goes on
    assert (tmp_path / "chat.png").exists() or "no image" in err


def test_console_script_entry_point_runs():
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "generate" in done.stdout and "convert" in done.stdout
