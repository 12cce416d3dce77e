"""``wegen-cli``: one chat turn to a PNG, an interactive chat, model info, official conversion.

wegen-cli generate "a red fox in the snow" -o fox.png
wegen-cli generate "restore this" --image old.jpg --as restore -o restored.png
wegen-cli chat
wegen-cli info [--model DIR]
wegen-cli convert wegen_mllm_ckpt OUT_DIR
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from engine import api
from engine.errors import WeGenError

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

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--model", help="model folder (default: $WEGEN_MODEL or the bundled wegen-tiny)"
        )
        sp.add_argument("--device", default="auto", help="auto, cuda, cuda:N, npu, mps or cpu")
        sp.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
        sp.add_argument("--backend", default="eager", choices=["eager", "compiled"])

    def settings(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--seed", type=int, help="seed for a reproducible image (default: random)")
        sp.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
        sp.add_argument("--guidance", type=float, help="de-tokenizer guidance scale (1 = off)")
        sp.add_argument(
            "--embedding-cfg",
            type=float,
            default=1.0,
            help="LLM embedding-space guidance (1 = off)",
        )
        sp.add_argument(
            "--denoise-strength",
            type=float,
            default=1.0,
            help="share of the image worked on to redraw (1 = anew; lower keeps more of it)",
        )
        sp.add_argument("--size", type=int, help="output side in pixels")
        sp.add_argument(
            "--psr", action="store_true", help="Prompt Self-Rewriting: rewrite, then generate"
        )
        sp.add_argument("--temperature", type=float, default=0.0, help="text sampling (0 = greedy)")

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
        "-o", "--out", required=True, help="output PNG (a reply with text only prints it)"
    )
    common(g)
    settings(g)

    c = sub.add_parser("chat", help="an interactive multi-turn chat; /image PATH [ROLE] attaches")
    common(c)
    settings(c)

    i = sub.add_parser("info", help="model, device and parameter counts")
    common(i)

    v = sub.add_parser("convert", help="convert the official wegen_mllm_ckpt folder to our format")
    v.add_argument("src")
    v.add_argument("dst")
    v.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {
            "generate": cmd_generate,
            "chat": cmd_chat,
            "info": cmd_info,
            "convert": cmd_convert,
        }[args.command](args)
    except WeGenError as e:
        print(f"wegen-cli: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wegen-cli: interrupted", file=sys.stderr)
        return 130


def _load(args: argparse.Namespace):
    from engine.bundled import require_model_dir
    from engine.chat_engine import WeGenEngine

    folder = require_model_dir(args.model)
    engine = WeGenEngine()
    print(f"loading {folder} …", file=sys.stderr)
    info = engine.load(str(folder), api.RuntimeRequest(args.device, args.precision, args.backend))
    print(f"{info.name} on {info.device} ({info.precision})", file=sys.stderr)
    return engine, info


def _settings(args: argparse.Namespace) -> api.GenerationSettings:
    return api.GenerationSettings(
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        embedding_cfg=args.embedding_cfg,
        denoise_strength=args.denoise_strength,
        size=args.size,
        psr=args.psr,
        temperature=args.temperature,
    )


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


def _run(engine, request: api.Request) -> _Printer:
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


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.images import load_image

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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    printer = _run(
        engine, api.Request(api.Turn.user(args.prompt, *parts), settings=_settings(args), task=task)
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
        target = out if done.index == 0 else out.with_name(f"{out.stem}-{done.index}{out.suffix}")
        save_png(done, target)
        print(f"wrote {target} (seed {done.metadata['settings']['seed']})", file=sys.stderr)
    return 0


def save_png(done: api.ImageDone, path: Path) -> None:
    """Save with the request's metadata in a ``wegen`` text chunk (the app adds more)."""
    import json

    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("wegen", json.dumps(done.metadata))
    done.image.save(path, pnginfo=info)


def cmd_chat(args: argparse.Namespace, read: Callable[[str], str] = input) -> int:
    from engine.images import load_image

    engine, _info = _load(args)
    print(
        "Type a message. /image PATH [image|reference|condition|style|restore] attaches, "
        "/save PATH saves the last image, /new starts over, /quit leaves.",
        file=sys.stderr,
    )
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
        if line in ("/quit", "/exit"):
            return 0
        if line == "/new":
            history, pending = [], []
            continue
        try:
            if line.startswith("/image "):
                words = shlex.split(line[7:])
                role = words[1] if len(words) > 1 else "image"
                if role not in ROLES:
                    raise WeGenError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
                pending.append(api.ImagePart(load_image(words[0]), ROLES[role], words[0]))
                print(f"attached {words[0]} as {role}", file=sys.stderr)
                continue
            if line.startswith("/save "):
                if last is None:
                    raise WeGenError("there is no image to save yet")
                save_png(last, Path(line[6:].strip()))
                continue
            message = api.Turn.user(line, *pending)
            task = next(
                (ROLE_TASKS[p.role.value] for p in pending if p.role.value in ROLE_TASKS),
                api.Task.AUTO,
            )
            printer = _run(engine, api.Request(message, tuple(history), _settings(args), task))
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
                f"[image {done.image.width}×{done.image.height}, seed {done.metadata['settings']['seed']}; "
                "/save PATH to keep it]",
                file=sys.stderr,
            )


def cmd_info(args: argparse.Namespace) -> int:
    from engine.runtime import available_devices

    _, info = _load(args)
    print(f"model      {info.name}  ({info.folder})")
    print(f"runtime    {info.device} · {info.precision} · {info.backend}")
    print(f"devices    {', '.join(available_devices())}")
    print(
        f"image      {info.image_size}px, {info.default_steps} steps, guidance {info.default_guidance}"
    )
    print(f"context    {info.max_context} tokens")
    for part, n in info.parameters.items():
        print(f"params     {part:<11}{n:>15,}")
    print(f"params     {'total':<11}{sum(info.parameters.values()):>15,}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from engine.official import convert_official

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    with tqdm(desc="converting tensors", unit="tensor", file=sys.stderr) as bar:
        out = convert_official(args.src, args.dst, dtype, progress=lambda name: bar.update())
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
