"""Does the model draw what people type? Held-out scenes asked for three ways, with the task left
on automatic as the app starts: the bare description, the description after "draw", and the
Generate task.

    python -m training.checks.phrasing --model DIR [--n 16] [--seed 11]

For each phrasing and each kind of description (a detailed caption, a brief prompt) it prints
the share of requests answered with an image, and how right the images are: for detailed
captions the share of objects whose shape, colour and cell the judge reads right; for brief
prompts the share of images whose judged scene the brief allows. wegen-eval always names the
task, so it cannot see a model that writes text when a bare description asks for a picture.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from PIL import Image

from engine import api
from engine.bundled import default_model_dir
from engine.chat_engine import WeGenEngine
from engine.errors import WeGenError
from training.data.captions import Brief, brief_of, brief_text, detailed_caption
from training.data.judge import parse_scene
from training.data.scoring import attribute_hits
from training.data.splits import sample_scene
from training.data.world import Scene
from training.evaluation.requests import run_request
from training.evaluation.scores import brief_consistent

#: (name, prefix, task) of each way of asking
PHRASINGS: tuple[tuple[str, str, api.Task], ...] = (
    ("bare", "", api.Task.AUTO),
    ("draw", "draw ", api.Task.AUTO),
    ("generate", "", api.Task.GENERATE),
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
        for name, prefix, task in PHRASINGS:
            images, right = 0, 0.0
            for i, (scene, caption, brief, brief_prompt) in enumerate(asked):
                image = drawn(
                    engine, prefix + (caption if kind == "detailed" else brief_prompt), task, i
                )
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
