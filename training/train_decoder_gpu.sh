#!/usr/bin/env bash
# Retrain the de-tokenizer (VAE, then UNet) of a trained model on one GPU; keep its LLM and tower.
#
#   bash training/train_decoder_gpu.sh RUN_DIR MODEL_DIR [MINUTES] [BASE_MODEL]
#
# The bundled VAE caps every image metric (`python -m training.checks.decoder --ceilings`):
# 1. a run folder warm-started from BASE_MODEL (default: the bundled wegen-tiny) with the vision
#    tower, LLM and projectors marked trained;
# 2. the `gpu_decoder` plan fitted to MINUTES (default 7) on this machine: the VAE continued on
#    whole images, then the UNet on its latents (RUN_DIR/plan.json repeats it);
# 3. the export to MODEL_DIR (float16) and the stage-1 check with the VAE and drawn ceilings, for both
#    models, into RUN_DIR: check_decoder.json (new) and check_decoder_base.json.
# Compare text-to-image and editing with `wegen-eval ... --n 48 --seed 1` on both folders and
# `python -m training.checks.compare_reports` before bundling anything.
#
# WEGEN_PRESET picks the architecture (default wegen-tiny; a preset of engine.config or
# training.presets, or a config.json). A preset with another VAE, such as wegen-tiny-vae4x,
# starts afresh the VAE tensors whose shape changed and keeps every other tensor; the UNet then
# learns the new VAE's latents.
# WEGEN_VAE=RUN takes a finished `python -m training.fit_vae` run instead (gate 1: its
# architecture, its autoencoder and its latent scale), and retrains the UNet alone on its latents.
# WEGEN_FIT_VAE=CANDIDATE (a name in training.fit_vae.CANDIDATES) or =FOLDER (a fit_vae run to
# continue, e.g. one committed under training/weights/) first trains that autoencoder here for
# WEGEN_VAE_MINUTES (default 4) with its ceilings into RUN_DIR-vae, then goes on as WEGEN_VAE:
# gates 1 and 2 of a de-tokenizer that is not the ceiling, in one call.
# WEGEN_UNET=FOLDER (with WEGEN_VAE or WEGEN_FIT_VAE) starts the UNet from a committed one
# trained on that VAE's latents, e.g. training/weights/unet-4x16-w64, instead of the bundled one.
# Other knobs: WEGEN_PLAN (default gpu_decoder), WEGEN_CHECK_N (48), WEGEN_ALLOW_CPU=1.
set -euo pipefail
run=${1:?run folder}
model=${2:?model folder to write}
minutes=${3:-7}
base=${4:-wegen_resources/models/wegen-tiny}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ "${WEGEN_ALLOW_CPU:-}" != 1 ]; then
    python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
fi
device=cuda
[ "${WEGEN_ALLOW_CPU:-}" = 1 ] && device=cpu
if [ -n "${WEGEN_FIT_VAE:-}" ]; then
    if [ -d "$WEGEN_FIT_VAE" ]; then
        mkdir -p "$run-vae" && cp -r "$WEGEN_FIT_VAE"/. "$run-vae"/
        from=(--resume)
    else
        from=(--candidate "$WEGEN_FIT_VAE")
    fi
    python3 -m training.fit_vae --out "$run-vae" "${from[@]}" --device "$device" \
        --minutes "${WEGEN_VAE_MINUTES:-4}" --every 1 --batch 32 --lr 5e-4 \
        --ceilings-n "${WEGEN_CHECK_N:-48}"
    WEGEN_VAE="$run-vae"
fi
if [ -n "${WEGEN_VAE:-}" ]; then
    unet=()
    [ -n "${WEGEN_UNET:-}" ] && unet=(--take "decoder.unet.=$WEGEN_UNET")
    python3 -m training.warm_start --out "$run" --base "$base" --preset "$WEGEN_VAE" \
        --take "decoder.vae.=$WEGEN_VAE" "${unet[@]}" --done vision,vae,mllm,sft
    stages=unet
else
    python3 -m training.warm_start --out "$run" --base "$base" --done vision,mllm,sft \
        --preset "${WEGEN_PRESET:-wegen-tiny}"
    stages=vae,unet
fi
python3 -m training.reproduce --plan "${WEGEN_PLAN:-gpu_decoder}" --minutes "$minutes" \
    --out "$run" --export "$model" --stages "$stages"
python3 -m training.checks.decoder --model "$model" --n "${WEGEN_CHECK_N:-48}" --ceilings --drawn | tee "$run/check_decoder.json"
python3 -m training.checks.decoder --model "$base" --n "${WEGEN_CHECK_N:-48}" --ceilings --drawn > "$run/check_decoder_base.json"
