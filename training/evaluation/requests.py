"""How a sample becomes the request the desktop would send, and how a request is run.

How a request is built from a sample (`build_request`)
------------------------------------------------------
The sample's last user turn becomes ``Request.message`` (attachments first, then the text); the
turns before it become ``Request.history``, every image slot filled with the sample's
ground-truth render. For multi-turn edits the history therefore holds the previous assistant
turn with the *true* render of the previous scene, not the model's own earlier output, so each
edit is scored in isolation. History texts are passed verbatim (as the model saw them in
training).

Text phrasing: the sample's user text was phrased by ``engine.template.task_text`` from what the
user typed and the task, and the engine phrases ``message`` again from the task hint. The sample
keeps both (``Sample.asks``, training/data/samples.py): we pass the task hint and the RAW text,
so the prompt the model sees is exactly the training prompt. A hint other than the sample's is
allowed where it phrases the text the same way (a question sent with the task on automatic). Samples phrased for ``Task.AUTO``
(a plain request) are skipped when drawing, so every request carries the real task hint.
"""

from __future__ import annotations

import threading

from engine import api
from engine.template import ImageRole, Role, Task, task_text
from training.data.samples import Sample
from training.evaluation.scores import Output


def psr_brief_text(sample: Sample) -> str:
    """The brief prompt of a PSR sample (what the user typed in its first turn, PSR on)."""
    ask = sample.asks[0]
    if not ask.psr:
        raise ValueError(f"not a PSR request: {ask.text!r}")
    return ask.raw.strip()


def build_request(
    sample: Sample, task: Task, settings: api.GenerationSettings, *, tag: str = ""
) -> api.Request:
    """The request that asks for the sample's final assistant turn (see the module docstring).

    Raises ValueError if the sample's last user text is not phrased for ``task`` or its images
    are not rendered.
    """
    if len(sample.turns) < 2 or sample.turns[-1].role is not Role.ASSISTANT:
        raise ValueError("a sample must end with a user turn and the assistant's reply")
    if len(sample.images) != len(sample.specs):
        raise ValueError("render the sample first (Sample.rendered)")
    slots = iter(enumerate(sample.images))
    turns: list[api.Turn] = []
    for turn in sample.turns[:-1]:
        parts: list[str | api.ImagePart] = []
        for part in turn.parts:
            if isinstance(part, ImageRole):
                index, image = next(slots)
                parts.append(api.ImagePart(image, part, f"{tag or sample.kind}/slot{index}.png"))
            elif part:
                parts.append(part)
        turns.append(api.Turn(turn.role, tuple(parts)))
    *history, last = turns
    if any(isinstance(p, api.ImagePart) for p in last.parts[len(last.images) :]):
        raise ValueError("the last user turn must have its images before its text")
    ask = sample.asks[-1]
    if ask.psr or task_text(task, ask.raw) != task_text(ask.task, ask.raw):
        raise ValueError(f"{last.text!r} is not phrased for task {task.value}")
    return api.Request(
        message=api.Turn.user(ask.raw, *last.images),
        history=tuple(history),
        settings=settings,
        task=task,
    )


def run_request(engine: api.Engine, request: api.Request) -> Output:
    """Run one request; a Failed / Cancelled event, a missing final event or an exception is a
    failure (reported, never raised)."""
    events: list[api.Event] = []
    try:
        engine.run(request, events.append, threading.Event())
    except Exception as e:  # an engine must not raise, but a broken one must not stop the eval
        return Output(failure=f"engine raised {type(e).__name__}: {e}")
    final = events[-1] if events else None
    if isinstance(final, api.Finished):
        images = tuple(p.image for p in final.reply.images)
        rewrite = next((e.text for e in events if isinstance(e, api.Rewrite)), None)
        return Output(final.reply.text, images, rewrite=rewrite)
    if isinstance(final, api.Failed):
        return Output(failure=final.message)
    if isinstance(final, api.Cancelled):
        return Output(failure="cancelled")
    return Output(failure="the engine sent no final event")
