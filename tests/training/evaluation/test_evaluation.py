"""wegen-eval: the whole evaluation end to end on a random tiny model, requests that reproduce the
training prompts, and every scorer with ground-truth images standing in for the model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

from engine import api
from engine.template import PSR_INSTRUCTION, ImageRole, Role, TemplateTurn, task_text
from engine.testing import make_random_model_folder
from training import evaluation as ev
from training.checks.compare_reports import compare
from training.data.captions import COLOUR_WORDS, SHAPE_WORDS
from training.data.phrasings import REQUEST_FORMS, parse
from training.data.render import render_scene
from training.data.samples import SAMPLE_KINDS, Ask
from training.data.splits import is_heldout_scene
from training.data.tasks import evaluated_scenes, fits_split, make_sample
from training.evaluation.confidence import format_interval, wilson
from training.model_card import card

CAPS = {c.name: c for c in ev.CAPABILITIES}
FRACTIONS = set(ev.METRICS) - {
    "restoration_psnr_gain_db",
    "psr_diversity_ratio",
    "psr_fidelity_drop",
    "psr_attributes_kept",  # a share, but a PSR statistic: no judge ceiling
    "brief_drawn",  # the same
    "t2i_phrasing_gap",  # a difference of two shares, in [-1, 1]
}


def samples(name: str, n: int = 2, *, judge_friendly: bool = True):
    """Held-out samples of a capability; ``judge_friendly`` skips pixel style (the judge misreads
    ~10% of pixel-style objects, see judge.JUDGE_NOTES)."""
    cap = CAPS[name]

    def accept(s):
        return cap.accept(s) and not (
            judge_friendly and any(spec.scene.style == "pixel" for spec in s.specs)
        )

    return [s for _, s in ev.heldout_samples(cap.kind, n, 0, accept, 128)]


def blank() -> Image.Image:
    return Image.new("RGB", (128, 128), (250, 250, 250))


# --- end to end -----------------------------------------------------------------------------
def test_cli_evaluates_a_random_model_on_heldout_samples(tmp_path, capsys, keep_threads):
    folder = make_random_model_folder(tmp_path / "tiny", seed=0)
    out = tmp_path / "eval" / "report.json"
    argv = ["--model", str(folder), "--out", str(out), "--n", "1", "--psr-seeds", "2"]
    assert ev.main([*argv, "--device", "cpu", "--seed", "3", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1

    text = out.read_text()
    data = json.loads(text)
    report = ev.Report.from_json(text)
    assert report.to_dict() == data  # JSON round-trips
    assert set(report.metrics) == set(ev.METRICS) == set(data["metrics"])
    for name, m in report.metrics.items():
        assert m.n == 1 and m.target == ev.METRICS[name].target
        if name in FRACTIONS:
            assert 0.0 <= m.value <= 1.0 and m.ceiling is not None and 0 <= m.ceiling <= 1
        low, high = data["metrics"][name]["interval"]  # one sample: an interval around it
        assert low - 1e-9 <= m.value <= high + 1e-9
    gain = report.metrics["restoration_psnr_gain_db"].value
    assert -ev.PSNR_CAP <= gain <= ev.PSNR_CAP
    assert report.metrics["psr_diversity_ratio"].value >= 0
    assert -1 <= report.metrics["psr_fidelity_drop"].value <= 1
    assert 0 <= report.metrics["psr_attributes_kept"].value <= 1
    assert 0 <= report.metrics["brief_drawn"].value <= 1
    gap = report.metrics["t2i_phrasing_gap"].value
    phrasing, single = report.metrics["t2i_phrasing"].value, report.metrics["t2i_single"].value
    assert gap == single - phrasing

    # held out only: every evaluated sample is a held-out sample that contains a held-out combo
    assert {i["capability"] for i in report.items} == set(ev.CAPABILITY_NAMES)
    for item in report.items:
        assert item["split"] == "heldout"
        sample = make_sample(item["kind"], item["sample_seed"], "heldout", size=32)
        assert fits_split(sample)
        if item["kind"] != "psr":
            assert any(is_heldout_scene(s) for s in evaluated_scenes(sample))

    markdown = (tmp_path / "eval" / "report.md").read_text()
    assert markdown in capsys.readouterr().out
    for name in ev.METRICS:
        assert f"| {name} |" in markdown


class _FailingEngine:
    def run(self, request, on_event, cancel):
        on_event(api.Failed(request.request_id, "the device ran out of memory"))


class _RaisingEngine:
    def run(self, request, on_event, cancel):
        raise RuntimeError("boom")


def test_failed_requests_are_misses_and_reported():
    turns = []
    report = ev.evaluate(_FailingEngine(), 1, 0, psr_seeds=2, size=64, progress=turns.append)
    assert len(turns) == ev.count_turns(1, 2)
    assert set(report.metrics) == set(ev.METRICS)
    for name in FRACTIONS | {
        "restoration_psnr_gain_db",
        "psr_diversity_ratio",
        "psr_attributes_kept",
        "brief_drawn",
        "t2i_phrasing_gap",
    }:
        assert report.metrics[name].value == 0.0
    assert report.metrics["psr_diversity_ratio"].failed == 4
    assert report.metrics["vqa"].failed == 1
    assert f"{len(turns)} × the device ran out of memory" in report.to_markdown()

    out = ev.run_request(_RaisingEngine(), api.Request(api.Turn.user("hi")))
    assert out.failure == "engine raised RuntimeError: boom" and out.image is None


class _ImagesEngine:
    """Answers every request with the next of ``images``."""

    def __init__(self, images):
        self.images = iter(images)

    def run(self, request, on_event, cancel):
        reply = api.Turn.assistant(api.ImagePart(next(self.images)))
        on_event(api.Finished(request.request_id, reply))


def test_t2i_reports_partial_credit_attribute_by_attribute():
    # the true targets, in the order the evaluation asks for them, read almost all right ...
    truths = [
        render_scene(s.target_scenes[-1], 128)
        for _, s in ev.heldout_samples("t2i", 4, 0, CAPS["t2i_single"].accept, 128)
    ]
    report = ev.evaluate(_ImagesEngine(truths), 4, 0, size=128, only=["t2i_single"])
    shares = report.attribute_accuracy("t2i_single")
    assert set(shares) == {"shape", "colour", "size", "position", "pattern"} | {
        "count",
        "background",
        "style",
    }
    assert min(shares.values()) >= 0.75, shares
    assert report.attribute_accuracy("t2i_pair") == {}
    assert "attribute by attribute" in report.to_markdown()
    assert ev.Report.from_json(report.to_json()).attribute_accuracy("t2i_single") == shares
    # ... and an empty canvas reads no object
    report = ev.evaluate(_ImagesEngine([blank()] * 4), 4, 0, size=128, only=["t2i_single"])
    shares = report.attribute_accuracy("t2i_single")
    assert shares["shape"] == shares["colour"] == shares["count"] == 0.0


def test_t2i_phrasing_asks_for_t2i_singles_scenes_in_heldout_phrasings_on_automatic():
    single, phrasing = CAPS["t2i_single"], CAPS["t2i_phrasing"]
    settings = api.GenerationSettings(seed=1)
    drawn = ev.heldout_samples("t2i", 6, 0, single.accept, 32)
    asked = ev.heldout_samples("t2i", 6, 0, phrasing.accept, 32)
    texts = []
    for (seed, sample), (other_seed, other) in zip(drawn, asked, strict=True):
        assert (seed, sample) == (other_seed, other)  # the same samples: a paired comparison
        request = ev.build_request(sample, phrasing.task, settings)
        typed = phrasing.as_typed(sample, request, seed)
        assert typed == phrasing.as_typed(sample, request, seed)  # chosen by the sample's seed
        assert typed.task is api.Task.AUTO and typed.settings is settings
        assert not typed.message.images and not typed.history
        text = typed.message.text
        assert parse(text).form in REQUEST_FORMS["heldout"]
        (obj,) = sample.target_scenes[-1].objects  # the scene, described in the request
        assert any(w in text.lower() for w in COLOUR_WORDS[obj.colour])
        assert any(w in text.lower() for w in SHAPE_WORDS[obj.shape])
        texts.append(text)
    assert len(set(texts)) == len(texts)


def test_the_phrasing_gap_compares_the_two_on_the_same_samples():
    truths = [
        render_scene(s.target_scenes[-1], 128)
        for _, s in ev.heldout_samples("t2i", 4, 0, CAPS["t2i_single"].accept, 128)
    ]
    both = ["t2i_single", "t2i_phrasing"]
    # drawn alike however it is asked: no gap, and every pair agrees
    alike = ev.evaluate(_ImagesEngine(truths * 2), 4, 0, size=128, only=both)
    assert list(alike.metrics) == [*both, "t2i_phrasing_gap"]  # the gap beside what it compares
    gap = alike.metrics["t2i_phrasing_gap"]
    assert (gap.value, gap.n, gap.ceiling, gap.op, gap.target) == (0.0, 4, None, "<=", 0.1)
    assert gap.passed and alike.interval("t2i_phrasing_gap") == (0.0, 0.0)
    # an empty canvas for every held-out phrasing: the whole template score is lost
    lost = ev.evaluate(_ImagesEngine(truths + [blank()] * 4), 4, 0, size=128, only=both)
    single, gap = lost.metrics["t2i_single"].value, lost.metrics["t2i_phrasing_gap"]
    assert single >= 0.75 and lost.metrics["t2i_phrasing"].value == 0.0
    assert gap.value == single and not gap.passed
    low, high = lost.interval("t2i_phrasing_gap")
    assert 0.0 < low <= single <= high <= 1.0
    assert (
        f"| t2i_phrasing_gap | {single:.3f} | {format_interval((low, high))} | ≤ 0.1 | FAIL |"
        in (lost.to_markdown())
    )
    assert ev.Report.from_json(lost.to_json()).metrics == lost.metrics
    (d,) = [d for d in compare(alike, lost) if d.metric == "t2i_phrasing_gap"]
    assert (d.a, d.b, d.verdict) == (0.0, single, "B worse")
    # one of the two alone: nothing to compare
    alone = ev.evaluate(_ImagesEngine(truths), 4, 0, size=128, only=["t2i_phrasing"])
    assert list(alone.metrics) == ["t2i_phrasing"]


_QUESTION_STARTS = {
    "colour": "What colour is",
    "shape": "What shape is",
    "size": "What size is",
    "pattern": "What pattern does",
    "position": "Where is",
    "count": "How many",
    "exists": "Is there",
    "background": "What is the background",
    "style": "What style is",
}


def test_vqa_kind_names_what_each_question_asks():
    seen = set()
    for seed in range(160):
        sample = make_sample("vqa", seed, "heldout", 32)
        kind = ev.vqa_kind(sample)
        question = sample.asks[-1].raw  # typed in lower case, or a follow-up, now and then
        assert _QUESTION_STARTS[kind].lower() in question.lower(), (kind, question)
        seen.add(kind)
    assert seen == set(_QUESTION_STARTS)


class _YesEngine:
    """Answers every question "Yes."."""

    def run(self, request, on_event, cancel):
        on_event(api.Finished(request.request_id, api.Turn.assistant("Yes.")))


def test_vqa_reports_its_score_by_what_the_question_asks():
    report = ev.evaluate(_YesEngine(), 40, 0, size=32, only=["vqa"])
    samples = [make_sample("vqa", i["sample_seed"], i["split"], 32) for i in report.items]
    kinds = [ev.vqa_kind(s) for s in samples]
    assert [list(i["attributes"]) for i in report.items] == [[k] for k in kinds]
    # "yes" is right only for a question whether something is there, and only when it is
    exists = [
        ev.vqa_answer(s) == "yes" for s, k in zip(samples, kinds, strict=True) if k == "exists"
    ]
    shares = report.attribute_accuracy("vqa")
    assert shares == {k: (sum(exists) / len(exists) if k == "exists" else 0.0) for k in kinds}
    assert len(shares) >= 6 and len(exists) > 0
    right = sum(exists)  # every other question is answered wrong
    assert report.metrics["vqa"].value == right / 40
    assert report.interval("vqa") == wilson(right, 40)
    markdown = report.to_markdown()
    assert f"| vqa | {right / 40:.3f} | {format_interval(wilson(right, 40))} |" in markdown
    assert "VQA, by what the question asks" in markdown
    assert "attribute by attribute" not in markdown  # no drawing was asked for


class _RecordingEngine(_FailingEngine):
    def __init__(self):
        self.requests = []

    def run(self, request, on_event, cancel):
        self.requests.append(request)
        super().run(request, on_event, cancel)


def test_settings_reach_every_request_and_the_training_split_is_for_tuning():
    engine = _RecordingEngine()
    settings = api.GenerationSettings(steps=7, guidance=4.5, embedding_cfg=1.5, seed=99)
    report = ev.evaluate(
        engine, 1, 0, psr_seeds=2, size=32, only=["t2i_single", "vqa", "psr"], settings=settings
    )
    assert len(engine.requests) == 1 + 1 + 2 * 2
    seeds = set()
    for request in engine.requests:
        s = request.settings
        assert (s.steps, s.guidance, s.embedding_cfg) == (7, 4.5, 1.5)
        seeds.add(s.seed)
    assert 99 not in seeds and len(seeds) >= 2  # every item keeps its own seed
    assert {r.settings.psr for r in engine.requests[2:]} == {True, False}
    assert engine.requests[1].settings.max_new_tokens == ev.VQA_MAX_NEW_TOKENS
    markdown = report.to_markdown()
    assert "Held-out samples only" in markdown and "guidance 4.5" in markdown
    assert report.settings["steps"] == 7
    assert ev.Report.from_json(report.to_json()).settings == report.settings

    train = ev.evaluate(_RecordingEngine(), 2, 0, size=32, only=["t2i_pair"], split="train")
    assert [i["split"] for i in train.items] == ["train", "train"]
    for item in train.items:
        sample = make_sample(item["kind"], item["sample_seed"], "train", 32)
        assert fits_split(sample) and not any(is_heldout_scene(x) for x in sample.scenes)
    assert "train samples" in train.to_markdown()
    with pytest.raises(ValueError, match="split"):
        ev.evaluate(_RecordingEngine(), 1, 0, only=["vqa"], split="test")


def test_cli_refuses_settings_that_cannot_run(tmp_path, capsys):
    for bad in (["--steps", "0"], ["--guidance", "0.5"], ["--split", "test"]):
        with pytest.raises(SystemExit):
            ev.main(["--out", str(tmp_path / "r.json"), *bad])
        assert "--" in capsys.readouterr().err


# --- requests -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [c.name for c in ev.CAPABILITIES])
def test_requests_reproduce_the_training_prompt(name):
    cap = CAPS[name]
    for sample in samples(name, 3, judge_friendly=False):
        settings = api.GenerationSettings(seed=5)
        request = ev.build_request(sample, cap.task, settings)
        assert request.task is cap.task and request.settings is settings
        # what the engine renders: history verbatim, the message phrased by the task hint
        turns = [
            TemplateTurn(
                t.role, tuple(p.role if isinstance(p, api.ImagePart) else p for p in t.parts)
            )
            for t in request.history
        ]
        phrased = task_text(request.task, request.message.text)
        parts = (*(p.role for p in request.message.images), *((phrased,) if phrased else ()))
        turns.append(TemplateTurn(Role.USER, parts))
        assert tuple(turns) == sample.turns[:-1]
        # every image is the ground-truth render of its slot (the history too)
        images = [p.image for t in (*request.history, request.message) for p in t.images]
        assert all(a is b for a, b in zip(images, sample.images, strict=False))
        assert len(images) == len(sample.images) - sample.turns[-1].parts.count(ImageRole.IMAGE)


def test_multi_turn_edits_keep_the_true_previous_render_in_the_history():
    cap = CAPS["edit"]
    picked = next(
        s for _, s in ev.heldout_samples("edit", 40, 0, cap.accept, 64) if sum(s.targets) >= 2
    )
    request = ev.build_request(picked, cap.task, api.GenerationSettings())
    assert request.history[-1].role is Role.ASSISTANT
    assert request.history[-1].images[0].image is picked.images[-2]


def test_samples_carry_the_raw_text_and_task_that_phrase_each_user_turn():
    # what the evaluation sends (raw text, task hint) phrases back into the training prompt
    for kind in SAMPLE_KINDS:
        for seed in range(12):
            sample = make_sample(kind, seed, "heldout", 16)
            users = [t for t in sample.turns if t.role is Role.USER]
            assert len(users) == len(sample.asks)
            for turn, ask in zip(users, sample.asks, strict=True):
                text = "".join(p for p in turn.parts if not isinstance(p, ImageRole))
                if ask.psr:
                    assert text == PSR_INSTRUCTION.format(text=ask.raw)
                else:
                    assert text == task_text(ask.task, ask.raw)
    # a sample whose turns and asks disagree is refused
    good = make_sample("t2i", 0, size=16)
    with pytest.raises(ValueError, match="ask"):
        replace(good, asks=(Ask(api.Task.GENERATE, "something else"),))


# --- scorers with ground truth --------------------------------------------------------------
def test_t2i_scorer():
    for name in ("t2i_single", "t2i_phrasing", "t2i_pair"):
        for s in samples(name):
            assert ev.t2i_score(s, s.images[-1]) == 1.0
            assert ev.t2i_score(s, blank()) == 0.0 and ev.t2i_score(s, None) == 0.0


def test_vqa_scorer():
    for s in samples("vqa", 4):
        answer = ev.vqa_answer(s)
        assert ev.vqa_score(s, answer) == 1.0
        assert ev.vqa_score(s, f" The {answer.upper()}.") == 1.0
        assert ev.vqa_score(s, "zebra") == 0.0 and ev.vqa_score(s, "") == 0.0
    assert ev.normalise_answer("2") == "two" and ev.normalise_answer("An orange!") == "orange"


def test_edit_scorer():
    for s in samples("edit", 4):
        assert ev.edit_scores(s, s.images[-1]) == (1.0, 1.0)  # the true edited render
        success, kept = ev.edit_scores(s, s.images[-2])  # the image before the edit
        assert success == 0.0 and kept == 1.0
        assert ev.edit_scores(s, None) == (0.0, 0.0)


def test_subject_scorer():
    for s in samples("subject"):
        assert ev.subject_score(s, s.images[-1]) == 1.0
        assert ev.subject_score(s, s.images[0]) == 1.0  # the reference itself shows it
        assert ev.subject_score(s, blank()) == 0.0


def test_condition_scorer():
    for s in samples("condition", 4):
        assert ev.condition_score(s, s.images[-1]) == 1.0
        assert ev.condition_score(s, blank()) == 0.0


def test_restoration_scorer():
    for s in samples("restore"):
        degraded, clean = s.images
        assert ev.restoration_gain(s, clean) > 0  # the clean render restores perfectly
        assert ev.restoration_gain(s, clean.resize((64, 64))) > 0
        assert ev.restoration_gain(s, degraded) == 0.0
        assert ev.restoration_gain(s, None) == 0.0
    assert ev.psnr(clean, clean) == ev.PSNR_CAP


def test_style_scorer():
    for s in samples("style"):
        content, _, target = s.images
        assert ev.style_score(s, target) == 1.0
        assert ev.style_score(s, content) == 0.0  # content kept, style not transferred
        assert ev.style_score(s, blank()) == 0.0


def test_psr_scorer():
    cap_accept = lambda s: all(r.scene.style != "pixel" for r in s.rewrites)  # noqa: E731
    ((_, s),) = ev.heldout_samples("psr", 1, 0, cap_accept, 128)
    assert s.brief is not None and ev.psr_brief_text(s)
    from training.data.render import render_scene

    renders = [render_scene(r.scene, 128) for r in s.rewrites]
    scores = ev.psr_scores(s.brief, renders, [renders[0]] * len(renders))
    assert scores["diversity_on"] > 0 and scores["diversity_off"] == 0.0
    assert scores["consistent_on"] == scores["consistent_off"] == 1.0
    failed = ev.psr_scores(s.brief, [None, None], [renders[0], None])
    assert failed["consistent_on"] == 0.0 and failed["consistent_off"] == 0.5
    # brief_drawn: the share of PSR-off images that show the brief, over prompts
    assert ev.PSR_STATISTICS["brief_drawn"]([scores, failed]) == 0.75


def test_model_card_shows_each_metric_with_its_interval(tmp_path):
    report = ev.Report("m", 0, 4, 2, 32)
    report.metrics["vqa"] = ev.MetricResult("vqa", 0.75, 0.9, ">=", 4)
    report.metrics["restoration_psnr_gain_db"] = ev.MetricResult(
        "restoration_psnr_gain_db", 1.0, 6.0, ">=", 3
    )
    for answer in (1.0, 0.0, 1.0, 1.0):
        report.items.append({"capability": "vqa", "scores": {"vqa": answer}})
    for gain in (0.0, 1.0, 2.0):
        report.items.append({"capability": "restore", "scores": {"restoration_psnr_gain_db": gain}})
    text = card([], report.to_dict(), make_random_model_folder(tmp_path / "model"))
    assert f"| vqa | 0.750 | {format_interval(wilson(3, 4))} | >= 0.9 | no | 4 |" in text
    low, high = report.interval("restoration_psnr_gain_db")
    assert 0.0 <= low < 1.0 < high <= 2.0  # a bootstrap of the mean stays among the samples
    assert f"| restoration_psnr_gain_db | 1.000 | {format_interval((low, high))} |" in text


# --- routing and PSR fidelity to the brief ----------------------------------------------------
def test_rewrite_keeps_counts_what_the_brief_names_in_any_of_its_words():
    from training.data.captions import Brief
    from training.evaluation.scores import rewrite_keeps

    brief = Brief((("circle", "red"), ("star", None)), background="cream", style="pixel")
    full = "a large red striped disc at the top left and a small blue star, cream, pixel art"
    assert rewrite_keeps(brief, full) == 1.0  # "disc" is a circle; the star's colour was open
    # the colour changed and the style dropped: 2 of the 5 named things are gone
    assert rewrite_keeps(brief, "a green circle and a star on a cream background") == 0.6
    assert rewrite_keeps(brief, "redcircle starry") == 0.0  # words, not substrings
    assert rewrite_keeps(brief, None) == 0.0  # no rewrite keeps nothing
    assert rewrite_keeps(Brief((("square", None),)), "a small plain square") == 1.0


def test_routing_asks_questions_and_drawings_with_the_task_on_automatic():
    settings = api.GenerationSettings(seed=1)
    answer, draw = CAPS["answer_routing"], CAPS["draw_routing"]
    assert answer.task is api.Task.AUTO and draw.task is api.Task.AUTO
    (question,) = samples("answer_routing", 1, judge_friendly=False)
    request = ev.build_request(question, answer.task, settings)
    assert request.task is api.Task.AUTO and request.message.images  # a question about an image
    (drawing,) = samples("draw_routing", 1, judge_friendly=False)
    assert ev.build_request(drawing, draw.task, settings).task is api.Task.AUTO
    # a text reply answers; an image does not, and a drawing request is met only by an image
    image = drawing.images[-1]
    assert answer.score(question, ev.Output(text="red"))["answer_routing"] == 1.0
    assert answer.score(question, ev.Output(text="", images=(image,)))["answer_routing"] == 0.0
    assert draw.score(drawing, ev.Output(images=(image,)))["draw_routing"] == 1.0
    assert draw.score(drawing, ev.Output(text="a red circle"))["draw_routing"] == 0.0
    # a request phrased for another task is still refused
    with pytest.raises(ValueError, match="not phrased"):
        ev.build_request(drawing, api.Task.EDIT, settings)


def test_routing_requests_are_typed_as_people_type_them():
    answer, draw = CAPS["answer_routing"], CAPS["draw_routing"]
    settings = api.GenerationSettings(seed=1)
    (question,) = samples("answer_routing", 1, judge_friendly=False)
    trained = ev.build_request(question, answer.task, settings)
    forms = [answer.as_typed(question, trained, seed) for seed in range(4)]
    assert forms[0].message.text == trained.message.text and forms[0].message.images
    assert forms[1].message.text[0].islower() and forms[1].message.images
    for follow_up in forms[2:]:  # the image is the conversation's, asked for the turn before
        assert not follow_up.message.images
        user, assistant = follow_up.history[-2:]
        assert user.role is api.Role.USER and user.text and not user.images
        assert assistant.role is api.Role.ASSISTANT
        assert assistant.images[0].image is trained.message.images[0].image
    assert forms[3].message.text[0].islower()
    (drawing,) = samples("draw_routing", 1, judge_friendly=False)
    typed = draw.as_typed(drawing, ev.build_request(drawing, draw.task, settings), 1)
    assert typed.message.text[0].isupper() and typed.message.text.endswith(".")
