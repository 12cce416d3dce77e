"""What every saved PNG carries, and reading it back. No Qt.

Three chunks:

- ``parameters`` (tEXt, iTXt when not Latin-1): the AUTOMATIC1111 layout that existing tools
  read (sd-parsers, image browsers): the prompt, then one line of ``Key: value`` pairs.
- ``wegen`` (compressed iTXt): our record, JSON: ``{"format": 1, "request": {...}, "engine":
  {...}}`` where ``request`` is the message text, task, settings (with the seed used),
  attachments and a summary of the history, and ``engine`` is `ImageDone.metadata`.
- ``XML:com.adobe.xmp`` (iTXt): an XMP packet with the IPTC ``DigitalSourceType``
  ``trainedAlgorithmicMedia`` (AI-generated media) and the prompt as ``dc:description``.

Files are written atomically: a temporary file in the same folder, flushed, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, PngImagePlugin

FORMAT_VERSION = 1
WEGEN_KEY = "wegen"
PARAMETERS_KEY = "parameters"
XMP_KEY = "XML:com.adobe.xmp"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
GENERATOR = "WeGen"


@dataclass(frozen=True)
class PngMetadata:
    """What `read_png_metadata` found; any part may be missing (a PNG from another tool)."""

    parameters: str | None
    wegen: dict[str, Any] | None
    digital_source_type: str | None


def a1111_parameters(record: dict[str, Any], width: int, height: int) -> str:
    """The A1111 ``parameters`` text for a `wegen` record."""
    request = record.get("request", {})
    engine = record.get("engine", {})
    settings = request.get("settings", {})

    used = engine.get("settings", {})  # the engine's settings, defaults resolved

    def pick(key: str, default: Any) -> Any:
        value = used.get(key, settings.get(key))
        return default if value is None else value

    prompt = request.get("rewrite") or engine.get("psr_rewrite") or request.get("text", "")
    fields = {
        "Steps": pick("steps", ""),
        "Sampler": GENERATOR,
        "CFG scale": pick("guidance", ""),
        "Seed": pick("seed", ""),
        "Size": f"{width}x{height}",
        "Model": engine.get("model", request.get("model", "")),
        "Embedding CFG": pick("embedding_cfg", 1.0),
        "Denoising strength": pick("denoise_strength", 1.0),
        "PSR": "on" if settings.get("psr") else "off",
        "Task": request.get("task", "auto"),
        "Version": f"{GENERATOR} {record.get('app_version', '')}".strip(),
    }
    line = ", ".join(f"{key}: {_clean(value)}" for key, value in fields.items() if value != "")
    return f"{prompt.strip()}\n{line}"


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
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(record, width, height))
    info.add_itxt(WEGEN_KEY, json.dumps({"format": FORMAT_VERSION, **record}), zip=True)
    prompt = record.get("request", {}).get("text", "")
    info.add_itxt(XMP_KEY, xmp_packet(prompt))
    return info


def save_png_atomic(
    image: Image.Image, path: Path | str, record: dict[str, Any] | None = None
) -> Path:
    """Write ``image`` to ``path`` as PNG (with the metadata when ``record`` is given)."""
    info = png_info(record, *image.size) if record is not None else None
    return _write_atomic(path, lambda handle: image.save(handle, format="PNG", pnginfo=info))


def copy_file_atomic(source: Path | str, path: Path | str) -> Path:
    """Copy a file's bytes to ``path`` atomically (for attachments kept as the user gave them)."""

    def copy(handle: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, handle, 1 << 20)

    return _write_atomic(path, copy)


def _write_atomic(path: Path | str, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a temporary file in the same folder, synced, then renamed over ``path``:
    a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
            wegen = loaded
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
        request = meta.wegen.get("request", {})
        engine = meta.wegen.get("engine", {})
        settings = {**request.get("settings", {}), **engine.get("settings", {})}
        return Recipe(request.get("text", ""), request.get("task", "auto"), settings)
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
