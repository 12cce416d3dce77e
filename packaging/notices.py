"""Gather the licence notices of everything a bundle ships (run by build.py in the bundle's env).

    python packaging/notices.py OUT_DIR MODEL_DIR

Writes OUT_DIR/THIRD-PARTY.md (each distribution: version, licence, where its texts are), each
distribution's own licence files under OUT_DIR/<name>/, and the bundled model's card.
"""

from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

#: licences the metadata of these distributions does not state in a usable form
KNOWN = {
    "PySide6_Essentials": "LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only (Qt for Python)",
    "shiboken6": "LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only (Qt for Python)",
    "torch": "BSD-3-Clause",
}
LGPL_NOTE = (
    "Qt and Qt for Python (PySide6) are used under the GNU LGPL v3. They are shipped as the "
    "unmodified shared libraries of the PySide6-Essentials wheel, in _internal/PySide6; you may "
    "replace them with your own build of the same version. Their source: https://download.qt.io/"
    " and https://code.qt.io/."
)


def licence_of(dist: metadata.Distribution) -> str:
    name = dist.metadata["Name"]
    for key in (name, name.replace("-", "_")):
        if key in KNOWN:
            return KNOWN[key]
    expression = dist.metadata.get("License-Expression")
    if expression:
        return expression
    classifiers = [
        c.split("::")[-1].strip()
        for c in dist.metadata.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    text = (dist.metadata.get("License") or "").strip()
    if classifiers:
        return "; ".join(classifiers)
    return text.splitlines()[0][:80] if text else "see its licence files"


def main() -> int:
    out, model = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        if name.lower() in {"pip", "pyinstaller", "pyinstaller-hooks-contrib", "altgraph"}:
            continue  # build tools: not in the bundle (PyInstaller's bootloader is GPL with
            # an exception that allows any licence for the bundled program)
        files = [
            f
            for f in dist.files or []
            if any(word in f.name.upper() for word in ("LICENSE", "LICENCE", "COPYING", "NOTICE"))
        ]
        kept = []
        for f in files:
            source = Path(dist.locate_file(f))
            if source.is_file():
                target = out / name / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
                kept.append(f"{name}/{f.name}")
        rows.append(f"| {name} | {dist.version} | {licence_of(dist)} | {', '.join(kept) or '—'} |")
    shutil.copy(model / "README.md", out / "wegen-tiny-MODEL-CARD.md")
    (out / "THIRD-PARTY.md").write_text(
        "# What this bundle ships, and under which licences\n\n"
        "WeGen desktop itself is under the Apache License 2.0. The bundled model, wegen-tiny, "
        "was trained by the WeGen project and ships under the same licence "
        "(wegen-tiny-MODEL-CARD.md).\n\n"
        f"{LGPL_NOTE}\n\n"
        "| distribution | version | licence | texts |\n| --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + "\n"
    )
    print(f"notices of {len(rows)} distributions -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
