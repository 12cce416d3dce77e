#!/usr/bin/env bash
# Continue a trained model's LLM on one GPU with the diffusion loss; keep its tower and decoder.
#
#   bash training/continue_llm_gpu.sh RUN_DIR MODEL_DIR [MINUTES] [BASE_MODEL]
#
# On 2 CPU cores a stage-2 run of 20 minutes with the diffusion loss through the frozen UNet
# (llm4d in training/NOTES.md) gave +0.3 dB restoration and moved nothing else; the next step is
# a run many times longer, which only a GPU affords:
# 1. a run folder warm-started from BASE_MODEL (default: the bundled wegen-tiny) with the tower,
#    VAE and UNet marked trained;
# 2. the `gpu_llm` plan (continue_llm at batch 64, diffusion_weight 10) fitted to MINUTES
#    (default 5) on this machine, stages 2 and 3 (RUN_DIR/plan.json repeats it);
# 3. the export to MODEL_DIR (float16); the written features against the tower's
#    (`training.checks.generation`) and `wegen-eval --n 48 --seed 1` on the GPU for both models,
#    into RUN_DIR, and the paired comparison (`compare_reports`) printed and saved as compare.md.
# Bundle only what compare.md shows better and no met target lost (training/NOTES.md).
# Knobs: WEGEN_PLAN (default gpu_llm), WEGEN_EVAL_N (48), WEGEN_ALLOW_CPU=1 (a dry run here).
set -euo pipefail
run=${1:?run folder}
model=${2:?model folder to write}
minutes=${3:-5}
base=${4:-wegen_resources/models/wegen-tiny}
n=${WEGEN_EVAL_N:-48}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
device=cuda
if [ "${WEGEN_ALLOW_CPU:-}" = 1 ]; then
    device=cpu
else
    python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
fi
python3 -m training.warm_start --out "$run" --base "$base" --done vision,vae,unet
python3 -m training.reproduce --plan "${WEGEN_PLAN:-gpu_llm}" --minutes "$minutes" \
    --out "$run" --export "$model" --stages mllm,sft
for which in base new; do
    folder=$model
    [ "$which" = base ] && folder=$base
    python3 -m training.checks.generation --model "$folder" --n "$n" --device "$device" \
        > "$run/check_generation_$which.json"
    wegen-eval --model "$folder" --device "$device" --n "$n" --seed 1 \
        --out "$run/eval_$which.json" > "$run/eval_$which.log" 2>&1
done
python3 -m training.checks.compare_reports "$run/eval_base.json" "$run/eval_new.json" \
    | tee "$run/compare.md"
