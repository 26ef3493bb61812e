#!/usr/bin/env bash
# Sets up everything from scratch (a virtualenv in .venv) and runs every check:
# generated/ matches protos/, buf lint, ruff, mypy --strict, the real model (llama-server
# built once and cached, see tests/realmodel.py), then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'
export PATH="$PWD/$venv/bin:$PATH"

echo "== generated/ is up to date with protos/"
before=$(mktemp -d)
cp -r generated "$before/"
PYTHON="$venv/bin/python" scripts/gen_protos.sh
find generated -name __pycache__ -prune -exec rm -rf {} +
find "$before/generated" -name __pycache__ -prune -exec rm -rf {} +
if ! diff -r "$before/generated" generated; then
  echo "generated/ differs from what scripts/gen_protos.sh builds: regenerate and commit it" >&2
  exit 1
fi
rm -rf "$before"

echo "== buf lint"
buf lint
echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy .
echo "== real model: llama-server and SmolLM2 (first build takes minutes, then cached)"
PYTHON="$venv/bin/python" scripts/llama_server.sh
echo "== pytest"
pytest "$@"
