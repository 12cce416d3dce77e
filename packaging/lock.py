"""Write a variant's lock file: every package of its run-time stack, pinned.

    python packaging/lock.py cpu      # -> packaging/requirements/cpu.txt
    python packaging/lock.py cuda     # -> packaging/requirements/cuda.txt

pip resolves the project with the variant's torch and ONNX Runtime (a dry run: nothing is
installed) and the result is written as ``name==version`` lines. build.py installs a lock with
``--no-deps``, so an update never pulls a torchvision, a CUDA runtime or a newer torch that the
lock did not name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: variant -> (what pip is asked for beside the project, the project's extra, header lines)
VARIANTS = {
    "cpu": (
        ["torch==2.13.0"],
        "onnx",
        [
            "torch's CPU build is on this machine kind's disk; elsewhere add PyTorch's CPU index:",
            "  PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu python packaging/build.py",
        ],
    ),
    "cuda": (
        ["torch==2.14.1"],
        "gpu",
        ["PyTorch's CUDA 13 build from PyPI, with its NVIDIA libraries; ONNX Runtime's GPU build."],
    ),
}


def resolve(variant: str) -> list[str]:
    extra_requirements, extra, _ = VARIANTS[variant]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
             "--report", str(report), *extra_requirements, f"{ROOT}[{extra}]"],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    pins = {
        item["metadata"]["name"]: item["metadata"]["version"]
        for item in installs
        if item["metadata"]["name"].lower() != "wegen"
    }
    return [
        f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda p: p[0].lower())
    ]


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS), nargs="?", default="cpu")
    ap.add_argument("--out", type=Path, help="default: packaging/requirements/VARIANT.txt")
    variant_args = ap.parse_args()
    variant = variant_args.variant
    out = variant_args.out or HERE / "requirements" / f"{variant}.txt"
    header = [
        f"# The {variant} variant's whole run-time stack, pinned: build.py installs it with",
        "# --no-deps, so nothing is resolved. No torchvision and no timm: the engine needs neither",
        "# (engine/eva.py says why). Remake: python packaging/lock.py " + variant,
        *("# " + line for line in VARIANTS[variant][2]),
    ]
    lines = resolve(variant)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + lines) + "\n")
    print(f"{len(lines)} packages -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
