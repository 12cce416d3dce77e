"""The special tokens and the chat template: the one place that spells them.

WeGen extends a Llama-2 vocabulary with 330 tokens (see ../shared/reference): image brackets,
100 image-slot tokens (64 used per image), patch brackets, box brackets and 224 location tokens.
Ids are never hard-coded: they are looked up in the tokenizer by these strings.

A conversation is rendered in the Llama-2 chat format

    <s>[INST] user [/INST]\\n assistant</s><s>[INST] user [/INST]\\n

(the official text-to-image prompt is exactly the first user turn with "Generate a painting: ").
An image anywhere in a turn is written as ``<img>`` + 64 ``<img_xxxxx>`` + ``</img>``; at the 64
slots the token embeddings are replaced by ``input_proj(features)``.

Text from a person or from the model can never speak the format: the tokenizer encodes typed
spellings of special tokens (``<s>``, ``</s>``, ``<img>``, ...) as plain text, and `render_turns`
breaks typed control strings (``[INST]``, ``[/INST]``, `CONTROL_STRINGS`) with a zero-width space
after their first character (`neutralise`). The control strings are ordinary text to the
tokenizer, often one token per character, so no other split could tell a typed one apart.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# --- special tokens -------------------------------------------------------------------------
BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
IMG_START = "<img>"
IMG_END = "</img>"
PATCH_START = "<patch>"
PATCH_END = "</patch>"
BOX_START = "<box_start>"
BOX_END = "<box_end>"
NUM_IMAGE_SLOT_TOKENS = 100  # the vocabulary has <img_00000>..<img_00099>
NUM_LOCATION_TOKENS = 224
NUM_IMAGE_TOKENS = 64  # visual tokens per image (8 x 8 pooled grid)


def image_token(index: int) -> str:
    """The spelling of image-slot token ``index`` (``<img_00007>``)."""
    if not 0 <= index < NUM_IMAGE_SLOT_TOKENS:
        raise ValueError(f"image token index {index} is outside 0..{NUM_IMAGE_SLOT_TOKENS - 1}")
    return f"<img_{index:05d}>"


def location_token(index: int) -> str:
    """The spelling of location token ``index`` (``<loc-17>``)."""
    if not 0 <= index < NUM_LOCATION_TOKENS:
        raise ValueError(f"location token index {index} is outside 0..{NUM_LOCATION_TOKENS - 1}")
    return f"<loc-{index}>"


#: The 330 tokens WeGen adds to the Llama-2 vocabulary, in our canonical order.
ADDED_TOKENS: tuple[str, ...] = (
    IMG_START,
    IMG_END,
    *(image_token(i) for i in range(NUM_IMAGE_SLOT_TOKENS)),
    PATCH_START,
    PATCH_END,
    BOX_START,
    BOX_END,
    *(location_token(i) for i in range(NUM_LOCATION_TOKENS)),
)
#: Tokens every WeGen tokenizer must know, control tokens included.
REQUIRED_TOKENS: tuple[str, ...] = (UNK, BOS, EOS, *ADDED_TOKENS)

# --- chat format ----------------------------------------------------------------------------
INST_OPEN = "[INST] "
INST_CLOSE = " [/INST]\n"
#: The chat format's control strings that are plain text, which text in a turn must not contain
#: as such: the instruction brackets, and Llama-2's system-prompt tags (which the official model's
#: language model learned, though this template does not use them).
CONTROL_STRINGS: tuple[str, ...] = (INST_OPEN.strip(), INST_CLOSE.strip(), "<<SYS>>", "<</SYS>>")
#: What `neutralise` puts after the first character of a control string typed in a turn
NEUTRALISER = "\u200b"  # ZERO WIDTH SPACE: the text reads the same, its tokens differ
_CONTROL_SPELLING = re.compile(
    "|".join(re.escape(s) for s in sorted(CONTROL_STRINGS, key=len, reverse=True))
)


def neutralise(text: str) -> str:
    """``text`` with each control string in it broken by `NEUTRALISER` after its first character,
    so that its tokens are never the template's own; other text is returned unchanged."""
    return _CONTROL_SPELLING.sub(lambda m: m[0][0] + NEUTRALISER + m[0][1:], text)


class Role(str, enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"


class ImageRole(str, enum.Enum):
    """What an image in a user turn is for. The label is written before the image."""

    IMAGE = "image"  # a plain image: to describe, edit, or continue from
    REFERENCE = "reference"  # a subject to re-use (subject-driven generation)
    CONDITION = "condition"  # an edge map or layout sketch (condition-driven generation)
    STYLE = "style"  # the style to apply (style transfer)
    RESTORE = "restore"  # a degraded photo to restore


IMAGE_LABELS: dict[ImageRole, str] = {
    ImageRole.IMAGE: "",
    ImageRole.REFERENCE: "Subject: ",
    ImageRole.CONDITION: "Condition: ",
    ImageRole.STYLE: "Style: ",
    ImageRole.RESTORE: "Degraded photo: ",
}


class Task(str, enum.Enum):
    """A task hint chosen by the UI; ``AUTO`` lets the model decide from the text."""

    AUTO = "auto"
    GENERATE = "generate"  # text-to-image
    DESCRIBE = "describe"  # understanding: answer about the input images
    EDIT = "edit"  # refine / edit the last image of the conversation
    SUBJECT = "subject"  # put a reference subject into a new scene
    CONDITION = "condition"  # follow a condition map
    RESTORE = "restore"  # restore a degraded image
    STYLE = "style"  # content image + style image -> the content in that style
    VARIATIONS = "variations"  # another take on the last request


#: How a task's instruction is phrased; ``{text}`` is the user's text (may be empty).
TASK_INSTRUCTIONS: dict[Task, str] = {
    Task.AUTO: "{text}",
    Task.GENERATE: "Generate a painting: {text}",
    Task.DESCRIBE: "{text}",
    Task.EDIT: "Edit the image: {text}",
    Task.SUBJECT: "Generate the subject in a new scene: {text}",
    Task.CONDITION: "Generate an image that follows the condition: {text}",
    Task.RESTORE: "Restore the image. {text}",
    Task.STYLE: "Paint the image in the style of the style image. {text}",
    Task.VARIATIONS: "Generate a variation: {text}",
}
#: What a task says when the user typed nothing.
TASK_DEFAULT_TEXT: dict[Task, str] = {
    Task.DESCRIBE: "Describe the image.",
}
#: Whether a task's reply must contain an image (True), must not (False), or either (None).
TASK_WANTS_IMAGE: dict[Task, bool | None] = {
    Task.AUTO: None,
    Task.GENERATE: True,
    Task.DESCRIBE: False,
    Task.EDIT: True,
    Task.SUBJECT: True,
    Task.CONDITION: True,
    Task.RESTORE: True,
    Task.STYLE: True,
    Task.VARIATIONS: True,
}

#: The most text tokens a task's reply may hold (below the request's own ``max_new_tokens``): a
#: task that draws answers with its image, and a few words around it at most.
TASK_TEXT_LIMIT: dict[Task, int] = {
    task: 32 for task, wants in TASK_WANTS_IMAGE.items() if wants is True
}

#: Prompt Self-Rewriting: the request that asks the model to expand a brief prompt.
PSR_INSTRUCTION = "Rewrite the request as a detailed image description: {text}"


def task_text(task: Task, text: str) -> str:
    """The user's text phrased for ``task``."""
    text = text.strip() or TASK_DEFAULT_TEXT.get(task, "")
    return TASK_INSTRUCTIONS[task].format(text=text).strip()


@dataclass(frozen=True)
class ImageSlot:
    """Where an image goes in the rendered prompt; ``index`` counts images in the conversation."""

    index: int
    role: ImageRole = ImageRole.IMAGE


@dataclass(frozen=True)
class Control:
    """A control token in the rendered prompt (``BOS`` or ``EOS``)."""

    token: str


#: A rendered prompt is a sequence of text pieces, control tokens and image slots.
Piece = str | ImageSlot | Control


@dataclass(frozen=True)
class TemplateTurn:
    """A turn as the template sees it: text pieces and image roles in reading order."""

    role: Role
    parts: tuple[str | ImageRole, ...]


def render_turns(
    turns: list[TemplateTurn] | tuple[TemplateTurn, ...], *, open_reply: bool = True
) -> list[list[Piece]]:
    """Render a conversation into one list of pieces per turn.

    Text is merged within a turn, never across turns: a reply is tokenized on its own, exactly as
    it is generated after the prompt, so training and inference see the same tokens. With
    ``open_reply`` the conversation must end on a user turn (the prompt for the next reply).
    Images are numbered in order of appearance.
    """
    rendered: list[list[Piece]] = []
    images = 0
    expect = Role.USER
    for turn in turns:
        if turn.role is not expect:
            raise ValueError(
                f"turns must alternate user/assistant; got two {turn.role.value} turns in a row"
            )
        pieces: list[Piece] = [Control(BOS), INST_OPEN] if turn.role is Role.USER else []
        for run in _text_runs(turn.parts):
            if isinstance(run, ImageRole):
                if IMAGE_LABELS[run]:
                    pieces.append(IMAGE_LABELS[run])
                pieces.append(ImageSlot(images, run))
                images += 1
            elif run:
                pieces.append(neutralise(run))  # the turn's own text, never the template's
        pieces.append(INST_CLOSE if turn.role is Role.USER else Control(EOS))
        rendered.append(_merge_text(pieces))
        expect = Role.ASSISTANT if turn.role is Role.USER else Role.USER
    if open_reply and expect is not Role.ASSISTANT:
        raise ValueError("a prompt for generation must end with a user turn")
    return rendered


def render(
    turns: list[TemplateTurn] | tuple[TemplateTurn, ...], *, open_reply: bool = True
) -> list[Piece]:
    """The pieces of `render_turns`, concatenated."""
    return [piece for turn in render_turns(turns, open_reply=open_reply) for piece in turn]


def _text_runs(parts: tuple[str | ImageRole, ...]) -> list[str | ImageRole]:
    """Adjacent text parts joined, so a control string split across two parts is found whole."""
    runs: list[str | ImageRole] = []
    for part in parts:
        text = not isinstance(part, ImageRole)  # (an ImageRole is a str too)
        if text and runs and not isinstance(runs[-1], ImageRole):
            runs[-1] += part
        else:
            runs.append(part)
    return runs


def _merge_text(pieces: list[Piece]) -> list[Piece]:
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + piece
        else:
            merged.append(piece)
    return merged
