#!/usr/bin/env bash
# The GPU check (`device: cuda`), one prepared script, run on a machine with an NVIDIA GPU:
#
#   bash scripts/gpu_check.sh wheels            # HERE, with the package registries: robustgate's wheel and the
#                                               # packages the GPU image lacks, into .whl/ (git-ignored)
#   bash scripts/gpu_check.sh [STEP ...]        # THERE: every step, or the ones named, logged to $OUT (or gpu-check/)
#
# Steps, in order (each logs to OUT/STEP.log and goes on after a failure; the exit status says whether any failed):
#   env         nvidia-smi, torch's CUDA build and device, robustgate's import
#   tests       the tests marked `cuda` (tests/test_cuda.py: placement, training, distillation, attacks with
#               int8 scored on the CPU, corruptions on GPU tensors, a `device: cuda` spec end to end)
#   throughput  benchmarks/bench_gpu.py: GPU/CPU ratios of a training epoch, PGD-10, a 15x5 corruption contract
#               and a cold quickstart (device: cuda), and ResNet-50's peak GPU memory at 224 px
#   corruptions benchmarks/bench_corruptions.py --device cuda: every corruption's images/s on the GPU
#   smoke       the paper spec's `smoke` profile on a synthetic Office-31-shaped tree, moved to device: cuda
#
# The lent H200 machine (DEVELOPERS.md) has python3 with torch 2.11 (CUDA 13) and no package registry: the
# `wheels` step here fetches what it lacks for CPython 3.12, and the run installs them with --no-deps beside
# that torch (robustgate asks for torch >= 2.14; whether 2.11 is enough is part of what the check finds out).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = wheels ]; then
  set -e
  rm -rf .whl && mkdir -p .whl
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  .venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w .whl .
  # what robustgate imports that the GPU image (KINDS.md's package list) does not hold, at constraints.txt's pins
  lacking="pydantic pydantic_core annotated-types typing-inspection torch-pruning torchao torchattacks"
  pins=()
  for name in $lacking; do
    pins+=("$(grep -i -E "^${name//[-_]/[-_]}==" constraints.txt)")
  done
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${pins[@]}"
  ls -l .whl && du -sh .whl
  exit 0
fi

out=${OUT:-gpu-check}
mkdir -p "$out"
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
if [ -d .whl ] && ! $python -c "import robustgate" 2>/dev/null; then
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing .whl/ failed"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1

steps=("$@")
[ ${#steps[@]} = 0 ] && steps=(env tests throughput corruptions smoke)
failed=()
for step in "${steps[@]}"; do
  log="$out/$step.log"
  echo "== $step ($(date +%T))"
  case $step in
    env)
      { nvidia-smi; $python -c "import torch, robustgate; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, 'robustgate', robustgate.__file__)
assert torch.cuda.is_available(), 'torch sees no CUDA device: the other steps would test nothing'"; } > "$log" 2>&1 ;;
    tests)
      $python -m pytest tests -m cuda -p no:cacheprovider -q -rs > "$log" 2>&1 ;;
    throughput)
      $python benchmarks/bench_gpu.py --device cuda > "$log" 2>&1 ;;
    corruptions)
      $python benchmarks/bench_corruptions.py --device cuda > "$log" 2>&1 ;;
    smoke)
      $python benchmarks/bench_office31_cpu_profile.py --profile smoke --device cuda > "$log" 2>&1 ;;
    *)
      echo "unknown step '$step' (env, tests, throughput, corruptions, smoke)" > "$log"; false ;;
  esac
  status=$?
  tail -n 25 "$log"
  if [ $status != 0 ]; then failed+=("$step"); echo "-- $step failed (exit $status)"; fi
done
[ ${#failed[@]} = 0 ] && echo "gpu check: every step passed" && exit 0
echo "gpu check: failed steps: ${failed[*]}"
exit 1
