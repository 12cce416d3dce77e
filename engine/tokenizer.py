"""The text tokenizer: a `tokenizers.Tokenizer` with WeGen's special tokens looked up by spelling.

Our model folders store ``tokenizer.json``. `train_tokenizer` builds a small byte-level BPE
vocabulary (for wegen-tiny and tests) with the special tokens spelled exactly as the official ones;
`engine.official` converts the official sentencepiece tokenizer into the same form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from engine.errors import ModelFolderError
from engine.template import (
    BOS,
    EOS,
    IMG_END,
    IMG_START,
    NUM_IMAGE_TOKENS,
    REQUIRED_TOKENS,
    UNK,
    image_token,
)

_SPECIAL_SPELLING = re.compile(
    "|".join(re.escape(t) for t in sorted(REQUIRED_TOKENS, key=len, reverse=True))
)


class WeGenTokenizer:
    """Encodes plain text (never special tokens) and knows the ids of the special tokens."""

    def __init__(self, tokenizer: Tokenizer, source: str = "tokenizer") -> None:
        self.backend = tokenizer
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        missing = [t for t in REQUIRED_TOKENS if t not in vocab]
        if missing:
            raise ModelFolderError(
                f"{source} lacks {len(missing)} WeGen special token(s), e.g. {missing[0]!r}; "
                "it is not a WeGen tokenizer (use the tokenizer.json of the same model folder)"
            )
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.unk_id = vocab[UNK]
        self.bos_id = vocab[BOS]
        self.eos_id = vocab[EOS]
        self.img_start_id = vocab[IMG_START]
        self.img_end_id = vocab[IMG_END]
        #: ids of <img_00000>..<img_00063>, the slots one image occupies
        self.image_token_ids = tuple(vocab[image_token(i)] for i in range(NUM_IMAGE_TOKENS))
        #: ids that never appear in decoded text
        self.special_ids = frozenset(vocab[t] for t in REQUIRED_TOKENS)

    # --- text ---------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token spellings in it stay plain text.

        A user typing ``<img>`` must not open an image: each such spelling is encoded as ``<``
        followed by the rest, so it never matches the special token. The template's plain-text
        control strings (``[INST]``, ...) are ordinary text here; `engine.template.neutralise`
        breaks typed ones before they reach this.
        """
        ids: list[int] = []
        start = 0
        for match in _SPECIAL_SPELLING.finditer(text):
            ids += self._plain(text[start : match.start() + 1])
            start = match.start() + 1
        return ids + self._plain(text[start:])

    def _plain(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids if text else []

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode(
            [i for i in ids if i not in self.special_ids], skip_special_tokens=True
        )

    # --- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        self.backend.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> WeGenTokenizer:
        path = Path(path)
        if not path.is_file():
            raise ModelFolderError(f"{path} is missing: a model folder needs its tokenizer.json")
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise ModelFolderError(
                f"{path} is not a valid tokenizer file ({e}); restore it from "
                "the model's original download"
            ) from None
        return cls(backend, str(path))


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> WeGenTokenizer:
    """Train a byte-level BPE tokenizer whose first ids are the WeGen special tokens.

    ``vocab_size`` counts everything (the 333 required tokens included); the result has exactly
    that many ids when the corpus is large enough, else fewer.
    """
    if vocab_size <= len(REQUIRED_TOKENS) + 256:
        raise ValueError(
            f"vocab_size must exceed {len(REQUIRED_TOKENS) + 256} (special tokens + bytes)"
        )
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(REQUIRED_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return WeGenTokenizer(tok, "trained tokenizer")
