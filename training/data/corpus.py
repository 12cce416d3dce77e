"""The text corpus of the shapes world, for training the tokenizer.

``text_corpus`` yields every phrasing the samples use: the vocabulary words, the engine's task
instructions, the request forms of both splits (phrasings.py), and the text turns of seeded
samples of every kind and both splits (so held-out phrases are in the tokenizer's vocabulary
even though train samples never use them).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from engine.template import PSR_INSTRUCTION, TASK_DEFAULT_TEXT, Task, task_text
from training.data import captions as cap
from training.data import phrasings
from training.data.samples import SAMPLE_KINDS
from training.data.splits import SPLITS
from training.data.tasks import plan_sample


def vocabulary_phrases() -> list[str]:
    """Every synonym of every attribute value, the number words, the task phrasings and the
    request forms of both splits."""
    phrases = [w for table in cap.WORD_TABLES for words in table.values() for w in words]
    phrases += phrasings.vocabulary()
    phrases += [*cap.NUMBER_WORDS, "yes", "no"]
    phrases += [task_text(t, "") for t in Task] + list(TASK_DEFAULT_TEXT.values())
    phrases.append(PSR_INSTRUCTION.format(text=""))
    return phrases


def text_corpus(samples_per_kind: int = 200, seed: int = 0) -> Iterator[str]:
    """Vocabulary phrases, then the texts (and PSR rewrites) of seeded samples of every kind."""
    yield from vocabulary_phrases()
    rng = random.Random(f"corpus/{seed}")
    for split in SPLITS:
        for kind in SAMPLE_KINDS:
            for _ in range(samples_per_kind):
                sample = plan_sample(kind, rng, split)
                yield from sample.texts()
                yield from (r.text for r in sample.rewrites[1:])
