#!/usr/bin/env bash
# Sets everything up, then runs robustgate's own test suite.
#
# Two pytest-xdist workers with one torch thread each keep both cores busy through the suite's many
# single-threaded stretches (imports, collection, pytester runs, Python-side attack loops); with torch's
# default of one thread per core each, two workers would fight over the cores. The tests marked `serial`
# (they time code, count torch threads or start workers of their own) then run alone on the whole machine.
# ROBUSTGATE_TEST_WORKERS=0 runs everything in one serial pytest process instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workers="${ROBUSTGATE_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec .venv/bin/pytest tests "$@"
fi

# pytest's exit status 5 is "no tests collected": fine for one of the two runs (arguments that select only
# serial tests, or none), not for both.
parallel=0
serial=0
# --durations: the slowest tests, in CI's log, for whoever next has to keep the suite inside CI's time
OMP_NUM_THREADS=1 .venv/bin/pytest tests -n "$workers" --dist loadgroup -m "not serial" --durations=25 "$@" || parallel=$?
.venv/bin/pytest tests -m serial "$@" || serial=$?
if [ "$parallel" = 5 ] && [ "$serial" = 5 ]; then exit 5; fi
for status in "$parallel" "$serial"; do
  if [ "$status" != 0 ] && [ "$status" != 5 ]; then exit "$status"; fi
done
