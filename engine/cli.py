"""``wegen-cli``: one chat turn to a PNG, an interactive chat, model and build info, conversion.

wegen-cli generate "a red fox in the snow" -o fox.png
wegen-cli generate "restore this" --image old.jpg --as restore -o restored.png
wegen-cli chat
wegen-cli info [--model DIR]                 # also WeGen's version and build
wegen-cli convert wegen_mllm_ckpt OUT_DIR

Everything a command can check without a model is checked before the model loads: the settings
(`GenerationSettings.validate`, the ranges of `engine.api.SETTING_RANGES`), the image size against
the model folder's config, the attachments, and the output file (`engine.files.check_output_file`).
Output is PNG only: JPEG and WebP are refused, because the prompt and settings that reproduce an
image travel in PNG text chunks. PNGs are written atomically (`engine.files.write_png_atomic`).

Start-up cost: this module imports only the standard library and engine.api; each command imports
what it needs when it runs (``--help`` no torch, ``info`` torch but no transformers or diffusers).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine import api
from engine.cli_options import (
    add_runtime_options,
    add_setting_options,
    check_output,
    model_dir_from_args,
    runtime_request,
    settings_from_args,
)
from engine.errors import WeGenError

if TYPE_CHECKING:
    from engine.chat_engine import WeGenEngine

ROLES = {
    "image": api.ImageRole.IMAGE,
    "reference": api.ImageRole.REFERENCE,
    "condition": api.ImageRole.CONDITION,
    "style": api.ImageRole.STYLE,
    "restore": api.ImageRole.RESTORE,
}
#: the task an attachment role implies when no --task is given
ROLE_TASKS = {
    "reference": api.Task.SUBJECT,
    "condition": api.Task.CONDITION,
    "style": api.Task.STYLE,
    "restore": api.Task.RESTORE,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wegen-cli", description="WeGen from the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    common, settings = add_runtime_options, add_setting_options

    g = sub.add_parser("generate", help="run one chat turn and save the image as PNG")
    g.add_argument("prompt")
    g.add_argument("--image", action="append", default=[], help="attach an image (repeatable)")
    g.add_argument(
        "--as",
        dest="roles",
        action="append",
        default=[],
        choices=list(ROLES),
        help="what each --image is for, in the same order (default: image)",
    )
    g.add_argument(
        "--task",
        choices=[t.value for t in api.Task],
        help="task hint (default: from the attachments)",
    )
    g.add_argument(
        "-o",
        "--out",
        required=True,
        help="output .png, written atomically with the prompt and settings in its metadata "
        "(JPEG and WebP are refused: they would not carry them). Its folder must exist. "
        "A second image goes to NAME-1.png. A reply with text only prints it",
    )
    common(g)
    settings(g)

    c = sub.add_parser("chat", help="an interactive multi-turn chat; /help lists its commands")
    common(c)
    settings(c)

    i = sub.add_parser("info", help="WeGen's version and build, model, device, parameter counts")
    common(i)

    v = sub.add_parser("convert", help="convert the official wegen_mllm_ckpt folder to our format")
    v.add_argument("src")
    v.add_argument("dst")
    v.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    x = sub.add_parser(
        "export-onnx",
        help="export a model folder to an ONNX model folder (one graph per module)",
    )
    x.add_argument("src", help="a model folder (config.json + *.safetensors)")
    x.add_argument("dst", help="the ONNX model folder to write (new or empty)")
    x.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="fp16: GPUs")
    x.add_argument(
        "--quantize", choices=("int8",), default=None, help="int8: the LLM's weights in int8"
    )
    x.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {
            "generate": cmd_generate,
            "chat": cmd_chat,
            "info": cmd_info,
            "convert": cmd_convert,
            "export-onnx": cmd_export_onnx,
        }[args.command](args)
    except WeGenError as e:
        print(f"wegen-cli: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wegen-cli: interrupted", file=sys.stderr)
        return 130


def _load(args: argparse.Namespace) -> tuple[WeGenEngine, api.ModelInfo]:
    from engine.chat_engine import WeGenEngine

    folder = model_dir_from_args(args)
    engine = WeGenEngine()
    print(f"loading {folder} …", file=sys.stderr)
    info = engine.load(
        str(folder), runtime_request(args), lambda _d, _t, what: print(what, "…", file=sys.stderr)
    )
    compiled = f", compiled in {info.warm_up_seconds:.1f} s" if info.warm_up_seconds else ""
    print(f"{info.name} on {info.device} ({info.precision}{compiled})", file=sys.stderr)
    return engine, info


class _Printer:
    """Streams events to the terminal: text as it comes, progress bars for tokens and steps."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = None
        self.images: list[api.ImageDone] = []
        self.final: api.Event | None = None

    def _bar(self, total: int, desc: str, done: int) -> None:
        if self.bar is None or self.bar.desc != desc:
            self._close()
            self.bar = self._tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, event: api.Event) -> None:
        if isinstance(event, api.TextDelta):
            self._close()
            print(event.text, end="", flush=True)
        elif isinstance(event, api.Rewrite):
            print(f"[rewritten prompt] {event.text}", file=sys.stderr)
        elif isinstance(event, api.ImageTokenProgress):
            self._bar(event.total, "image tokens", event.done)
        elif isinstance(event, api.DenoiseStep):
            self._bar(event.total, "denoising", event.step)
        elif isinstance(event, api.ImageDone):
            self._close()
            self.images.append(event)
        else:
            self._close()
            self.final = event


def _run(engine: WeGenEngine, request: api.Request) -> _Printer:
    printer = _Printer()
    cancel = threading.Event()
    try:
        engine.run(request, printer, cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    if isinstance(printer.final, api.Failed):
        raise WeGenError(printer.final.message)
    return printer


def _target(out: Path, index: int) -> Path:
    """Where image ``index`` of a reply goes: ``out``, then ``out-1.png``, ``out-2.png``, ..."""
    return out if index == 0 else out.with_name(f"{out.stem}-{index}{out.suffix}")


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.images import load_image

    settings = settings_from_args(args)
    out = check_output(args.out)
    if len(args.roles) > len(args.image):
        raise WeGenError("there are more --as values than --image files")
    roles = args.roles + ["image"] * (len(args.image) - len(args.roles))
    parts = [
        api.ImagePart(load_image(path), ROLES[role], str(path))
        for path, role in zip(args.image, roles, strict=True)
    ]
    task = (
        api.Task(args.task)
        if args.task
        else next((ROLE_TASKS[r] for r in roles if r in ROLE_TASKS), api.Task.GENERATE)
    )
    engine, _ = _load(args)
    printer = _run(
        engine, api.Request(api.Turn.user(args.prompt, *parts), settings=settings, task=task)
    )
    if (
        printer.final is not None
        and isinstance(printer.final, api.Finished)
        and printer.final.reply.text
    ):
        print()
    if not printer.images:
        print("(the reply has no image; nothing was written)", file=sys.stderr)
        return 1
    for done in printer.images:
        target = _target(out, done.index)
        save_png(done, target)
        print(f"wrote {target} (seed {done.metadata['settings']['seed']})", file=sys.stderr)
    return 0


def save_png(done: api.ImageDone, path: Path) -> Path:
    """Save atomically with the image's metadata in the same three chunks the app writes
    (`engine.png_metadata`: A1111 ``parameters``, the ``wegen`` record, XMP).

    A failure (disk full, read-only) raises `OutputPathError` and leaves an old file whole.
    """
    from engine.png_metadata import save_png_atomic

    return save_png_atomic(done.image, path, done.metadata)


# --- chat ---------------------------------------------------------------------------------------
CHAT_COMMANDS = {
    "/image PATH [ROLE]": "attach an image to the next message; ROLE is one of "
    + ", ".join(ROLES)
    + " (default: image)",
    "/save PATH": "save the last image as PNG, with its metadata",
    "/new": "start a new conversation",
    "/help": "list these commands",
    "/quit": "leave (also /exit, or Ctrl-D)",
}
CHAT_HELP = "\n".join(f"  {usage:<20} {what}" for usage, what in CHAT_COMMANDS.items()) + (
    "\n  A line that starts with // sends the rest, starting with /, as a message."
)


def cmd_chat(args: argparse.Namespace, read: Callable[[str], str] = input) -> int:
    from engine.images import load_image

    settings = settings_from_args(args)
    engine, _info = _load(args)
    print("Type a message; /help lists the commands.", file=sys.stderr)
    history: list[api.Turn] = []
    pending: list[api.ImagePart] = []
    last: api.ImageDone | None = None
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            return 0
        if not line:
            continue
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            if line.startswith("//"):
                line = line[1:]
            elif command in ("/quit", "/exit"):
                return 0
            elif command == "/new":
                history, pending = [], []
                print("started a new conversation", file=sys.stderr)
                continue
            elif command == "/help":
                print(CHAT_HELP, file=sys.stderr)
                continue
            elif command == "/image":
                words = shlex.split(rest)
                if not words:
                    raise WeGenError("/image needs a file: /image PATH [ROLE]")
                role = words[1] if len(words) > 1 else "image"
                if role not in ROLES:
                    raise WeGenError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
                pending.append(api.ImagePart(load_image(words[0]), ROLES[role], words[0]))
                print(f"attached {words[0]} as {role}", file=sys.stderr)
                continue
            elif command == "/save":
                if not rest:
                    raise WeGenError("/save needs a file name: /save PATH.png")
                if last is None:
                    raise WeGenError("there is no image to save yet")
                saved = save_png(last, check_output(rest))
                print(f"saved {saved}", file=sys.stderr)
                continue
            elif command.startswith("/"):
                raise WeGenError(
                    f"unknown command {command}; /help lists the commands "
                    "(start a message with // to send it as it is)"
                )
            message = api.Turn.user(line, *pending)
            task = next(
                (ROLE_TASKS[p.role.value] for p in pending if p.role.value in ROLE_TASKS),
                api.Task.AUTO,
            )
            printer = _run(engine, api.Request(message, tuple(history), settings, task))
        except WeGenError as e:
            print(f"wegen-cli: {e}", file=sys.stderr)
            continue
        pending = []
        print()
        if isinstance(printer.final, api.Finished):
            history += [message, printer.final.reply]
        for done in printer.images:
            last = done
            print(
                f"[image {done.image.width}×{done.image.height}, "
                f"seed {done.metadata['settings']['seed']}; /save PATH.png to keep it]",
                file=sys.stderr,
            )


# --- info and convert ---------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    """Model facts from config.json and the safetensors headers, without loading the weights:
    torch is imported only to name the device; transformers and diffusers not at all."""
    from engine.config import WeGenConfig

    folder = model_dir_from_args(args)
    if not (folder / "config.json").is_file():
        return _info_by_loading(args)  # the official layout has no config.json: load it
    from engine.folder import count_parameters, tensor_shapes
    from engine.onnx_folder import is_onnx_folder, read_onnx_folder
    from engine.runtime import available_devices, select_runtime

    if is_onnx_folder(folder):
        exported = read_onnx_folder(folder)
        config, parameters = exported.config, exported.parameters
    else:
        config = WeGenConfig.load(folder / "config.json")
        parameters = count_parameters(tensor_shapes(folder))
    runtime = select_runtime(runtime_request(args))
    d = config.decoder
    low, high, multiple = api.size_limits(d.image_size, config.vae.downsample)
    _print_info(
        name=config.name,
        folder=str(folder),
        runtime=runtime.describe(),
        devices=available_devices(),
        image=f"{d.image_size}px ({low}..{high}, multiples of {multiple}), "
        f"{d.default_steps} steps, guidance {d.default_guidance}",
        context=config.llm.max_positions,
        parameters=parameters,
    )
    return 0


def _info_by_loading(args: argparse.Namespace) -> int:
    from engine.runtime import available_devices

    _, info = _load(args)
    _print_info(
        name=info.name,
        folder=info.folder,
        runtime=f"{info.device} · {info.precision} · {info.backend}",
        devices=available_devices(),
        image=f"{info.image_size}px, {info.default_steps} steps, guidance {info.default_guidance}",
        context=info.max_context,
        parameters=info.parameters,
    )
    return 0


def _print_info(
    *,
    name: str,
    folder: str,
    runtime: str,
    devices: list[str],
    image: str,
    context: int,
    parameters: dict[str, int],
) -> None:
    print(f"wegen      {api.version()}, {api.build()}")
    print(f"model      {name}  ({folder})")
    print(f"runtime    {runtime}")
    print(f"devices    {', '.join(devices)}")
    print(f"image      {image}")
    print(f"context    {context} tokens")
    for part, n in parameters.items():
        print(f"params     {part:<11}{n:>15,}")
    print(f"params     {'total':<11}{sum(parameters.values()):>15,}")


def cmd_convert(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from engine.official import convert_official

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    with tqdm(desc="converting tensors", unit="tensor", file=sys.stderr) as bar:
        out = convert_official(args.src, args.dst, dtype, progress=lambda name: bar.update())
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.onnx_export import DEFAULT_OPSET, export_onnx

    with tqdm(unit="graph", file=sys.stderr) as bar:

        def progress(done: int, total: int, what: str) -> None:
            bar.total, bar.n = total, done
            bar.set_description(what)
            bar.refresh()

        out = export_onnx(
            args.src,
            args.dst,
            precision=args.precision,
            quantize=args.quantize,
            opset=args.opset or DEFAULT_OPSET,
            progress=progress,
        )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
