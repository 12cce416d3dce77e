"""How people ask: request forms split into train and held-out, read back from the text, and
questions typed in lower case or as follow-ups."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from engine.template import ImageRole, Role, Task
from training.data import captions as cap
from training.data import phrasings as ph
from training.data.splits import SPLITS, sample_scene
from training.data.tasks import plan_sample, sample_stream


def test_request_forms_openers_closings_and_typos_are_split() -> None:
    for table in (ph.REQUEST_FORMS, ph.OPENERS, ph.CLOSINGS, ph.TYPOS):
        train, heldout = set(table["train"]), set(table["heldout"])
        assert train and heldout and not train & heldout
    assert (len(ph.REQUEST_FORMS["train"]), len(ph.REQUEST_FORMS["heldout"])) == (30, 9)


def test_composed_forms_are_many_and_new_and_never_use_a_heldout_forms_words() -> None:
    composed = ph.COMPOSED_FORMS
    assert len(composed) > 500 and all(f.count("{}") == 1 for f in composed)
    words = [tuple(ph._words(f)) for f in composed]
    hand = {tuple(ph._words(f)) for split in SPLITS for f in ph.REQUEST_FORMS[split]}
    assert len(set(words)) == len(words) and not set(words) & hand
    tables = (ph.REQUEST_FORMS, ph.OPENERS, ph.CLOSINGS)
    heldout_words, train_words = (
        {w for table in tables for text in table[split] for w in ph._words(text)}
        for split in ("heldout", "train")
    )
    used = {w for form in words for w in form}
    # the held-out forms' own words (not those training already had) never wrap a composed one
    assert heldout_words - train_words >= ph._HELDOUT_ONLY_WORDS
    assert not used & ph._HELDOUT_ONLY_WORDS
    assert {"render", "depict", "doodle", "artwork"} <= used


@pytest.mark.parametrize("split", SPLITS)
def test_requests_read_back_as_they_were_typed(split: str) -> None:
    """`parse` finds the form, opener, closing and typo of every request, whatever its case."""
    rng = random.Random(f"read back/{split}")
    seen: Counter[str] = Counter()
    for _ in range(600):
        p = ph.drawing_request(sample_scene(rng), rng, split)  # type: ignore[arg-type]
        parts = ph.parse(p.text)
        form = None if p.form == ph.BARE else p.form
        assert parts == ph.Parts(form, p.opener, p.closing, (p.typo,) if p.typo else ()), p
        seen.update([p.form, p.case, p.typo or "no typo"])
        if split == "heldout":  # a held-out request always asks in a held-out form
            assert p.form in parts.heldout()
        else:
            assert parts.heldout() == []
    assert set(seen) >= {*ph.REQUEST_FORMS[split], *ph.CASES, *ph.TYPOS[split]}
    composed = set(seen) & set(ph.COMPOSED_FORMS)
    assert len(composed) > 100 if split == "train" else not composed


def test_a_typo_never_touches_the_description() -> None:
    rng = random.Random(2)
    typos = 0
    for _ in range(400):
        description = cap.detailed_caption(sample_scene(rng), rng, ph.EVERYDAY_WORDS)
        p = ph.phrase_request(description, rng, rng.choice(SPLITS))
        assert description.lower() in p.text.lower()
        typos += p.typo is not None
    assert 10 < typos < 100
    assert ph.typo("please", "swap", random.Random(0)) in {"plaese", "pelase", "plesae", "pleaes"}
    assert ph.typo("draw", "double", random.Random(0)) in {"drraw", "draaw", "draww"}
    assert len(ph.typo("thanks", "drop", random.Random(0))) == 5


def _drawing_requests(sample) -> list[str]:
    """What the sample asks for a drawing on automatic: a first turn with nothing attached
    that the assistant answers with an image."""
    first, reply = sample.turns[0], sample.turns[1]
    asked = sample.asks[0].task is Task.AUTO and not any(
        isinstance(p, ImageRole) for p in first.parts
    )
    return [sample.asks[0].raw] if asked and reply.parts == (ImageRole.IMAGE,) else []


def test_training_samples_never_use_a_heldout_phrasing() -> None:
    """Over many seeds of the training stream (every kind, then text-to-image alone), no text of
    any sample is typed in a held-out form, opener, closing or kind of typo, while every training
    form turns up in its drawing requests."""
    forms: Counter[str | None] = Counter()
    typos = 0
    streams = [sample_stream(seed, "train", size=None) for seed in range(4)]
    streams += [sample_stream(seed, "train", kinds=("t2i",), size=None) for seed in range(2)]
    for stream in streams:
        for _ in range(600):
            sample = next(stream)
            for ask in sample.asks:
                parts = ph.parse(ask.raw)
                assert parts.heldout() == [], (ask.raw, parts)
            for request in _drawing_requests(sample):
                parts = ph.parse(request)
                forms[parts.form] += 1
                typos += bool(parts.typos)
    assert {None, *ph.REQUEST_FORMS["train"]} <= set(forms)
    assert set(forms) <= {None, *ph.REQUEST_FORMS["train"], *ph.COMPOSED_FORMS}
    total = sum(forms.values())
    assert 0.15 < forms[None] / total < 0.35  # the bare description
    composed = sum(n for form, n in forms.items() if form in ph.COMPOSED_FORMS)
    assert 0.3 < composed / total < 0.45  # half of the rest
    assert typos > 0


def test_everyday_words_add_names_for_places_and_sizes() -> None:
    for table in (cap.POSITION_WORDS, cap.SIZE_WORDS):
        for value, names in table.items():
            everyday = ph.EVERYDAY_WORDS[value]
            assert everyday[: len(names)] == names and len(everyday) > len(names)
    rng = random.Random(3)
    texts = " ".join(ph.drawing_request(sample_scene(rng), rng).text for _ in range(100))
    assert "upper left" in texts.lower() and "tiny" in texts.lower()


def test_questions_are_asked_in_lower_case_and_as_follow_ups() -> None:
    """Most questions attach the image with the Describe task; the rest are typed on automatic:
    in lower case, or as a follow-up about the image drawn the turn before (not attached
    again), about a scene's only object as "it"."""
    rng = random.Random(4)
    samples = [plan_sample("vqa", rng, "train") for _ in range(400)]
    follow_ups = [s for s in samples if len(s.turns) == 4]
    attached = [s for s in samples if len(s.turns) == 2]
    assert len(follow_ups) + len(attached) == len(samples)
    assert 0.15 < len(follow_ups) / len(samples) < 0.35
    for s in follow_ups:
        drawing, question = s.turns[1], s.turns[2]
        assert drawing.role is Role.ASSISTANT and drawing.parts == (ImageRole.IMAGE,)
        assert ImageRole.IMAGE not in question.parts and s.asks[-1].task is Task.AUTO
        if " it" in s.asks[-1].raw.lower():
            assert len(s.scenes[0].objects) == 1
    assert any(s.asks[-1].raw.split()[0] == "and" for s in follow_ups)
    assert any(" it?" in s.asks[-1].raw for s in follow_ups)
    typed = [s for s in attached if s.asks[-1].task is Task.AUTO]
    assert 0.25 < len(typed) / len(attached) < 0.55
    assert all(s.asks[-1].raw[0].isupper() for s in attached if s not in typed)  # as templated
    assert 0.3 < sum(s.asks[-1].raw[0].islower() for s in typed) / len(typed) < 0.7
