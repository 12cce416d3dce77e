"""A job: one chat turn for the worker to run, described by file paths, not pixels. No Qt.

The GUI thread builds a `Job` from the database (cheap); the worker thread turns it into an
`engine.api.Request` with `Job.build_request` (which reads the images) and writes each finished
image to `Job.output_path` with the `Job.record` metadata, so neither image decoding nor PNG
encoding ever runs on the GUI thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.image_input import load_image_file
from engine.api import (
    GenerationSettings,
    ImagePart,
    ImageRole,
    Request,
    Role,
    Task,
    Turn,
    version,
)

#: written into every image's metadata; `engine.build_info` is the one place it comes from
APP_VERSION = version()


@dataclass(frozen=True)
class ImageSpec:
    path: Path  # absolute
    role: ImageRole = ImageRole.IMAGE
    source: str = ""  # the name the user knows it by (file name), written into metadata


@dataclass(frozen=True)
class TurnSpec:
    role: Role
    text: str
    images: tuple[ImageSpec, ...] = ()
    task: Task = Task.AUTO  # the hint a user turn was sent with (the engine phrases it again)

    def to_turn(self) -> Turn:
        parts = tuple(
            ImagePart(load_image_file(spec.path, max_side=None), spec.role, spec.source)
            for spec in self.images
        )
        if self.role is Role.USER:
            return Turn.user(self.text, *parts, task=self.task)
        return Turn.assistant(*((self.text,) if self.text else ()), *parts)

    def summary(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "text": self.text,
            "images": [{"role": s.role.value, "source": s.source} for s in self.images],
        }


@dataclass(frozen=True)
class Job:
    conversation_id: int
    turn_id: int  # the assistant turn this job fills
    message: TurnSpec
    history: tuple[TurnSpec, ...] = ()
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    task: Task = Task.AUTO
    output_dir: Path = Path()
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def title(self) -> str:
        """A one-line description for the queue."""
        text = " ".join(self.message.text.split())
        if not text:
            text = f"[{self.task.value}]"
        return text if len(text) <= 60 else text[:57] + "…"

    def build_request(self) -> Request:
        """The engine request (reads the images: call it on the worker thread)."""
        return Request(
            message=self.message.to_turn(),
            history=tuple(turn.to_turn() for turn in self.history),
            settings=self.settings,
            task=self.task,
            request_id=self.request_id,
        )

    def output_path(self, index: int) -> Path:
        return self.output_dir / f"turn{self.turn_id}-{self.request_id[:8]}-{index}.png"

    def record(self, engine_metadata: dict[str, Any]) -> dict[str, Any]:
        """The ``wegen`` PNG record (format 2, see `engine.png_metadata`): the engine's
        `ImageDone.metadata` plus what only the app knows, nothing said twice."""
        return {
            **engine_metadata,
            "app_version": APP_VERSION,
            "request_id": self.request_id,
            "history": [turn.summary() for turn in self.history],
        }
