#!/usr/bin/env bash
# The one prepared call for a lent GPU (issue 22): checks CUDA and the packages, prints the
# placement plan, runs benchmarks/gpu_turn.py (wegen-7b, random weights) under a timeout, and
# leaves gpu_turn.json, gpu_turn.log and placement.txt in $OUT (the device tool brings $OUT back;
# without it, in the repository root). Extra arguments go to gpu_turn.py, e.g. --steps 20.
#
#   bash benchmarks/gpu_turn.sh                       # ≤ 8 minutes on one H200
#   TIMEOUT=300 bash benchmarks/gpu_turn.sh --modes normal,low --runs 1
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python

nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || true
"$py" - <<'PY'
import importlib, sys
missing = [m for m in ("torch", "transformers", "diffusers", "timm", "accelerate", "tokenizers")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (pip install -e . first)")
import torch
if not torch.cuda.is_available():
    sys.exit(f"PyTorch {torch.__version__} sees no CUDA device (torch.version.cuda={torch.version.cuda})")
free, total = torch.cuda.mem_get_info()
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}: "
      f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free; "
      f"torchao {'yes' if importlib.util.find_spec('torchao') else 'no'}")
PY
free_gib=$("$py" -c "import torch; print(torch.cuda.mem_get_info()[0] / 2**30)")
"$py" -m engine.placement --preset wegen-7b --precision fp16 --gpu-gib "$free_gib" \
    | tee "$out/placement.txt"
timeout --signal=INT --kill-after=20 "${TIMEOUT:-480}" \
    "$py" benchmarks/gpu_turn.py --out "$out/gpu_turn.json" "$@" 2>&1 | tee "$out/gpu_turn.log"
