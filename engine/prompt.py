"""From a conversation (turns with text and images) to token ids, image slots and features.

Context policy: a prompt must leave room for the reply (``reserve`` tokens: the text budget plus
66 per image it may produce). When the conversation is too long, the oldest exchanges (a user turn
and its reply) are dropped first, whole, so no image is ever cut in half; the newest message is
never dropped or shortened — if it alone does not fit, `PromptError` says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.errors import PromptError
from engine.template import NUM_IMAGE_TOKENS, Control, ImageSlot, Piece, TemplateTurn, render
from engine.tokenizer import WeGenTokenizer

TOKENS_PER_IMAGE = NUM_IMAGE_TOKENS + 2  # <img> + 64 slots + </img>


@dataclass(frozen=True)
class Encoded:
    """A rendered prompt: ids (T,), image-slot mask (T,), and which images fill the slots."""

    ids: torch.Tensor
    image_mask: torch.Tensor
    image_indices: tuple[int, ...]  # index into the conversation's images, in slot order
    dropped_turns: int  # how many old turns the context policy removed


def encode_pieces(
    tok: WeGenTokenizer, pieces: list[Piece]
) -> tuple[list[int], list[bool], list[int]]:
    ids: list[int] = []
    mask: list[bool] = []
    images: list[int] = []
    for piece in pieces:
        if isinstance(piece, Control):
            new = [tok.bos_id if piece.token == "<s>" else tok.eos_id]
            ids += new
            mask += [False]
        elif isinstance(piece, ImageSlot):
            ids += [tok.img_start_id, *tok.image_token_ids, tok.img_end_id]
            mask += [False] + [True] * NUM_IMAGE_TOKENS + [False]
            images.append(piece.index)
        else:
            new = tok.encode(piece)
            ids += new
            mask += [False] * len(new)
    return ids, mask, images


def encode_conversation(
    tok: WeGenTokenizer, turns: list[TemplateTurn], *, max_tokens: int, reserve: int
) -> Encoded:
    """Render ``turns`` (ending with the new user turn) within ``max_tokens - reserve`` tokens."""
    if not turns:
        raise PromptError("there is no message to answer")
    budget = max_tokens - reserve
    # image indices are global over the full conversation, so dropped turns shift them
    per_turn_images = [sum(1 for p in t.parts if not isinstance(p, str)) for t in turns]
    start = 0
    while True:
        pieces = render(turns[start:])
        ids, mask, images = encode_pieces(tok, pieces)
        if len(ids) <= budget:
            offset = sum(per_turn_images[:start])
            return Encoded(
                torch.tensor(ids, dtype=torch.long),
                torch.tensor(mask, dtype=torch.bool),
                tuple(i + offset for i in images),
                start,
            )
        if start + 2 >= len(turns):
            raise PromptError(
                f"the message is too long for this model: it needs {len(ids)} tokens but "
                f"{budget} are free ({max_tokens} context, {reserve} kept for the reply; each "
                f"image takes {TOKENS_PER_IMAGE}). Shorten the text or attach fewer images."
            )
        start += 2  # drop the oldest exchange (user turn + reply), whole
