"""check_phrasing: held-out requests asked four ways, scored by the judge."""

from __future__ import annotations

from engine import api
from training.checks.phrasing import PHRASINGS, check_phrasing, requests
from training.data.phrasings import REQUEST_FORMS, parse
from training.data.render import render_scene
from training.data.splits import is_heldout_scene


class _Engine:
    """Draws the true scene of a known request when ``draws`` says so, else answers in text."""

    def __init__(self, n: int, seed: int, draws) -> None:
        self.scenes = {}
        for scene, caption, _brief, brief_prompt in requests(n, seed):
            self.scenes[caption] = self.scenes[brief_prompt] = scene
        self.draws = draws
        self.asked: list[tuple[str, api.Task]] = []

    def run(self, request, on_event, cancel):
        text, task = request.message.text, request.task
        self.asked.append((text, task))
        # the description is in the request whatever its form and case
        described = max((k for k in self.scenes if k.lower() in text.lower()), key=len)
        if self.draws(text, task):
            reply = api.Turn.assistant(api.ImagePart(render_scene(self.scenes[described], 128)))
        else:
            reply = api.Turn.assistant("a rewritten prompt")
        on_event(api.Finished(request.request_id, reply))


def test_requests_are_heldout_and_reproducible():
    a, b = requests(4, 3), requests(4, 3)
    assert a == b and len(a) == 4
    assert all(is_heldout_scene(scene) for scene, *_ in a)
    assert requests(4, 4) != a


def test_a_model_that_draws_the_truth_scores_one_and_one_that_writes_scores_zero():
    perfect = check_phrasing(_Engine(3, 5, lambda text, task: True), n=3, seed=5)
    for kind in ("detailed", "brief"):
        for name, _typed, _task in PHRASINGS:
            assert perfect[f"{kind}/{name}"] == {"drawn": 1.0, "right": 1.0}

    # a model that draws only when the task or a verb says so (what run 13 did with briefs)
    engine = _Engine(3, 5, lambda text, task: task is api.Task.GENERATE or text.startswith("draw "))
    picky = check_phrasing(engine, n=3, seed=5)
    assert picky["detailed/bare"] == picky["brief/bare"] == {"drawn": 0.0, "right": 0.0}
    assert picky["detailed/heldout"] == picky["brief/heldout"] == {"drawn": 0.0, "right": 0.0}
    assert picky["brief/draw"] == picky["detailed/generate"] == {"drawn": 1.0, "right": 1.0}
    # each request once per phrasing and kind, the task on automatic unless Generate is named
    assert len(engine.asked) == 3 * len(PHRASINGS) * 2
    assert {task for _text, task in engine.asked} == {api.Task.AUTO, api.Task.GENERATE}
    heldout = [text for text, _task in engine.asked[2 * 3 : 3 * 3]]  # detailed, third way
    assert all(parse(text).form in REQUEST_FORMS["heldout"] for text in heldout)
