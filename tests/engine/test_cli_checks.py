"""wegen-cli refuses bad settings and output paths before it loads a model, writes its PNGs
atomically, and its chat answers its own commands.

"Before the model loads" is shown with a model folder that has only its config.json: a check that
ran after loading would report the missing weights instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from engine.bundled import BUNDLED_DIR
from engine.cli import build_parser, cmd_chat, main

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout the tests run in


@pytest.fixture
def config_only(model_folder, tmp_path):
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(model_folder / "config.json", folder / "config.json")
    return folder


def _generate(model: Path, out: Path | str, *extra: str) -> list[str]:
    return ["generate", "a red circle", "--model", str(model), *extra, "-o", str(out)]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--guidance", "nan"], "guidance must be a number from 1 to 20"),
        (["--guidance", "inf"], "guidance must be a number from 1 to 20"),
        (["--guidance=-inf"], "guidance must be a number from 1 to 20"),
        (["--embedding-cfg", "nan"], "embedding CFG scale must be a number from 1 to 10"),
        (["--steps", "0"], "steps must be a whole number from 1 to 1000"),
        (["--seed", str(2**70)], "seed must be a whole number from 0 to 2147483647"),
        (["--temperature", "nan"], "temperature must be a number from 0 to 5"),
        (["--temperature", "inf"], "temperature must be a number from 0 to 5"),
        (["--denoise-strength", "nan"], "redraw (denoise) strength"),
        (["--size", "130"], "use a multiple of 4 between 32 and 256"),  # the tiny VAE: 4x
    ],
)
def test_bad_settings_are_refused_before_the_model_loads(
    config_only, tmp_path, capsys, flags, says
):
    out = tmp_path / "out.png"
    assert main(_generate(config_only, out, *flags)) == 2
    err = capsys.readouterr().err
    assert says in err and "model.safetensors" not in err
    assert "Traceback" not in err and "internal error" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("out", "says"),
    [
        (".", "is a folder: give a file name in it"),
        ("afile/x.png", "is a file, not a folder"),
        ("noext", "has no extension: name the file with .png"),
        ("out.jpg", "writes PNG only"),
        ("out.JPEG", "a JPEG file would not"),
        ("out.webp", "a WebP file would not"),
        ("missing/x.png", "does not exist: create it first"),
        ("out.gif", "has the extension .gif: name the file with .png"),
    ],
)
def test_unusable_output_paths_are_refused_before_the_model_loads(
    config_only, tmp_path, capsys, out, says
):
    (tmp_path / "afile").write_text("a file")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(_generate(config_only, tmp_path / out)) == 2
    err = capsys.readouterr().err
    assert says in err and "model.safetensors" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no probe left


def test_a_device_is_not_an_output_file(config_only, capsys):
    assert main(_generate(config_only, os.devnull)) == 2
    assert "is not a regular file" in capsys.readouterr().err


@contextlib.contextmanager
def _read_only_folder(path: Path):
    """A folder nothing can be written in: chmod for a normal user; as root (whom permissions do
    not stop) a read-only tmpfs, where the machine allows mounting one."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("running as root and cannot mount a read-only file system here")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_folder_is_refused_before_the_model_loads(config_only, tmp_path, capsys):
    with _read_only_folder(tmp_path / "ro") as folder:
        assert main(_generate(config_only, folder / "out.png")) == 2
        err = capsys.readouterr().err
        assert f'cannot write "{folder / "out.png"}"' in err and "nothing was written" in err
        assert "model.safetensors" not in err and "Traceback" not in err
        assert list(folder.iterdir()) == []


def test_generate_replaces_an_existing_file_atomically(model_folder, tmp_path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"the old image")
    inode = out.stat().st_ino
    assert main(_generate(model_folder, out, "--seed", "3", "--steps", "1")) == 0
    assert out.stat().st_ino != inode  # a new file renamed over the old one, not rewritten
    assert json.loads(Image.open(out).text["wegen"])["settings"]["seed"] == 3
    assert (out.stat().st_mode & 0o777) == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left
    assert f"wrote {out}" in capsys.readouterr().err


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_failed_write_leaves_the_old_file_whole_and_says_why(model_folder, tmp_path):
    """A write that fails half-way (here past a file-size limit; a full disk fails the same way):
    the old file keeps every byte, no temporary file stays, and the message says what happened."""
    out = tmp_path / "out.png"
    old = os.urandom(3000)
    out.write_bytes(old)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *_generate(model_folder, out, "--steps", "1")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f'cannot write "{out}"' in done.stderr
    assert "the existing file was left as it was" in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


# --- chat ---------------------------------------------------------------------------------------
def test_chat_answers_its_own_commands(model_folder, tmp_path, capsys):
    src = tmp_path / "old.png"
    Image.new("RGB", (40, 40), (10, 200, 10)).save(src)
    saved = tmp_path / "chat.png"
    lines = iter(
        [
            "/help",
            "/frobnicate now",
            "/save nothing-yet.png",
            f"/image {src} restore",
            "restore it",  # a restore turn always replies with an image
            f"/save {tmp_path / 'chat.jpg'}",
            f"/save {saved}",
            "/quit",
        ]
    )
    args = build_parser().parse_args(
        ["chat", "--model", str(model_folder), "--seed", "2", "--steps", "1"]
    )
    assert cmd_chat(args, read=lambda prompt: next(lines)) == 0
    captured = capsys.readouterr()
    err = captured.err
    for command in ("/image PATH [ROLE]", "/save PATH", "/new", "/help", "/quit"):
        assert command in err
    assert "unknown command /frobnicate; /help lists the commands" in err
    assert "there is no image to save yet" in err
    assert "writes PNG only" in err and not (tmp_path / "chat.jpg").exists()
    assert f"saved {saved}" in err and Image.open(saved).text["wegen"]
    assert "/help" not in captured.out and "frobnicate" not in captured.out  # not sent


def test_chat_refuses_bad_settings_before_the_model_loads(config_only, capsys):
    args = build_parser().parse_args(["chat", "--model", str(config_only), "--steps", "0"])
    with pytest.raises(Exception, match="steps must be a whole number from 1 to 1000"):
        cmd_chat(args, read=lambda prompt: "/quit")
    assert "loading" not in capsys.readouterr().err


# --- start-up cost ------------------------------------------------------------------------------
def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules]\n"
        "print('imported:', *heavy, file=sys.stderr)\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    last = done.stderr.strip().splitlines()[-1].split()
    assert last[0] == "imported:", done.stderr[-2000:]
    return set(last[1:])


def test_help_imports_no_torch():
    assert _modules_after(["--help"]) == set()
    assert _modules_after(["generate", "--help"]) == set()


def test_info_reads_headers_and_imports_no_diffusers_or_transformers():
    assert _modules_after(["info", "--model", str(BUNDLED_DIR), "--device", "cpu"]) == {"torch"}


def test_info_counts_equal_the_loaded_models(model, model_folder, capsys):
    assert main(["info", "--model", str(model_folder), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for part, n in model.parameter_counts().items():
        assert f"{part:<11}{n:>15,}" in out
    assert f"{'total':<11}{sum(model.parameter_counts().values()):>15,}" in out
