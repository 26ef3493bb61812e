#!/usr/bin/env bash
# Sets up everything (a virtualenv in .venv, or VENV; Debian's chromium when missing) and
# runs every check:
# generated/ matches protos/, buf lint, buf breaking (scripts/buf_breaking.sh), ruff,
# mypy --strict, PostgreSQL (installed when missing), the real model (llama-server built
# once and cached, see tests/realmodel.py), then the tests.
#
# The virtualenv gets exactly what uv.lock pins for the service and its dev extra (uv
# itself is pinned there too and installed first, hash-checked, by scripts/uv_bootstrap.py);
# a uv.lock that no longer matches pyproject.toml stops here: run `uv lock` and commit it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
venv=$(cd "$venv" && pwd)
"$venv/bin/python" scripts/uv_bootstrap.py
# the system's certificate store, as pip uses (a proxy's own CA included)
UV_PROJECT_ENVIRONMENT="$venv" UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1} \
  "$venv/bin/uv" sync --quiet --locked --extra dev
export PATH="$venv/bin:$PATH"

# The ledger's tests start a real PostgreSQL server (tests/postgres.py): Debian's package.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  echo "== installing PostgreSQL (Debian's postgresql package)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
fi

# The console's browser tests (tests/test_console.py) drive Debian's chromium through
# Playwright (which never downloads a browser of its own here); CHROMIUM names another.
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  echo "== chromium (Debian's package)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

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
echo "== buf breaking"
scripts/buf_breaking.sh
echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy .
echo "== real model: llama-server and SmolLM2 (first build takes minutes, then cached)"
PYTHON="$venv/bin/python" scripts/llama_server.sh
echo "== pytest"
pytest "$@"
