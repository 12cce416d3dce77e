"""A training sample: chat turns in the engine's template plus the image for each image slot.

``Sample.turns`` are ``engine.template.TemplateTurn``s; image slots are numbered in order of
appearance, exactly as ``engine.template.render`` numbers them, and ``specs[i]`` says how to draw
slot ``i`` (which scene, plain render / condition map / degraded copy). ``targets[i]`` is True
for images the model must generate (assistant images) and False for inputs. ``asks[j]`` is what
the user typed in user turn ``j`` and the task it was phrased for (`Ask`), so a request can send
the raw text and the task hint as the app does, and the engine phrases it back into the turn's
text. ``images`` holds the rendered PIL images once ``rendered(size)`` has been called; planning
without rendering is cheap and is what the text corpus uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from PIL import Image

from engine.template import (
    PSR_INSTRUCTION,
    ImageRole,
    Piece,
    Role,
    Task,
    TemplateTurn,
    render,
    task_text,
)
from training.data.captions import Brief
from training.data.conditions import CONDITIONS, render_condition
from training.data.degrade import Degradation, degrade
from training.data.render import render_scene
from training.data.splits import Split
from training.data.world import Scene

#: How an image slot is drawn from its scene.
VIEWS: tuple[str, ...] = ("render", *CONDITIONS)

SAMPLE_KINDS: tuple[str, ...] = (
    "t2i",
    "vqa",
    "caption",
    "edit",
    "diic",
    "subject",
    "condition",
    "restore",
    "style",
    "psr",
    "brief",
)


@dataclass(frozen=True)
class ImageSpec:
    """How to draw one image slot: ``scene`` rendered, or its condition map, then degraded."""

    scene: Scene
    view: str = "render"
    degradations: tuple[Degradation, ...] = ()

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"unknown view {self.view!r}; expected one of {VIEWS}")

    def render(self, size: int = 128) -> Image.Image:
        if self.view == "render":
            image = render_scene(self.scene, size)
        else:
            image = render_condition(self.view, self.scene, size)
        return degrade(image, self.degradations)


@dataclass(frozen=True)
class Rewrite:
    """A detailed rewrite of a brief prompt (PSR) and the scene it describes."""

    text: str
    scene: Scene


@dataclass(frozen=True)
class Ask:
    """What the user typed in one turn (``raw``) and the task hint it goes with.

    The turn's text is what the engine makes of them: ``task_text(task, raw)``, or with ``psr``
    (prompt self-rewriting, ``GenerationSettings.psr``) the PSR instruction around ``raw``.
    """

    task: Task
    raw: str
    psr: bool = False

    @property
    def text(self) -> str:
        """The user turn's text, phrased as the engine phrases it."""
        if self.psr:
            return PSR_INSTRUCTION.format(text=self.raw.strip())
        return task_text(self.task, self.raw)


@dataclass(frozen=True)
class Sample:
    kind: str
    split: Split
    turns: tuple[TemplateTurn, ...]
    specs: tuple[ImageSpec, ...]
    targets: tuple[bool, ...]
    #: PSR: the brief request and several detailed rewrites consistent with it; ``brief``
    #: kind: the brief request (drawn as its plain scene, tasks.plain_scene)
    brief: Brief | None = None
    rewrites: tuple[Rewrite, ...] = ()
    #: one per user turn, in order: each turn's text is its ask's ``text`` (required; the default
    #: only lets the field follow the defaulted ones)
    asks: tuple[Ask, ...] = ()
    images: tuple[Image.Image, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        roles = self.image_roles()
        if len(roles) != len(self.specs) or len(self.targets) != len(self.specs):
            raise ValueError(
                f"{len(roles)} image slots, {len(self.specs)} specs, {len(self.targets)} targets"
            )
        for (role, in_assistant), target in zip(roles, self.targets, strict=True):
            if target != in_assistant:
                raise ValueError("an image is a target exactly when the assistant produces it")
            if in_assistant and role is not ImageRole.IMAGE:
                raise ValueError(f"assistant images are plain images, not {role.value}")
        users = [t for t in self.turns if t.role is Role.USER]
        if len(self.asks) != len(users) or any(
            turn_text(turn) != ask.text for turn, ask in zip(users, self.asks, strict=False)
        ):
            raise ValueError("every user turn needs the ask its text was phrased from")

    def image_roles(self) -> list[tuple[ImageRole, bool]]:
        """(role, whether the assistant produces it) for each image slot, in order."""
        return [
            (part, turn.role is Role.ASSISTANT)
            for turn in self.turns
            for part in turn.parts
            if isinstance(part, ImageRole)
        ]

    @property
    def scenes(self) -> tuple[Scene, ...]:
        """The ground-truth scene behind each image slot."""
        return tuple(spec.scene for spec in self.specs)

    @property
    def target_scenes(self) -> tuple[Scene, ...]:
        return tuple(s.scene for s, t in zip(self.specs, self.targets, strict=True) if t)

    def pieces(self) -> list[Piece]:
        """The whole conversation rendered by the engine's template."""
        return render(self.turns, open_reply=False)

    def texts(self) -> list[str]:
        """Every text part of every turn (what a tokenizer should see)."""
        return [p for t in self.turns for p in t.parts if not isinstance(p, ImageRole) and p]

    def rendered(self, size: int = 128) -> Sample:
        """This sample with ``images`` drawn at ``size`` x ``size``."""
        return replace(self, images=tuple(spec.render(size) for spec in self.specs))


def turn_text(turn: TemplateTurn) -> str:
    """A template turn's text (``ImageRole`` is a str enum: leave the image slots out)."""
    return "".join(p for p in turn.parts if not isinstance(p, ImageRole))
