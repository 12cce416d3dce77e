"""Exporting an image (its PNG, metadata included) or a whole conversation (a .zip with the
images, a readable transcript and a JSON record). No Qt."""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
import zipfile
from pathlib import Path
from typing import IO

from desktop.database import Database, TurnStatus
from engine.api import Role, Task, new_file_mode, write_file_atomic

__all__ = ["export_conversation", "export_image", "new_file_mode", "suggested_file_name"]

NAME_LENGTH = 60  # characters of the prompt kept in a suggested file name


def suggested_file_name(prompt: str, index: int = 0, suffix: str = ".png") -> str:
    """A file name for an export, from its prompt (or title): "a-red-circle-at-the-top.png"
    (words kept whole, at most `NAME_LENGTH` characters), "-2" for a reply's second image."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", prompt).lower())
    stem = ""
    for word in words:
        longer = f"{stem}-{word}" if stem else word
        if len(longer) > NAME_LENGTH:
            break
        stem = longer
    stem = stem or (words[0][:NAME_LENGTH] if words else "wegen-image")
    if index:
        stem += f"-{index + 1}"
    return stem + suffix


def export_image(source: Path, destination: Path) -> Path:
    """Copy a saved image (with its metadata) to ``destination``, atomically, with the
    permissions of a new file (or those of the file it replaces)."""
    destination = Path(destination)
    if destination.suffix.lower() != source.suffix.lower():
        destination = destination.with_suffix(source.suffix)

    def copy(handle: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, handle, 1 << 20)

    return write_file_atomic(destination, copy, keep_mode=True)


def export_conversation(db: Database, conversation_id: int, destination: Path) -> Path:
    """Write ``conversation.md``, ``conversation.json`` and ``images/`` into a zip file."""
    conversation = db.conversation(conversation_id)
    if conversation is None:
        raise ValueError(f"no conversation {conversation_id}")
    destination = Path(destination)
    if destination.suffix.lower() != ".zip":
        destination = destination.with_suffix(".zip")
    turns = db.turns(conversation_id)
    lines = [f"# {conversation.title}", ""]
    turn_records: list[dict[str, object]] = []
    record = {"format": 1, "title": conversation.title, "turns": turn_records}

    def write(handle: IO[bytes]) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for turn in turns:
                who = "You" if turn.role is Role.USER else "WeGen"
                lines.append(
                    f"**{who}**" + (f" ({turn.task.value})" if turn.task is not Task.AUTO else "")
                )
                if turn.rewrite:
                    lines.append(f"> Rewritten prompt: {turn.rewrite}")
                if turn.text:
                    lines.append(turn.text)
                names = []
                for image in turn.images:
                    name = f"images/{Path(image.path).name}"
                    path = db.image_path(image)
                    if path.is_file():
                        archive.write(path, name)
                        lines.append(f"![{image.role.value}]({name})")
                        names.append(
                            {"file": name, "role": image.role.value, "source": image.source}
                        )
                if turn.status is not TurnStatus.DONE:
                    lines.append(
                        f"_({turn.status.value}{': ' + turn.error if turn.error else ''})_"
                    )
                lines.append("")
                turn_records.append(
                    {
                        "role": turn.role.value,
                        "text": turn.text,
                        "rewrite": turn.rewrite,
                        "task": turn.task.value,
                        "settings": turn.settings,
                        "status": turn.status.value,
                        "images": names,
                    }
                )
            archive.writestr("conversation.md", "\n".join(lines))
            archive.writestr("conversation.json", json.dumps(record, indent=1))

    return write_file_atomic(destination, write, keep_mode=True)
