"""Exporting an image (its PNG, metadata included) or a whole conversation (a .zip with the
images, a readable transcript and a JSON record). No Qt."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from pathlib import Path

from desktop.database import Database, TurnStatus
from engine.api import Role, Task

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


def new_file_mode() -> int:
    """The permissions a new file gets from this process's umask (e.g. 0o644)."""
    try:  # Linux says it without changing it (os.umask sets it for every thread meanwhile)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def export_image(source: Path, destination: Path) -> Path:
    """Copy a saved image (with its metadata) to ``destination``, atomically, with the
    permissions of a new file (or those of the file it replaces)."""
    destination = Path(destination)
    if destination.suffix.lower() != source.suffix.lower():
        destination = destination.with_suffix(source.suffix)
    fd, tmp = tempfile.mkstemp(prefix=".export.", dir=destination.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        _set_mode(Path(tmp), destination)
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
        _set_mode(Path(tmp), destination)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination


def _set_mode(tmp: Path, destination: Path) -> None:
    """mkstemp makes files only the owner can read; an export is a normal file."""
    try:
        mode = destination.stat().st_mode & 0o777
    except OSError:
        mode = new_file_mode()
    os.chmod(tmp, mode)
