#!/usr/bin/env bash
# Local start without Docker: creates .venv when missing, installs the service, then runs
# the gRPC server (GRPC_PORT, default 50051) and the REST shim (PORT, default 8005) in
# one process. Ctrl-C or SIGTERM drains both and exits.
#
# VENV picks another virtualenv (default .venv), PYTHON the interpreter that creates it
# (default python3, 3.11 or newer). The install runs when the venv is new, when
# pyproject.toml changed since the last install, or with FORCE_INSTALL=1; otherwise the
# service starts at once, without asking the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"

stamp="$venv/.llm-service-installed"
want="$(pwd) $("$venv/bin/python" -c \
  'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
if [ "${FORCE_INSTALL:-0}" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
  || ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("llm-service")' 2>/dev/null
then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e .
  printf '%s\n' "$want" >"$stamp"
fi

# exec: python replaces this shell, so Ctrl-C and SIGTERM reach it directly
exec "$venv/bin/python" -m server --with-rest
