"""Does the model draw what people type? Held-out scenes asked for four ways: with the task left
on automatic as the app starts, the bare description, the description after "draw", and the
description in a phrasing training never used (a held-out request form of
training/data/phrasings.py); and with the Generate task.

    python -m training.checks.phrasing --model DIR [--n 16] [--seed 11]

For each phrasing and each kind of description (a detailed caption, a brief prompt) it prints
the share of requests answered with an image, and how right the images are: for detailed
captions the share of objects whose shape, colour and cell the judge reads right; for brief
prompts the share of images whose judged scene the brief allows. wegen-eval asks on automatic
only for single detailed captions (``draw_routing``, ``t2i_phrasing``); this check also asks for
brief prompts, and several objects, each way.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable

from PIL import Image

from engine import api
from engine.bundled import default_model_dir
from engine.chat_engine import WeGenEngine
from engine.errors import WeGenError
from training.data.captions import Brief, brief_of, brief_text, detailed_caption
from training.data.judge import parse_scene
from training.data.phrasings import phrase_request
from training.data.scoring import attribute_hits
from training.data.splits import sample_scene
from training.data.world import Scene
from training.evaluation.requests import run_request
from training.evaluation.scores import brief_consistent


def _heldout(text: str, i: int) -> str:
    return phrase_request(text, random.Random(f"check phrasing/{i}"), "heldout").text


#: (name, how the i-th description is typed, task) of each way of asking
PHRASINGS: tuple[tuple[str, Callable[[str, int], str], api.Task], ...] = (
    ("bare", lambda text, i: text, api.Task.AUTO),
    ("draw", lambda text, i: f"draw {text}", api.Task.AUTO),
    ("heldout", _heldout, api.Task.AUTO),
    ("generate", lambda text, i: text, api.Task.GENERATE),
)
#: the object attributes a detailed caption's image is read for
READ = ("shape", "colour", "position")


def requests(n: int, seed: int) -> list[tuple[Scene, str, Brief, str]]:
    """``n`` held-out scenes, each with a detailed caption and a brief prompt and its text."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        scene = sample_scene(rng, "heldout")
        caption, brief = detailed_caption(scene, rng), brief_of(scene, rng)
        out.append((scene, caption, brief, brief_text(brief, rng)))
    return out


def drawn(engine: api.Engine, text: str, task: api.Task, seed: int) -> Image.Image | None:
    """The image the engine answers ``text`` with, or None (text, or a failure)."""
    settings = api.GenerationSettings(seed=seed, max_new_tokens=80, previews=False)
    request = api.Request(api.Turn.user(text, task=task), settings=settings, task=task)
    return run_request(engine, request).image


def check_phrasing(engine: api.Engine, n: int = 16, seed: int = 11) -> dict:
    result: dict = {"n": n, "seed": seed}
    asked = requests(n, seed)
    for kind in ("detailed", "brief"):
        for name, typed, task in PHRASINGS:
            images, right = 0, 0.0
            for i, (scene, caption, brief, brief_prompt) in enumerate(asked):
                text = caption if kind == "detailed" else brief_prompt
                image = drawn(engine, typed(text, i), task, i)
                if image is None:
                    continue
                images += 1
                if kind == "detailed":
                    hits = attribute_hits(scene, parse_scene(image))
                    right += sum(hits[a][0] for a in READ) / (len(READ) * len(scene.objects))
                else:
                    right += brief_consistent(brief, image)
            result[f"{kind}/{name}"] = {"drawn": images / n, "right": round(right / n, 4)}
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.checks.phrasing", description=__doc__)
    ap.add_argument("--model", help="model folder (default: $WEGEN_MODEL or the bundled one)")
    ap.add_argument("--n", type=int, default=16, help="held-out scenes")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    engine = WeGenEngine()
    try:
        engine.load(str(args.model or default_model_dir()), api.RuntimeRequest(device=args.device))
    except WeGenError as e:
        sys.exit(f"cannot load the model: {e}")
    print(json.dumps(check_phrasing(engine, args.n, args.seed)))


if __name__ == "__main__":
    main()
