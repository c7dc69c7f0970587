#!/usr/bin/env bash
# Sets everything up, then runs robustgate's own test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest tests "$@"
