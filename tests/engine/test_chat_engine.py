"""Every WeGen task as a chat turn through the Engine API, and bad requests refused cleanly."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from engine import api
from engine.chat_engine import WeGenEngine
from engine.errors import ModelFolderError
from engine.template import TASK_TEXT_LIMIT


def run(engine, request):
    events = []
    engine.run(request, events.append, threading.Event())
    return events


def photo(seed=0, size=96):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "RGB")


def settings(**kw):
    return api.GenerationSettings(**({"seed": 1, "steps": 2, "max_new_tokens": 8} | kw))


IMAGE_TASKS = [
    (api.Task.GENERATE, ()),
    (api.Task.SUBJECT, (api.ImageRole.REFERENCE,)),
    (api.Task.CONDITION, (api.ImageRole.CONDITION,)),
    (api.Task.RESTORE, (api.ImageRole.RESTORE,)),
    (api.Task.STYLE, (api.ImageRole.IMAGE, api.ImageRole.STYLE)),
]


@pytest.mark.parametrize(("task", "roles"), IMAGE_TASKS)
def test_image_tasks_produce_one_image_and_report_progress(engine, model, task, roles):
    parts = [api.ImagePart(photo(i), r, f"in{i}.png") for i, r in enumerate(roles)]
    events = run(
        engine, api.Request(api.Turn.user("a red circle", *parts), settings=settings(), task=task)
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "Finished", events[-1]
    assert kinds.count("ImageTokenProgress") == 64 and kinds.count("DenoiseStep") == 2
    (done,) = [e for e in events if isinstance(e, api.ImageDone)]
    assert done.image.size == (128, 128)
    assert done.metadata["task"] == task.value and done.metadata["settings"]["seed"] == 1
    assert [a["role"] for a in done.metadata["attachments"]] == [r.value for r in roles]
    previews = [e.preview for e in events if isinstance(e, api.DenoiseStep)]
    side = model.config.latent_size  # a preview per latent position
    assert all(p is not None and p.size == (side, side) for p in previews)
    assert events[-1].reply.images[0].image is done.image
    # every phase of an image turn took time, the phases are disjoint and add up to the total
    spent = events[-1].timings
    assert min(spent.text, spent.image_tokens, spent.denoise, spent.vae) > 0
    assert spent.rewrite == 0 and spent.dropped_turns == 0
    phases = [v for k, v in spent.to_dict().items() if k not in ("total", "dropped_turns")]
    assert spent.to_dict()["total"] == pytest.approx(sum(phases))


def test_describe_answers_in_text_only(engine):
    events = run(
        engine,
        api.Request(
            api.Turn.user("", api.ImagePart(photo())), settings=settings(), task=api.Task.DESCRIBE
        ),
    )
    assert not [e for e in events if isinstance(e, api.ImageDone)]
    finished = events[-1]
    assert isinstance(finished, api.Finished)
    streamed = "".join(e.text for e in events if isinstance(e, api.TextDelta))
    assert streamed.strip() == finished.reply.text.strip()


def test_edit_refines_the_previous_image_and_same_seed_repeats(engine):
    first = run(
        engine,
        api.Request(api.Turn.user("a blue star"), settings=settings(), task=api.Task.GENERATE),
    )
    history = (api.Turn.user("a blue star"), first[-1].reply)
    edit = api.Request(api.Turn.user("make it bigger"), history, settings(), api.Task.EDIT)
    a = next(e for e in run(engine, edit) if isinstance(e, api.ImageDone))
    b = next(e for e in run(engine, edit) if isinstance(e, api.ImageDone))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.metadata["history_turns"] == 2


def test_psr_shows_the_rewrite_and_generates_from_it(engine):
    events = run(
        engine,
        api.Request(api.Turn.user("a cat"), settings=settings(psr=True), task=api.Task.GENERATE),
    )
    (rewrite,) = [e for e in events if isinstance(e, api.Rewrite)]
    done = next(e for e in events if isinstance(e, api.ImageDone))
    assert done.metadata["psr_rewrite"] == rewrite.text and rewrite.text


def test_cancel_is_reported_once_and_nothing_is_made(engine):
    flag = threading.Event()
    events = []

    def on_event(e):
        events.append(e)
        if isinstance(e, api.ImageTokenProgress) and e.done == 5:
            flag.set()

    engine.run(
        api.Request(api.Turn.user("x"), settings=settings(), task=api.Task.GENERATE), on_event, flag
    )
    assert isinstance(events[-1], api.Cancelled)
    assert not [e for e in events if isinstance(e, api.ImageDone | api.Finished)]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (api.Request(api.Turn.user("")), "the message is empty"),
        (api.Request(api.Turn.user("make it red"), task=api.Task.EDIT), "no image to work on"),
        (
            api.Request(api.Turn.user("x"), settings=api.GenerationSettings(size=130)),
            "multiple of 4",
        ),
        (api.Request(api.Turn.user("x"), settings=api.GenerationSettings(top_p=0)), "top_p"),
        (api.Request(api.Turn.user("word " * 2000)), "too long for this model"),
    ],
)
def test_bad_requests_fail_with_a_message(engine, request_, message):
    events = run(engine, request_)
    assert len(events) == 1 and isinstance(events[0], api.Failed)
    assert message in events[0].message


def test_long_history_drops_oldest_exchanges_whole(engine):
    per_word = len(engine.tokenizer.encode("word " * 100)) / 100
    turn = api.Turn.user("word " * int(600 / per_word))  # ~600 tokens: two such turns overflow 1024
    history = (turn, api.Turn.assistant("ok"), turn, api.Turn.assistant("ok"))
    events = run(
        engine, api.Request(api.Turn.user("and now?"), history, settings(), api.Task.DESCRIBE)
    )
    assert isinstance(events[-1], api.Finished)
    assert events[-1].timings.dropped_turns == 2


def test_load_reports_missing_folder_and_runs_from_disk(model_folder, tmp_path):
    eng = WeGenEngine()
    with pytest.raises(ModelFolderError, match="is not a folder"):
        eng.load(str(tmp_path / "nope"), api.RuntimeRequest(device="cpu"))
    info = eng.load(str(model_folder), api.RuntimeRequest(device="cpu"))
    assert info.name == "wegen-tiny" and info.device == "cpu" and info.image_size == 128
    events = run(eng, api.Request(api.Turn.user("hi"), settings=settings(), task=api.Task.GENERATE))
    assert isinstance(events[-1], api.Finished)


def test_no_model_loaded_is_a_failure_not_a_crash():
    events = run(WeGenEngine(), api.Request(api.Turn.user("hi")))
    assert isinstance(events[0], api.Failed) and "no model is loaded" in events[0].message


def test_history_user_turns_are_phrased_with_their_task_as_in_training():
    from engine.chat_engine import _template_turn
    from engine.template import TemplateTurn

    turn = api.Turn.user("make it red", api.ImagePart(photo()), task=api.Task.EDIT)
    assert _template_turn(turn) == TemplateTurn(
        api.Role.USER, (api.ImageRole.IMAGE, "Edit the image: make it red")
    )
    plain = api.Turn.user("Edit the image: make it red")  # already phrased text stays as it is
    assert _template_turn(plain).parts == ("Edit the image: make it red",)


def _record_starts(engine, monkeypatch):
    """The starting image (or None) of every decoder call, the real decoder still drawing."""
    starts = []
    decoder = engine.model.decoder
    real = decoder.sample
    monkeypatch.setattr(
        decoder, "sample", lambda *a, **kw: starts.append(kw.get("init")) or real(*a, **kw)
    )
    return starts


def test_denoise_strength_starts_from_the_image_being_worked_on(engine, monkeypatch):
    starts = _record_starts(engine, monkeypatch)
    first = run(
        engine, api.Request(api.Turn.user("a star"), settings=settings(), task=api.Task.GENERATE)
    )
    drawn = first[-1].reply.images[0].image
    history = (api.Turn.user("a star"), first[-1].reply)
    # the previous reply's image when nothing is attached; the message's last attachment if any
    attached = photo(3, size=64)
    for message, expected in [
        (api.Turn.user("make it bigger"), drawn),
        (api.Turn.user("like this", api.ImagePart(photo(2)), api.ImagePart(attached)), attached),
    ]:
        request = api.Request(message, history, settings(denoise_strength=0.5), api.Task.EDIT)
        assert isinstance(run(engine, request)[-1], api.Finished)
        want = np.asarray(expected.resize((128, 128), Image.Resampling.BILINEAR), np.float32)
        got = starts[-1][0].permute(1, 2, 0).numpy() * 255
        np.testing.assert_allclose(got, want, atol=1e-3)
    # strength 1 (the default) draws from noise alone; with no image there is nothing to start from
    run(engine, api.Request(api.Turn.user("again"), history, settings(), api.Task.EDIT))
    cat = api.Request(
        api.Turn.user("a cat"), settings=settings(denoise_strength=0.5), task=api.Task.GENERATE
    )
    run(engine, cat)
    assert len(starts) == 5 and starts[0] is None and starts[3] is None and starts[4] is None


def test_denoise_strength_changes_the_drawing_and_is_recorded(engine):
    parts = (api.ImagePart(photo(4), api.ImageRole.RESTORE),)

    def restore(strength):
        request = api.Request(
            api.Turn.user("", *parts),
            settings=settings(denoise_strength=strength),
            task=api.Task.RESTORE,
        )
        return next(e for e in run(engine, request) if isinstance(e, api.ImageDone))

    whole, part = restore(1.0), restore(0.3)
    assert not np.array_equal(np.asarray(whole.image), np.asarray(part.image))
    assert part.metadata["settings"]["denoise_strength"] == 0.3


@pytest.mark.parametrize("strength", [0.0, -0.5, 1.5])
def test_denoise_strength_outside_its_range_is_refused(engine, strength):
    events = run(
        engine, api.Request(api.Turn.user("x"), settings=settings(denoise_strength=strength))
    )
    assert isinstance(events[-1], api.Failed) and "redraw (denoise) strength" in events[-1].message


def test_non_finite_pixels_end_the_turn_with_a_message_not_an_image(engine, monkeypatch):
    """A half-precision overflow gives NaN pixels: the turn fails saying what to try, and no
    image (nor a black one) is emitted."""
    decoder = engine.model.decoder
    real = decoder.decode_latents
    monkeypatch.setattr(decoder, "decode_latents", lambda z: real(z) * float("nan"))
    events = run(engine, api.Request(api.Turn.user("a red circle"), settings=settings(),
                                     task=api.Task.GENERATE))  # fmt: skip
    assert not [e for e in events if isinstance(e, api.ImageDone)]
    assert isinstance(events[-1], api.Failed)
    assert "NaN" in events[-1].message and "--precision fp32" in events[-1].message


def test_a_drawing_task_says_a_few_words_at_most(engine, monkeypatch):
    def text_deltas(task):
        s = settings(temperature=1.5, top_p=1.0, max_new_tokens=200)
        events = run(engine, api.Request(api.Turn.user("a red circle"), settings=s, task=task))
        assert isinstance(events[-1], api.Finished), events[-1]
        return sum(isinstance(e, api.TextDelta) for e in events)

    assert text_deltas(api.Task.GENERATE) <= TASK_TEXT_LIMIT[api.Task.GENERATE]
    assert text_deltas(api.Task.DESCRIBE) > 2  # no limit but the request's
    free = text_deltas(api.Task.GENERATE)
    monkeypatch.setitem(TASK_TEXT_LIMIT, api.Task.GENERATE, 1)
    assert text_deltas(api.Task.GENERATE) <= 1 < free
