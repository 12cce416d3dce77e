"""How people ask: a drawing request as typed, and a question as typed.

A drawing request left on automatic (tasks._generate) is a description of the scene
(captions.detailed_caption, with everyday words for places and sizes, `EVERYDAY_WORDS`) inside a
request form ("could you draw {}?", "I'd like a picture of {}", or the bare description), maybe
after an opener ("hey,", "um,") and before a closing ("please", "thanks"), in one of four cases
(as written, a sentence, lower case, upper case), and now and then with one typo (a swapped,
dropped or doubled letter) in a word of the form, opener or closing, never in the description:
the words the judge scores (shape, colour, size, position, pattern, background, style) stay
intact.

Beside the 30 hand-written training forms, `COMPOSED_FORMS` holds several hundred more made from a
small grammar (a verb in a frame, "are you able to render {}?", or a noun for a picture in one,
"send me a doodle of {}"), none of them using a word that only the held-out forms use: half of
the training requests that are not bare use one. With 30 forms a request's wrapping was a
handful of fixed strings; what the model has to learn is to draw the description whatever
wraps it, which a held-out wrapping then tests.

Forms, openers, closings and typo kinds are split like scenes (splits.py): every sample phrases
its requests with the ``"train"`` ones, in both splits (the sample's split is about its scenes).
The ``"heldout"`` ones are never in a training sample; only the ``t2i_phrasing`` metric of
wegen-eval asks with them, to see whether the model draws as well from a request it has never
seen phrased that way. `parse` reads back which form, opener and closing a text uses (case and
one typo a word tolerated), so a test can check that no training text uses a held-out one.

A question as typed (`typed_question`) is asked in lower case, or as a follow-up about the
conversation's last image ("and what colour is it?"), which tasks.plan_vqa asks without
attaching the image again.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from training.data import captions as cap
from training.data.splits import SPLITS, Split, check_split
from training.data.world import Scene


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z'-]+", text.lower())


#: the bare description, as most people type a request (a share of train requests; never a
#: held-out one, which always asks in a form training never used)
BARE = "{}"
#: how a request wraps its description ("{}"); the first group of each split is imperatives,
#: then questions, then wishes
REQUEST_FORMS: dict[Split, tuple[str, ...]] = {
    "train": (
        "draw {}",
        "draw me {}",
        "please draw {}",
        "create {}",
        "make {}",
        "please make {}",
        "make me a picture of {}",
        "paint {}",
        "paint me {}",
        "show {}",
        "show me {}",
        "generate {}",
        "sketch {}",
        "give me {}",
        "could you draw {}?",
        "can you draw {}?",
        "could you please make {}?",
        "would you draw {}?",
        "can you make {}?",
        "can I see {}?",
        "can I get a picture of {}?",
        "how about {}?",
        "what would {} look like?",
        "I'd like a picture of {}",
        "I'd love to see {}",
        "I want {}",
        "I want to see {}",
        "I need an image of {}",
        "let me see {}",
        "a picture of {}, please",
    ),
    "heldout": (
        "illustrate {}",
        "do me a drawing of {}",
        "would you mind drawing {}?",
        "is it possible to draw {}?",
        "could I have a picture of {}?",
        "can you show me what {} looks like?",
        "I wish I could see {}",
        "I'm after a picture of {}",
        "it would be nice to see {}",
    ),
}

#: the words of the held-out forms, openers and closings that no composed form may use, so that
#: a held-out request stays one whose wrapping words training has not seen asking for a picture
_HELDOUT_ONLY_WORDS = frozenset(
    (
        "illustrate", "drawing", "mind", "possible", "have", "wish", "after", "nice", "looks",
        "hmm", "yo", "erm", "cheers",
    )
)  # fmt: skip
#: a composed training form: a verb in a frame, or a noun for a picture in a frame. Training
#: forms are the hand-written ones above and these, so the model meets many more ways of wrapping
#: a description than 30; what it must learn is to draw the description whatever wraps it
_VERBS = (
    "draw", "paint", "sketch", "make", "create", "show", "generate", "render", "depict",
    "produce", "design", "doodle", "picture", "visualise", "visualize", "craft", "whip up",
    "put together", "come up with", "mock up", "cook up", "dream up",
)  # fmt: skip
#: the verbs that read well as "<verb> me <description>"
_VERBS_WITH_ME = ("draw", "paint", "sketch", "make", "create", "show", "render", "design")
_VERB_FRAMES = (
    "{v} {{}}", "please {v} {{}}", "{v} {{}} for me", "just {v} {{}}", "go ahead and {v} {{}}",
    "could you {v} {{}}?", "can you {v} {{}}?", "would you {v} {{}}?", "will you {v} {{}}?",
    "could you please {v} {{}}?", "can you please {v} {{}}?", "would you please {v} {{}}?",
    "are you able to {v} {{}}?", "any chance you could {v} {{}}?", "I'd like you to {v} {{}}",
    "I want you to {v} {{}}", "I need you to {v} {{}}", "I'd love it if you could {v} {{}}",
    "I'd appreciate it if you could {v} {{}}", "let's {v} {{}}", "try to {v} {{}}",
    "help me {v} {{}}", "I'm hoping you can {v} {{}}",
)  # fmt: skip
_NOUNS = (
    "a picture", "an image", "a painting", "a sketch", "a render", "a doodle", "some art",
    "a scene", "a pic", "a graphic", "artwork",
)  # fmt: skip
_NOUN_FRAMES = (
    "I'd like {n} of {{}}", "I want {n} of {{}}", "can I get {n} of {{}}?",
    "could I get {n} of {{}}?", "give me {n} of {{}}", "I need {n} of {{}}",
    "how about {n} of {{}}?", "{n} of {{}}, please", "I'm looking for {n} of {{}}",
    "send me {n} of {{}}", "show me {n} of {{}}", "I'd love {n} of {{}}", "make {n} of {{}}",
    "can you make {n} of {{}}?", "could you create {n} of {{}}?",
)  # fmt: skip


def _composed_forms() -> tuple[str, ...]:
    forms = [frame.format(v=v) for frame in _VERB_FRAMES for v in _VERBS]
    forms += [f"{v} me {{}}" for v in _VERBS_WITH_ME]
    forms += [frame.format(n=n) for frame in _NOUN_FRAMES for n in _NOUNS]
    hand = {tuple(_words(f)) for split in SPLITS for f in REQUEST_FORMS[split]}
    out = dict.fromkeys(f for f in forms if tuple(_words(f)) not in hand)
    return tuple(out)


#: the composed training forms (several hundred; never a hand-written form of either split)
COMPOSED_FORMS: tuple[str, ...] = _composed_forms()
assert not {w for f in COMPOSED_FORMS for w in tuple(_words(f))} & _HELDOUT_ONLY_WORDS
#: the share of non-bare training requests typed in a composed form (the rest: a hand-written one)
COMPOSED_PROB = 0.5

#: what may come before a request
OPENERS: dict[Split, tuple[str, ...]] = {
    "train": ("hey,", "hi,", "hello,", "um,", "ok,", "so,", "oh,", "well,"),
    "heldout": ("hmm,", "yo,", "erm,"),
}
#: what may come after it (never after a form that already says please)
CLOSINGS: dict[Split, tuple[str, ...]] = {
    "train": ("please", "thanks", "thank you"),
    "heldout": ("cheers", "if you can"),
}
#: what a typo does to one word: swap two neighbouring letters, drop one, double one
TYPOS: dict[Split, tuple[str, ...]] = {"train": ("swap", "drop"), "heldout": ("double",)}
#: how a request is cased: as written, as a sentence (a capital, a full stop), all lower, all upper
CASES: tuple[str, ...] = ("as written", "sentence", "lower", "upper")
CASE_WEIGHTS: tuple[float, ...] = (0.55, 0.25, 0.17, 0.03)

#: shares of train requests typed as the bare description, with an opener, with a closing, with
#: a typo (held-out requests are never bare)
BARE_PROB = 0.25
OPENER_PROB = 0.2
CLOSING_PROB = 0.15
TYPO_PROB = 0.1
#: a typo hits only words this long or longer (a short word with a typo is another word)
TYPO_MIN_LETTERS = 4

#: everyday names of the grid's places and the sizes, beside the captions' (captions.py):
#: what a request may call them
_EVERYDAY_EXTRA: cap.Words = {
    "top left": ("in the upper left", "in the upper left corner", "at the upper left"),
    "top": ("along the top", "at the top middle"),
    "top right": ("in the upper right", "in the upper right corner", "at the upper right"),
    "left": ("on the left side", "on the left-hand side"),
    "centre": ("in the center", "at the center", "in the very middle"),
    "right": ("on the right side", "on the right-hand side"),
    "bottom left": ("in the lower left", "in the lower left corner", "at the lower left"),
    "bottom": ("along the bottom", "at the bottom middle"),
    "bottom right": ("in the lower right", "in the lower right corner", "at the lower right"),
    "small": ("tiny",),
    "medium": ("medium-size", "mid-sized"),
    "large": ("huge",),
}
EVERYDAY_WORDS: cap.Words = {
    value: (*(cap.POSITION_WORDS | cap.SIZE_WORDS)[value], *extra)
    for value, extra in _EVERYDAY_EXTRA.items()
}

#: how a follow-up question may start
FOLLOW_UP_STARTS: tuple[str, ...] = ("and", "so", "ok, and", "also,", "then")
FOLLOW_UP_START_PROB = 0.6
LOWER_CASE_PROB = 0.5


@functools.cache
def _one_typo_from(word: str) -> frozenset[str]:
    """Every word one typo of any kind makes of ``word``."""
    out = {word[:i] + word[i + 1 :] for i in range(1, len(word))}
    out |= {word[:i] + word[i] + word[i:] for i in range(1, len(word))}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(1, len(word) - 1)}
    return frozenset(out)


def _wrapper_words() -> set[str]:
    texts = [f for split in SPLITS for f in REQUEST_FORMS[split]] + list(COMPOSED_FORMS)
    texts += [w for table in (OPENERS, CLOSINGS) for split in SPLITS for w in table[split]]
    return {w for text in texts for w in _words(text.replace("{}", " "))}


#: the words the judge scores, in any of their names: a typo never touches them
ATTRIBUTE_WORDS = frozenset(
    w
    for table in (*cap.WORD_TABLES, EVERYDAY_WORDS)
    for names in table.values()
    for name in names
    for w in _words(name)
)
assert (
    not {
        typed
        for w in _wrapper_words()
        if len(w) >= TYPO_MIN_LETTERS
        for typed in _one_typo_from(w) | {w}
    }
    & ATTRIBUTE_WORDS
), "a request's own words, even with a typo, must not name attributes"
for _split in SPLITS:
    assert BARE not in REQUEST_FORMS[_split] and all(
        f.count("{}") == 1 for f in REQUEST_FORMS[_split]
    )
for _table in (REQUEST_FORMS, OPENERS, CLOSINGS):  # each reads back as itself (`parse`)
    _all = [_words(text) for split in SPLITS for text in _table[split]]
    assert len({tuple(w) for w in _all}) == len(_all), "two options read as the same words"


@dataclass(frozen=True)
class Phrasing:
    """A request as typed (``text``) and how it was made (None: no opener, closing or typo)."""

    text: str
    form: str
    opener: str | None = None
    closing: str | None = None
    case: str = CASES[0]
    typo: str | None = None


def typo(word: str, kind: str, rng: random.Random) -> str:
    """``word`` with one typo of ``kind`` (`TYPOS`); the first letter is kept."""
    if kind == "swap":
        spots = [i for i in range(1, len(word) - 1) if word[i] != word[i + 1]]
        if spots:
            i = rng.choice(spots)
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        kind = "drop"  # no two neighbours differ ("eeee"): drop one instead
    i = rng.randrange(1, len(word))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    raise ValueError(f"unknown typo kind {kind!r}; expected one of {TYPOS}")


def _with_typo(
    before: str, after: str, rng: random.Random, split: Split
) -> tuple[str, str, str | None]:
    """One typo in a long enough word of ``before`` or ``after`` (the request's own words)."""
    parts = [before, after]
    spots = [
        (p, m.start(), m.end())
        for p, text in enumerate(parts)
        for m in re.finditer(r"[A-Za-z]+", text)
        if m.end() - m.start() >= TYPO_MIN_LETTERS
    ]
    if not spots:
        return before, after, None
    p, start, end = rng.choice(spots)
    kind = rng.choice(TYPOS[split])
    parts[p] = parts[p][:start] + typo(parts[p][start:end], kind, rng) + parts[p][end:]
    return parts[0], parts[1], kind


def _cased(text: str, case: str) -> str:
    if case == "sentence":
        text = text[:1].upper() + text[1:]
        return text if text[-1] in ".?!" else text + "."
    if case == "lower":
        return text.lower()
    if case == "upper":
        return text.upper()
    return text


def phrase_request(description: str, rng: random.Random, split: Split = "train") -> Phrasing:
    """A request for a picture of ``description``, typed as people type (see the module
    docstring), with the forms, openers, closings and typo kinds of ``split``."""
    check_split(split)
    if split == "train" and rng.random() < BARE_PROB:
        form = BARE
    elif split == "train" and rng.random() < COMPOSED_PROB:
        form = rng.choice(COMPOSED_FORMS)
    else:  # a held-out request draws as it always did: its samples stay the same
        form = rng.choice(REQUEST_FORMS[split])
    opener = rng.choice(OPENERS[split]) if rng.random() < OPENER_PROB else None
    closing = None
    if "please" not in form and rng.random() < CLOSING_PROB:
        closing = rng.choice(CLOSINGS[split])
    before, after = form.split("{}")
    if opener:
        before = f"{opener} {before}"
    if closing:  # before the form's question mark, if it has one
        mark = after[-1:] if after.endswith("?") else ""
        after = f"{after.removesuffix(mark)}, {closing}{mark}"
    kind = None
    if rng.random() < TYPO_PROB:
        before, after, kind = _with_typo(before, after, rng, split)
    case = rng.choices(CASES, CASE_WEIGHTS)[0]
    text = _cased(f"{before}{description}{after}", case)
    return Phrasing(text, form, opener, closing, case, kind)


def drawing_request(scene: Scene, rng: random.Random, split: Split = "train") -> Phrasing:
    """A request for a picture of ``scene``: its detailed caption, in everyday words, typed as
    people type (`phrase_request`)."""
    return phrase_request(cap.detailed_caption(scene, rng, EVERYDAY_WORDS), rng, split)


def typed_question(question: str, rng: random.Random, *, follow_up: bool = False) -> str:
    """``question`` typed in lower case (with probability `LOWER_CASE_PROB`) and, as a follow-up
    about the last image, often after "and" or "so"."""
    if follow_up and rng.random() < FOLLOW_UP_START_PROB:
        question = f"{rng.choice(FOLLOW_UP_STARTS)} {question[:1].lower()}{question[1:]}"
        question = question[:1].upper() + question[1:]
    if rng.random() < LOWER_CASE_PROB:
        question = question[:1].lower() + question[1:]
    return question


# --- reading a request back -----------------------------------------------------------------
@dataclass(frozen=True)
class Parts:
    """Which form, opener and closing a request uses (None: the bare description, none), and the
    kind of each typo in them."""

    form: str | None
    opener: str | None = None
    closing: str | None = None
    typos: tuple[str, ...] = ()

    def heldout(self) -> list[str]:
        """The held-out ones among them."""
        parts = ((self.form, REQUEST_FORMS), (self.opener, OPENERS), (self.closing, CLOSINGS))
        found = [part for part, table in parts if part and part in table["heldout"]]
        return found + [kind for kind in self.typos if kind in TYPOS["heldout"]]


_TYPO_BY_LENGTH = {-1: "drop", 0: "swap", 1: "double"}


def _match(words: list[str], expected: list[str]) -> list[str] | None:
    """The typos with which ``words`` begins with ``expected`` (at most one a word, in long
    words only), or None where it does not."""
    if len(words) < len(expected):
        return None
    typos = []
    for typed, meant in zip(words, expected, strict=False):
        if typed == meant:
            continue
        if len(meant) < TYPO_MIN_LETTERS or typed not in _one_typo_from(meant):
            return None
        typos.append(_TYPO_BY_LENGTH[len(typed) - len(meant)])
    return typos


def _options(table: dict[Split, tuple[str, ...]]) -> list[tuple[str | None, list[str]]]:
    return [(None, [])] + [(o, _words(o)) for split in SPLITS for o in table[split]]


#: (form, its words before the description, its words after it); None is the bare description
_FORMS: list[tuple[str | None, list[str], list[str]]] = [(None, [], [])] + [
    (form, _words(form.split("{}")[0]), _words(form.split("{}")[1]))
    for form in (*(f for split in SPLITS for f in REQUEST_FORMS[split]), *COMPOSED_FORMS)
]


def _initials(words: list[str]) -> tuple[str, ...]:
    return tuple(w[0] for w in words)


#: the indices of `_FORMS` by how many words each has before and after the description, then by
#: those words' first letters (which a typo keeps): `parse` tries only the forms whose words
#: could be the ones typed, not all several hundred
_FORM_INDEX: dict[tuple[int, int], dict[tuple[tuple[str, ...], ...], list[int]]] = {}
for _i, (_, _before, _after) in enumerate(_FORMS):
    _FORM_INDEX.setdefault((len(_before), len(_after)), {}).setdefault(
        (_initials(_before), _initials(_after)), []
    ).append(_i)


def _candidates(rest: list[str]) -> list[int]:
    """The indices of the forms that may wrap ``rest`` (in `_FORMS`' order)."""
    found: list[int] = []
    for (lb, la), by_initials in _FORM_INDEX.items():
        if lb + la < len(rest):
            key = (_initials(rest[:lb]), _initials(rest[len(rest) - la :]))
            found += by_initials.get(key, [])
    return sorted(found)


def parse(text: str) -> Parts:
    """The form, opener and closing (of either split) ``text`` is typed in: those that explain
    the most words of ``text`` and leave at least one word of description between them. Case and
    one typo a word are tolerated (and reported)."""
    words = _words(text)
    best, explained = Parts(None), 0
    for opener, o in _options(OPENERS):
        o_typos = _match(words, o)
        if o_typos is None:
            continue
        for closing, c in _options(CLOSINGS):
            c_typos = _match(words[::-1], c[::-1])
            if c_typos is None:
                continue
            rest = words[len(o) : len(words) - len(c)]
            for index in _candidates(rest):
                form, before, after = _FORMS[index]
                n = len(o) + len(before) + len(after) + len(c)
                if n <= explained or n >= len(words):
                    continue
                b_typos, a_typos = _match(rest, before), _match(rest[::-1], after[::-1])
                if b_typos is not None and a_typos is not None:
                    typos = (*o_typos, *b_typos, *a_typos, *c_typos)
                    best, explained = Parts(form, opener, closing, typos), n
    return best


def vocabulary() -> list[str]:
    """Every form, opener and closing of both splits and every everyday word (tokenizer text)."""
    forms = (*(f for s in SPLITS for f in REQUEST_FORMS[s]), *COMPOSED_FORMS)
    texts = [f.replace("{}", "").strip() for f in forms]
    texts += [w for table in (OPENERS, CLOSINGS) for s in SPLITS for w in table[s]]
    return texts + [w for names in EVERYDAY_WORDS.values() for w in names]
