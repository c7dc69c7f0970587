#!/usr/bin/env bash
# Creates (or refreshes) .venv with robustgate and its pinned dependencies.
# Re-running is cheap: pip runs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "robustgate: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.robustgate-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "robustgate: installing pinned dependencies into .venv (first time: a few minutes)"
  # -qq: the machine's pip config names index folders that may be absent, and pip warns about each one.
  .venv/bin/python -m pip install -qq --upgrade pip
  .venv/bin/python -m pip install -qq -c constraints.txt -e ".[test,onnx,timm]"
  # The executorch extra without executorch's own dependency list: it names coremltools, pandas, hydra and
  # tokenizers (other backends, LLM tooling), and py-cpuinfo, which ships the same `cpuinfo` package as
  # pytest-benchmark's py-cpuinfo2 and would overwrite it. The runtime and the XNNPACK lowering import only
  # torch, torchao, numpy, sympy, flatbuffers, PyYAML (all installed above), ruamel.yaml and tabulate.
  .venv/bin/python -m pip install -qq -c constraints.txt --no-deps executorch ruamel.yaml tabulate
  echo "$want" > "$stamp"
fi
