"""PSR keeps what was asked: the request's words, the choice among sampled rewrites, and the
bundled model's rewrites through the engine."""

from __future__ import annotations

import threading

import pytest

from engine import api
from engine.bundled import BUNDLED_DIR
from engine.chat_engine import WeGenEngine
from engine.psr import PSR_TRIES, best_rewrite, content_words, kept_share, try_seed


def test_content_words_leave_out_the_ways_of_asking():
    assert content_words("Could you please draw two red circles at the top left?") == {
        "two",
        "red",
        "circles",
        "top",
        "left",
    }
    assert content_words("hey, I'd like a picture of a sky-blue star, thanks") == {
        "sky-blue",
        "star",
    }
    assert content_words("please draw something") == {"something"}
    assert content_words("please draw") == frozenset()


def test_kept_share_counts_the_requests_words_the_rewrite_repeats():
    assert kept_share("a red circle", "A large RED circle at the top left, on white") == 1.0
    assert kept_share("a red circle", "a large blue circle") == 0.5
    assert kept_share("a red circle", "a reddish circles") == 0.0  # whole words only
    assert kept_share("please draw", "anything at all") == 1.0  # nothing named, nothing to keep


def test_best_rewrite_stops_at_the_first_that_keeps_every_word():
    asked: list[int] = []
    samples = ["a blue circle", "a large red circle", "a red circle, small"]

    def sample(t: int) -> str:
        asked.append(t)
        return samples[t]

    assert best_rewrite("a red circle", sample, tries=3) == "a large red circle"
    assert asked == [0, 1]


def test_best_rewrite_draws_the_request_as_typed_when_no_rewrite_keeps_everything():
    samples = ["a square", "a red square", "a red triangle", "a star"]
    asked: list[int] = []

    def sample(t: int) -> str:
        asked.append(t)
        return samples[t]

    assert best_rewrite("a red circle", sample, tries=4) == "a red circle"
    assert asked == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least 1"):
        best_rewrite("a red circle", sample, tries=0)


def test_try_seeds_start_at_the_requests_seed_and_differ():
    seeds = [try_seed(2**31 - 1, t) for t in range(PSR_TRIES)]
    assert seeds[0] == 2**31 - 1 and len(set(seeds)) == PSR_TRIES
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.fixture(scope="module")
def bundled():
    engine = WeGenEngine()
    engine.load(str(BUNDLED_DIR))
    return engine


#: briefs whose colour and shape were never asked together in training (the hard case for a
#: rewrite), and one that was
BRIEFS = ("a pink hexagon on a cream background", "a green star", "a red circle")


@pytest.mark.parametrize("brief", BRIEFS)
def test_the_engines_rewrite_is_the_best_of_its_tries(bundled, brief):
    stop = lambda: False  # noqa: E731
    for seed in range(3):
        request = api.Request(
            api.Turn.user(brief), settings=api.GenerationSettings(seed=seed, psr=True)
        )
        s = bundled._resolve(request)
        sample = bundled._rewrite_sampler(brief, s, seed, stop)
        tries = [sample(t) for t in range(PSR_TRIES)]
        shares = [kept_share(brief, r) for r in tries]
        # what the engine shows and draws from: the first try that keeps every word, or else the
        # request as typed
        events: list[api.Event] = []
        bundled.run(request, events.append, threading.Event())
        (shown,) = [e.text for e in events if isinstance(e, api.Rewrite)]
        first_full = next((r for r, k in zip(tries, shares, strict=True) if k == 1.0), None)
        assert shown == (first_full or brief)
        assert kept_share(brief, shown) == 1.0
