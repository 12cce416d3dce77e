"""Exporting an image (its PNG, metadata included) or a whole conversation (a .zip with the
images, a readable transcript and a JSON record). No Qt."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from desktop.database import Database


def export_image(source: Path, destination: Path) -> Path:
    """Copy a saved image (with its metadata) to ``destination``, atomically."""
    destination = Path(destination)
    if destination.suffix.lower() != source.suffix.lower():
        destination = destination.with_suffix(source.suffix)
    fd, tmp = tempfile.mkstemp(prefix=".export.", dir=destination.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination


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
    fd, tmp = tempfile.mkstemp(prefix=".export.", suffix=".zip", dir=destination.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for turn in turns:
                who = "You" if turn.role == "user" else "WeGen"
                lines.append(f"**{who}**" + (f" ({turn.task})" if turn.task != "auto" else ""))
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
                        lines.append(f"![{image.role}]({name})")
                        names.append({"file": name, "role": image.role, "source": image.source})
                if turn.status != "done":
                    lines.append(f"_({turn.status}{': ' + turn.error if turn.error else ''})_")
                lines.append("")
                turn_records.append(
                    {
                        "role": turn.role,
                        "text": turn.text,
                        "rewrite": turn.rewrite,
                        "task": turn.task,
                        "settings": turn.settings,
                        "status": turn.status,
                        "images": names,
                    }
                )
            archive.writestr("conversation.md", "\n".join(lines))
            archive.writestr("conversation.json", json.dumps(record, indent=1))
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination
