#!/usr/bin/env bash
# Set up (idempotent), then the main job on the embedded defaults: ingest the documents that ship
# with the project (docs/) into an embedded Chroma index with the offline MiniLM encoder, and
# run a real search. No server to start; nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
INDEX=${INDEX:-.rag_index/demo}
QUERY=${1:-"how does fusion combine the scores of several embedders?"}
.venv/bin/rag ingest docs --index "$INDEX" --encoder minilm --encoder bm25
.venv/bin/rag info --index "$INDEX"
echo
echo "\$ rag search \"$QUERY\" --index $INDEX -k 3"
.venv/bin/rag search "$QUERY" --index "$INDEX" -k 3
