#!/usr/bin/env bash
# The GPU check under the machine's own python3 (the one holding its CUDA torch); arguments go to
# scripts/gpu_check.py, e.g.:
#   bash scripts/gpu_check.sh --wheels wheels/gpu [--out DIR]      # DIR defaults to $OUT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" scripts/gpu_check.py "$@"
