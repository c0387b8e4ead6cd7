#!/usr/bin/env bash
# Set up (idempotent) and run the default test suite: offline, sockets disabled except loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 ANONYMIZED_TELEMETRY=False \
  HF_HUB_DISABLE_TELEMETRY=1 ORT_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q -m "not benchmark" "$@"
