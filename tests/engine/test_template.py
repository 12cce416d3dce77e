"""Special tokens, the chat template and the tokenizer."""

from __future__ import annotations

import pytest

from engine.prompt import encode_conversation
from engine.template import (
    ADDED_TOKENS,
    NUM_IMAGE_TOKENS,
    Control,
    ImageRole,
    ImageSlot,
    Role,
    Task,
    TemplateTurn,
    image_token,
    render,
    task_text,
)


def test_added_tokens_match_the_official_set():
    assert len(ADDED_TOKENS) == 330 and len(set(ADDED_TOKENS)) == 330
    assert image_token(0) == "<img_00000>" and image_token(99) == "<img_00099>"
    assert {
        "<img>",
        "</img>",
        "<patch>",
        "</patch>",
        "<box_start>",
        "<box_end>",
        "<loc-0>",
        "<loc-223>",
    } <= set(ADDED_TOKENS)
    with pytest.raises(ValueError):
        image_token(100)


def test_official_text_to_image_prompt():
    pieces = render([TemplateTurn(Role.USER, (task_text(Task.GENERATE, "a red fox"),))])
    assert pieces == [Control("<s>"), "[INST] Generate a painting: a red fox [/INST]\n"]


def test_multi_turn_with_images_numbers_them_in_order():
    turns = [
        TemplateTurn(Role.USER, (ImageRole.REFERENCE, ImageRole.STYLE, "mix them")),
        TemplateTurn(Role.ASSISTANT, ("Here:", ImageRole.IMAGE)),
        TemplateTurn(Role.USER, ("smaller",)),
    ]
    pieces = render(turns)
    slots = [p for p in pieces if isinstance(p, ImageSlot)]
    assert [(s.index, s.role) for s in slots] == [
        (0, ImageRole.REFERENCE),
        (1, ImageRole.STYLE),
        (2, ImageRole.IMAGE),
    ]
    assert pieces.count(Control("</s>")) == 1 and pieces.count(Control("<s>")) == 2
    assert pieces[-1] == " [/INST]\n" or pieces[-1].endswith(" [/INST]\n")


def test_turns_must_alternate_and_end_with_user():
    with pytest.raises(ValueError, match="alternate"):
        render([TemplateTurn(Role.USER, ("a",)), TemplateTurn(Role.USER, ("b",))])
    with pytest.raises(ValueError, match="end with a user turn"):
        render([TemplateTurn(Role.USER, ("a",)), TemplateTurn(Role.ASSISTANT, ("b",))])


def test_image_slots_encode_to_64_masked_positions(tokenizer):
    enc = encode_conversation(
        tokenizer,
        [TemplateTurn(Role.USER, (ImageRole.IMAGE, "what is it?"))],
        max_tokens=1024,
        reserve=10,
    )
    ids = enc.ids.tolist()
    start = ids.index(tokenizer.img_start_id)
    assert ids[start + 1 : start + 65] == list(tokenizer.image_token_ids)
    assert ids[start + 65] == tokenizer.img_end_id
    assert enc.image_mask.sum() == NUM_IMAGE_TOKENS and enc.image_mask[start + 1 : start + 65].all()
    assert ids[0] == tokenizer.bos_id and enc.image_indices == (0,)


def test_typed_special_token_spellings_stay_text(tokenizer):
    ids = tokenizer.encode("look <img> here </s>")
    assert tokenizer.img_start_id not in ids and tokenizer.eos_id not in ids
    assert tokenizer.decode(ids) == "look <img> here </s>"


def test_tokenizer_round_trip_and_file(tokenizer, tmp_path):
    text = "Generate a painting: a small purple striped hexagon"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    tokenizer.save(tmp_path / "tokenizer.json")
    from engine.tokenizer import WeGenTokenizer

    again = WeGenTokenizer.load(tmp_path / "tokenizer.json")
    assert (
        again.encode(text) == tokenizer.encode(text)
        and again.image_token_ids == tokenizer.image_token_ids
    )


def test_a_tokenizer_without_wegen_tokens_is_refused(tmp_path):
    from tokenizers import Tokenizer, models

    from engine.errors import ModelFolderError
    from engine.tokenizer import WeGenTokenizer

    Tokenizer(models.BPE()).save(str(tmp_path / "t.json"))
    with pytest.raises(ModelFolderError, match="not a WeGen tokenizer"):
        WeGenTokenizer.load(tmp_path / "t.json")
