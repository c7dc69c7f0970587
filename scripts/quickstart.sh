#!/usr/bin/env bash
# Sets everything up, then gates the quickstart spec on the built-in digits (no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest robustness_specs/quickstart.yaml "$@"
