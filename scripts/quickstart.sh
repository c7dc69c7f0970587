#!/usr/bin/env bash
# Sets everything up, then gates the quickstart spec on the built-in digits (no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The venv also holds the test suite's Hypothesis, whose pytest plugin imports it at every session's end (1.5 s of a
# warm run); the quickstart has no Hypothesis tests.
exec .venv/bin/pytest -p no:hypothesispytest robustness_specs/quickstart.yaml "$@"
