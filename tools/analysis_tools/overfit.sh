#!/usr/bin/env bash
# The over-fit check of docs/training_diagnostics.md: can the tiny CPU model fit the 4 first
# samples of one train scene (train = val, augmentation off, constant learning rate, batch 1)?
#
#   [PRESET=ci|quickstart] bash tools/analysis_tools/overfit.sh [WORK_DIR] [--cfg-options k=v ...]
#
# PRESET=ci (default): the sizes of the CI learning test (64x192 input, 40x40x16 model grid of
# 2 m cells, sigma = 2 x the sigmoid density) on its small world in data/overfit (6 scenes x 4
# samples, 400x225 images). PRESET=quickstart: the quickstart's config unchanged (128x352 input,
# 100x100x16 grid of 0.8 m cells, 2 m depth bins) on the quickstart's world in data/demo, where
# a car spans a few cells. The world is generated when absent and reused when present. Trains
# ITERS iterations (default 400) with one deterministic thread, then prints tools/test.py's mIoU
# of the EMA checkpoint, the prior fitted on the same 4 samples, and the diagnostics of
# tools/analysis_tools/diagnose_training.py (also written to WORK_DIR/diagnostics.json). Extra
# --cfg-options go to training, test and diagnosis; CONFIG, ITERS and WORLD (environment) choose
# another config, length or world folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-work_dirs/overfit}
shift || true
EXTRA=()
if [ "${1:-}" = "--cfg-options" ]; then shift; EXTRA=("$@"); fi
PY=${PYTHON:-python3}
ITERS=${ITERS:-400}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 ATEN_CPU_CAPABILITY=avx2 \
    ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2
PRESET=${PRESET:-ci}
CONFIG=${CONFIG:-configs/occflownet/occflownet_tiny_2d_flow_cpu.py}
case "$PRESET" in
    ci) WORLD=${WORLD:-data/overfit}
        WORLD_ARGS=(--scenes 6 --samples-per-scene 4 --sweeps-per-sample 1 --image-size 400x225)
        SIZES=("model.img_view_transformer.input_size=(64,192)"
               "train_dataloader.dataset.pipeline.0.data_config.input_size=(64,192)"
               "val_dataloader.dataset.pipeline.0.data_config.input_size=(64,192)"
               "test_dataloader.dataset.pipeline.0.data_config.input_size=(64,192)"
               "geometry.model_grid_shape=[40,40,16]" "model.renderer.density_scale=2.0") ;;
    quickstart) WORLD=${WORLD:-data/demo}
        WORLD_ARGS=()
        SIZES=() ;;
    *) echo "overfit.sh: unknown PRESET=$PRESET (expected ci or quickstart)" >&2; exit 2 ;;
esac
if [ ! -f "$WORLD/bevdetv2-nuscenes-mini_infos_train.pkl" ]; then
    if [ ! -e "$WORLD/.ready" ]; then
        "$PY" tools/create_demo_data.py --out "$WORLD" "${WORLD_ARGS[@]}" --no-progress
    fi
    "$PY" tools/create_data_bevdet.py --root-path "$WORLD" --version v1.0-mini --out-dir "$WORLD"
fi
"$PY" tools/create_flow_data.py --info-dir "$WORLD" --version v1.0-mini \
    --out-dir "$WORLD/flow" --workers 0
ANN="$WORLD/overfit_scene_infos.pkl"
"$PY" tools/misc/subset_infos.py "$WORLD/bevdetv2-nuscenes-mini_infos_train.pkl" "$ANN" \
    --first-scene --max-samples 4
EPOCHS=$(( ITERS / 4 ))
# The config without augmentation: every training step that has ``is_train`` gets False (by
# type, not by pipeline position, so that configs with other steps work too).
mkdir -p "$WORK"
RUN_CONFIG="$WORK/overfit_config.py"
cat > "$RUN_CONFIG.tmp" <<PYEOF
_base_ = ['$(realpath "$CONFIG")']
train_dataloader = dict(dataset=dict(pipeline=[
    dict(step, is_train=False) if 'is_train' in step else step
    for step in _base_.train_dataloader.dataset.pipeline]))
PYEOF
mv "$RUN_CONFIG.tmp" "$RUN_CONFIG"
OPTIONS=(
    "train_dataloader.dataset.ann_file=$ANN" "val_dataloader.dataset.ann_file=$ANN"
    "test_dataloader.dataset.ann_file=$ANN" "train_dataloader.dataset.flow_root=$WORLD/flow"
    "val_dataloader.dataset.flow_root=$WORLD/flow" "test_dataloader.dataset.flow_root=$WORLD/flow"
    "${SIZES[@]}"
    "train_dataloader.batch_size=1" "train_dataloader.num_workers=0"
    "val_dataloader.num_workers=0" "test_dataloader.num_workers=0"
    "train_cfg.max_epochs=$EPOCHS" "train_cfg.val_interval=$EPOCHS"
    "param_scheduler.1.T_max=$EPOCHS" "param_scheduler.1.end=$EPOCHS"
    "param_scheduler.1.eta_min=2e-3" "default_hooks.checkpoint.interval=$EPOCHS"
)
"$PY" tools/train.py "$RUN_CONFIG" --work-dir "$WORK" --seed 0 --deterministic \
    --cfg-options "${OPTIONS[@]}" "${EXTRA[@]}"
"$PY" tools/test.py "$RUN_CONFIG" "$WORK/epoch_${EPOCHS}_ema.pth" --eval mIoU --work-dir "$WORK" \
    --cfg-options "${OPTIONS[@]}" "${EXTRA[@]}" | grep -E '===>|top_mIoU'
"$PY" tools/eval_prior.py --train-ann "$ANN" --val-ann "$ANN" | tail -1
"$PY" tools/analysis_tools/diagnose_training.py "$RUN_CONFIG" "$WORK/epoch_${EPOCHS}_ema.pth" \
    --split val --json "$WORK/diagnostics.json" --no-progress \
    --cfg-options "${OPTIONS[@]}" "${EXTRA[@]}"
