#!/usr/bin/env bash
# Install whatever is missing for this project into the current Python, then build the
# bev_pool_v2 extension in place. Safe to re-run: satisfied requirements are skipped and an
# already installed torch (e.g. a CUDA build) is left untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo '[install] torch not found: installing the CPU default (requirements/torch.txt)'
    pip_install -r requirements/torch.txt
fi
echo '[install] checking Python requirements'
pip_install -r requirements/build.txt -r requirements/runtime.txt -r requirements/tests.txt
EXT_DIR=mmdet3d/ops/bev_pool_v2
# (Re)install when the extension is missing or stale, or when the installed package is another
# checkout (tools run as scripts import the installed `mmdet3d`, not the current directory's).
INSTALLED=$(cd / && "$PY" -c 'import mmdet3d, os; print(os.path.dirname(os.path.dirname(os.path.realpath(mmdet3d.__file__))))' 2>/dev/null || true)
if [ "$INSTALLED" != "$(pwd -P)" ] \
        || ! "$PY" -c 'import mmdet3d.ops.bev_pool_v2.bev_pool_v2_ext' >/dev/null 2>&1 \
        || [ ! -e "$EXT_DIR/.built" ] \
        || [ -n "$(find "$EXT_DIR/src" setup.py -newer "$EXT_DIR/.built")" ]; then
    echo '[install] building the package and its bev_pool_v2 extension (pip install -e .)'
    pip_install --no-build-isolation --no-deps -e .
    touch "$EXT_DIR/.built"
fi
echo "[install] ready: $("$PY" -c 'import torch, mmdet3d; print("torch", torch.__version__, "| mmdet3d", mmdet3d.__version__)')"
