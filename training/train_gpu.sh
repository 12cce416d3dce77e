#!/usr/bin/env bash
# Train wegen-tiny on one GPU within a time budget, check the de-tokenizer, export the model.
#
#   bash training/train_gpu.sh RUN_DIR MODEL_DIR [MINUTES]
#
# 1. the smoke plan end to end (seconds): a broken environment fails here, not after the budget;
# 2. the `gpu` plan fitted to MINUTES of training on this machine (the fitted plan is written to
#    RUN_DIR/plan.json; `python -m training.reproduce --plan RUN_DIR/plan.json` repeats it);
# 3. the stage-0 check (training/checks/vision.py: what the tower's features carry), the stage-1
#    check (training/checks/decoder.py) and the export to MODEL_DIR (float16).
set -euo pipefail
run=${1:?run folder}
model=${2:?model folder to write}
minutes=${3:-6}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
smoke=$(mktemp -d)
python3 -m training.reproduce --plan smoke --out "$smoke/run" --export "$smoke/model"
python3 -m training.checks.decoder --model "$smoke/model" --n 2
rm -rf "$smoke"
python3 -m training.reproduce --plan gpu --minutes "$minutes" --out "$run" --export "$model"
python3 -m training.checks.vision --model "$model" | tee "$run/check_vision.json"
python3 -m training.checks.decoder --model "$model" --n 64 | tee "$run/check_decoder.json"
