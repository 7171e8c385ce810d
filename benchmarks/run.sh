#!/usr/bin/env bash
# Run the benchmark suite from the repo root: benchmarks/run.sh [--smoke] [--only NAMES] [...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m benchmarks "$@"
