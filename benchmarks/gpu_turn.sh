#!/usr/bin/env bash
# The one prepared call for a lent GPU (issue 22): checks CUDA and the packages, prints the
# placement plan for the free memory, runs benchmarks/gpu_turn.py (wegen-7b, random weights)
# under a timeout, and leaves placement.txt, gpu_turn.json and gpu_turn.log in $OUT (the device
# tool brings $OUT back; without it, in the repository root). Extra arguments go to gpu_turn.py.
#
#   bash benchmarks/gpu_turn.sh --pack     # HERE, once: zip the venv's diffusers into .whl/
#   bash benchmarks/gpu_turn.sh            # THERE (carry .whl): ≤ 8 minutes on one H200
#   TIMEOUT=300 bash benchmarks/gpu_turn.sh --steps 20 --modes normal,int8   # a shorter rerun
#
# The device machine's image has PyTorch, transformers, timm and accelerate but no diffusers
# (../.library/device/KINDS.md), and nothing can be installed there: --pack zips this venv's
# pure-Python diffusers (about 6 MB), which the run puts on PYTHONPATH when diffusers is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
zip_path=.whl/gpu_turn_diffusers.zip
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python

if [ "${1:-}" = --pack ]; then
    site=$("$py" -c "import diffusers, pathlib; print(pathlib.Path(diffusers.__file__).parents[1])")
    mkdir -p .whl && rm -f "$zip_path"
    (cd "$site" && zip -qr9 "$OLDPWD/$zip_path" diffusers diffusers-*.dist-info -x '*__pycache__*')
    ls -l "$zip_path"
    exit 0
fi

out="${OUT:-.}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if ! "$py" -c "import diffusers" 2>/dev/null && [ -f "$zip_path" ]; then
    export PYTHONPATH="$PWD/$zip_path${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || true
"$py" - <<'PY'
import importlib.util, sys
missing = [m for m in ("torch", "transformers", "diffusers", "timm", "accelerate", "tokenizers")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (diffusers: run "
             "'bash benchmarks/gpu_turn.sh --pack' here and carry .whl)")
import diffusers, torch, transformers
if not torch.cuda.is_available():
    sys.exit(f"PyTorch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda})")
free, total = torch.cuda.mem_get_info()
print(f"torch {torch.__version__}, transformers {transformers.__version__}, diffusers "
      f"{diffusers.__version__}, torchao {'yes' if importlib.util.find_spec('torchao') else 'no'}; "
      f"{torch.cuda.get_device_name(0)}: {free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
PY
free_gib=$("$py" -c "import torch; print(torch.cuda.mem_get_info()[0] / 2**30)")
"$py" -m engine.placement --preset wegen-7b --precision fp16 --gpu-gib "$free_gib" \
    | tee "$out/placement.txt"
timeout --signal=INT --kill-after=20 "${TIMEOUT:-480}" \
    "$py" benchmarks/gpu_turn.py --out "$out/gpu_turn.json" "$@" 2>&1 | tee "$out/gpu_turn.log"
