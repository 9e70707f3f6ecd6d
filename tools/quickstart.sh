#!/usr/bin/env bash
# The README's main command: train and evaluate a tiny OccFlowNet on the synthetic demo world
# on a CPU, and compare it with the non-learned prior (per-voxel most frequent train label).
#
#   bash tools/quickstart.sh
#
# Steps (each says what it does; data steps reuse what exists, so re-running is cheap):
#   1. install what is missing (tools/install.sh)          [skip: QUICKSTART_SKIP_INSTALL=1]
#   2. demo world -> data/demo (unless data/demo/.ready exists)
#   3. info pkls and occupancy-flow ground truth (unless present / resumable)
#   4. train configs/occflownet/occflownet_tiny_2d_flow_cpu.py (EMA, checkpoint, validation)
#   5. evaluate epoch_N_ema.pth (Occ3D mIoU, camera mask), predictions -> <work_dir>/pred
#   6. the prior baseline on the same val split
#   7. both mIoUs side by side; pictures (BEV maps of 4 val samples, the first one in the six
#      cameras and as an interactive HTML page) if tools/visualize_occupancy.py exists
#
# Environment: PYTHON (default python3), QUICKSTART_SKIP_INSTALL=1, OMP_NUM_THREADS (default:
# PyTorch's, one thread per physical core; on 2 idle cores 2 threads train 1.4x faster than 1
# while the data loader worker shares them; on a loaded machine set it to the free cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
DATA=data/demo
INFO_PREFIX=$DATA/bevdetv2-nuscenes-mini
CFG=configs/occflownet/occflownet_tiny_2d_flow_cpu.py
NAME=$(basename "$CFG" .py)
WORK_DIR=work_dirs/$NAME
START=$SECONDS

step() { echo; echo "=== [quickstart $(date +%H:%M:%S), $((SECONDS - START)) s] $*"; }
fail() { echo "[quickstart] ERROR: $*" >&2; exit 1; }
trap 'echo "[quickstart] ERROR: step failed (line $LINENO, exit $?); see the output above" >&2' ERR

step '1/7 install (tools/install.sh)'
if [ "${QUICKSTART_SKIP_INSTALL:-0}" = 1 ]; then
    echo 'skipped (QUICKSTART_SKIP_INSTALL=1)'
else
    bash tools/install.sh
fi

step "2/7 demo world -> $DATA"
if [ -e "$DATA/.ready" ]; then
    echo "reusing the existing demo world ($DATA/.ready present; delete $DATA to regenerate)"
else
    "$PY" tools/create_demo_data.py --out "$DATA"
fi

step "3/7 info pkls and occupancy-flow ground truth"
if [ -e "${INFO_PREFIX}_infos_train.pkl" ] && [ -e "${INFO_PREFIX}_infos_val.pkl" ]; then
    echo "reusing ${INFO_PREFIX}_infos_{train,val}.pkl"
else
    "$PY" tools/create_data_bevdet.py --root-path "$DATA" --version v1.0-mini --out-dir "$DATA"
fi
# resumable: existing flow files are skipped
"$PY" tools/create_flow_data.py --info-dir "$DATA" --version v1.0-mini --out-dir "$DATA/flow"

EPOCHS=$("$PY" -c "from mmengine.config import Config as C
print(C.fromfile('$CFG').train_cfg.max_epochs)")
CKPT=$WORK_DIR/epoch_${EPOCHS}_ema.pth
step "4/7 train $CFG ($EPOCHS epochs, logs every 5 iterations) -> $WORK_DIR"
"$PY" tools/train.py "$CFG" --work-dir "$WORK_DIR"
[ -f "$CKPT" ] || fail "training ended without $CKPT"

step "5/7 evaluate $CKPT (Occ3D mIoU with the camera mask, and RayIoU)"
rm -rf "$WORK_DIR/pred"
"$PY" tools/test.py "$CFG" "$CKPT" --eval mIoU RayIoU --out "$WORK_DIR/pred" --work-dir "$WORK_DIR" \
    2>&1 | tee "$WORK_DIR/test_output.log"
MODEL_MIOU=$(grep -o 'top_mIoU: [0-9.na]*' "$WORK_DIR/test_output.log" | tail -1 | cut -d' ' -f2)
[ -n "$MODEL_MIOU" ] || fail "no top_mIoU in the test output ($WORK_DIR/test_output.log)"
MODEL_RAYIOU=$(grep -o 'RayIoU: [0-9.na]*' "$WORK_DIR/test_output.log" | tail -1 | cut -d' ' -f2 || true)

step '6/7 prior baseline (per-voxel most frequent train label, no images)'
"$PY" tools/eval_prior.py --config "$CFG" --ray-iou 2>&1 | tee "$WORK_DIR/prior_output.log"
PRIOR_MIOU=$(grep -o 'prior mIoU: [0-9.na]*' "$WORK_DIR/prior_output.log" | tail -1 | cut -d' ' -f3)
[ -n "$PRIOR_MIOU" ] || fail "no prior mIoU in $WORK_DIR/prior_output.log"
PRIOR_RAYIOU=$(grep -o 'prior RayIoU: [0-9.na]*' "$WORK_DIR/prior_output.log" | tail -1 | cut -d' ' -f3 || true)

step '7/7 results'
if [ -f tools/visualize_occupancy.py ]; then
    "$PY" tools/visualize_occupancy.py --pred-dir "$WORK_DIR/pred" \
        --info "${INFO_PREFIX}_infos_val.pkl" --out "$WORK_DIR/vis" --max-samples 4
    # the first val sample in the six cameras, and as an interactive page (open it in a browser)
    "$PY" tools/visualize_occupancy.py --pred-dir "$WORK_DIR/pred" \
        --info "${INFO_PREFIX}_infos_val.pkl" --out "$WORK_DIR/vis" --max-samples 1 \
        --view cameras html
    echo 'pictures (prediction next to ground truth: bird'"'"'s-eye view, cameras, HTML viewer):'
    find "$WORK_DIR/vis" \( -name '*.png' -o -name '*.html' \) | sort | sed 's/^/  /'
fi
echo
echo "val mIoU (Occ3D, camera mask) | trained OccFlowNet: $MODEL_MIOU | prior: $PRIOR_MIOU"
echo "val RayIoU (SparseOcc)         | trained OccFlowNet: ${MODEL_RAYIOU:-n/a} | prior: ${PRIOR_RAYIOU:-n/a}"
if "$PY" -c "import sys; sys.exit(0 if float('$MODEL_MIOU') > float('$PRIOR_MIOU') else 1)"; then
    echo 'the trained model beats the prior: it learned from the cameras'
else
    echo 'WARNING: the trained model does not beat the prior'
fi
echo "checkpoint: $CKPT | predictions: $WORK_DIR/pred | total $((SECONDS - START)) s"
