"""What every saved PNG carries, and reading it back. No Qt.

Three chunks:

- ``parameters`` (tEXt, iTXt when not Latin-1): the AUTOMATIC1111 layout that existing tools
  read (sd-parsers, image browsers): the prompt, then one line of ``Key: value`` pairs.
- ``wegen`` (compressed iTXt): our record, JSON, format 2: `ImageDone.metadata` as the engine
  made it (``prompt``, ``model_prompt``, ``psr_rewrite``, ``task``, ``settings`` with the seed
  used, ``attachments``, ``history_turns``, ``model``, ``model_folder``, ``runtime``) plus
  ``"format": 2`` and what only the app knows: ``app_version``, ``request_id`` and ``history``
  (a summary of the earlier turns). The CLI writes the same record without the app's keys.
  Format 1 (the app before) nested its own copy of the request under ``request`` and the
  engine's record under ``engine``; `migrate_record` turns it into format 2.
- ``XML:com.adobe.xmp`` (iTXt): an XMP packet with the IPTC ``DigitalSourceType``
  ``trainedAlgorithmicMedia`` (AI-generated media) and the prompt as ``dc:description``.

Files are written with `engine.files.write_png_atomic`, the one atomic writer.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, PngImagePlugin

from engine.files import write_file_atomic, write_png_atomic

FORMAT_VERSION = 2
WEGEN_KEY = "wegen"
PARAMETERS_KEY = "parameters"
XMP_KEY = "XML:com.adobe.xmp"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
GENERATOR = "WeGen"


@dataclass(frozen=True)
class PngMetadata:
    """What `read_png_metadata` found; any part may be missing (a PNG from another tool).
    ``wegen`` is always a format-2 record (an older one is migrated as it is read)."""

    parameters: str | None
    wegen: dict[str, Any] | None
    digital_source_type: str | None


def a1111_parameters(record: dict[str, Any], width: int, height: int) -> str:
    """The A1111 ``parameters`` text for a `wegen` record (any format)."""
    record = migrate_record(record)
    settings = record.get("settings", {})

    def pick(key: str, default: Any) -> Any:
        value = settings.get(key)
        return default if value is None else value

    prompt = record.get("psr_rewrite") or record.get("prompt", "")
    fields = {
        "Steps": pick("steps", ""),
        "Sampler": GENERATOR,
        "CFG scale": pick("guidance", ""),
        "Seed": pick("seed", ""),
        "Size": f"{width}x{height}",
        "Model": record.get("model", ""),
        "Embedding CFG": pick("embedding_cfg", 1.0),
        "Denoising strength": pick("denoise_strength", 1.0),
        "PSR": "on" if settings.get("psr") else "off",
        "Task": record.get("task", "auto"),
        "Version": f"{GENERATOR} {record.get('app_version', '')}".strip(),
    }
    line = ", ".join(f"{key}: {_clean(value)}" for key, value in fields.items() if value != "")
    return f"{prompt.strip()}\n{line}"


def migrate_record(record: dict[str, Any]) -> dict[str, Any]:
    """A `wegen` record of any format as format 2 (a format-2 record is returned as it is).

    Format 1 was ``{"format": 1, "app_version", "request": {text, rewrite, task, settings,
    attachments, history, request_id}, "engine": ImageDone.metadata}``; the engine's fields win
    where both have one (its settings have the defaults resolved), the request's fill the gaps.
    """
    if record.get("format") == FORMAT_VERSION or (
        "request" not in record and "engine" not in record
    ):
        return record
    request = record.get("request") or {}
    engine = record.get("engine") or {}
    migrated: dict[str, Any] = {**engine, "format": FORMAT_VERSION}
    migrated.setdefault("prompt", request.get("text", ""))
    if not migrated.get("psr_rewrite") and request.get("rewrite"):
        migrated["psr_rewrite"] = request["rewrite"]
    migrated.setdefault("task", request.get("task", "auto"))
    migrated["settings"] = {**request.get("settings", {}), **engine.get("settings", {})}
    migrated.setdefault("attachments", request.get("attachments", []))
    if "app_version" in record:
        migrated["app_version"] = record["app_version"]
    if "request_id" in request:
        migrated["request_id"] = request["request_id"]
    if "history" in request:
        migrated["history"] = request["history"]
        migrated.setdefault("history_turns", len(request["history"]))
    return migrated


def _clean(value: Any) -> str:
    """A value safe inside the ``Key: value, Key: value`` line."""
    return " ".join(re.sub(r"[,:\n\r]", " ", str(value)).split())


def xmp_packet(description: str) -> str:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:Iptc4xmpExt="{IPTC_EXT_NS}"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        f"    Iptc4xmpExt:DigitalSourceType={quoteattr(TRAINED_ALGORITHMIC_MEDIA)}\n"
        f"    xmp:CreatorTool={quoteattr(GENERATOR)}>\n"
        "   <dc:description><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{escape(description)}</rdf:li>'
        "</rdf:Alt></dc:description>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


def png_info(record: dict[str, Any], width: int, height: int) -> PngImagePlugin.PngInfo:
    """The three chunks for ``record`` (`ImageDone.metadata`, plus the app's keys if any)."""
    record = migrate_record(record)
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(record, width, height))
    info.add_itxt(WEGEN_KEY, json.dumps({**record, "format": FORMAT_VERSION}), zip=True)
    info.add_itxt(XMP_KEY, xmp_packet(record.get("prompt", "")))
    return info


def save_png_atomic(
    image: Image.Image, path: Path | str, record: dict[str, Any] | None = None
) -> Path:
    """Write ``image`` to ``path`` as PNG (with the metadata when ``record`` is given), through
    `engine.files.write_png_atomic`: `OutputPathError` on a failed write, the old file kept."""
    info = png_info(record, *image.size) if record is not None else None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_png_atomic(image, path, info)


def copy_file_atomic(source: Path | str, path: Path | str) -> Path:
    """Copy a file's bytes to ``path`` atomically (for attachments kept as the user gave them)."""

    def copy(handle: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, handle, 1 << 20)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_file_atomic(path, copy)


def read_png_metadata(path: Path | str) -> PngMetadata:
    """The metadata chunks of an image file (no pixel data is decoded)."""
    with Image.open(path) as image:
        info = dict(getattr(image, "text", {}) or {})
        for key, value in image.info.items():
            if isinstance(value, str):
                info.setdefault(key, value)
    wegen: dict[str, Any] | None = None
    if WEGEN_KEY in info:
        try:
            loaded = json.loads(info[WEGEN_KEY])
        except json.JSONDecodeError:
            loaded = None
        if isinstance(loaded, dict):
            wegen = migrate_record(loaded)
    return PngMetadata(
        parameters=info.get(PARAMETERS_KEY),
        wegen=wegen,
        digital_source_type=_digital_source_type(info.get(XMP_KEY)),
    )


def _digital_source_type(xmp: str | None) -> str | None:
    if not xmp:
        return None
    body = xmp[xmp.find("<x:xmpmeta") : xmp.rfind("</x:xmpmeta>") + len("</x:xmpmeta>")]
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    key = f"{{{IPTC_EXT_NS}}}DigitalSourceType"
    for element in root.iter():
        if key in element.attrib:
            return element.attrib[key]
        if element.tag == key and element.text:
            return element.text.strip()
    return None


@dataclass(frozen=True)
class Recipe:
    """What opening an image restores in the composer."""

    text: str
    task: str
    settings: dict[str, Any]  # GenerationSettings fields that were found


def recipe_from_metadata(meta: PngMetadata) -> Recipe | None:
    """The prompt and settings stored in an image: our record first, else the A1111 text."""
    if meta.wegen is not None:
        record = migrate_record(meta.wegen)
        return Recipe(
            record.get("prompt", ""), record.get("task", "auto"), dict(record.get("settings", {}))
        )
    if meta.parameters:
        return _recipe_from_a1111(meta.parameters)
    return None


def _recipe_from_a1111(text: str) -> Recipe:
    lines = text.strip().split("\n")
    fields: dict[str, str] = {}
    if lines and re.search(r"\bSteps:\s*\d+", lines[-1]):
        for item in lines.pop().split(","):
            key, _, value = item.partition(":")
            fields[key.strip()] = value.strip()
    prompt = "\n".join(lines).split("Negative prompt:")[0].strip()
    settings: dict[str, Any] = {}
    conversions: dict[str, tuple[str, type]] = {
        "Seed": ("seed", int),
        "Steps": ("steps", int),
        "CFG scale": ("guidance", float),
        "Embedding CFG": ("embedding_cfg", float),
        "Denoising strength": ("denoise_strength", float),
    }
    for key, (name, kind) in conversions.items():
        with contextlib.suppress(KeyError, ValueError):
            settings[name] = kind(fields[key])
    size = re.fullmatch(r"(\d+)x(\d+)", fields.get("Size", ""))
    if size and size.group(1) == size.group(2):
        settings["size"] = int(size.group(1))
    if "PSR" in fields:
        settings["psr"] = fields["PSR"] == "on"
    return Recipe(prompt, fields.get("Task", "auto"), settings)
