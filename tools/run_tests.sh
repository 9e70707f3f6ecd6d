#!/usr/bin/env bash
# The README's test command: install what is missing, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
PY=${PYTHON:-python3}
exec "$PY" -m pytest tests -n "${PYTEST_WORKERS:-2}" --durations=15 "$@"
