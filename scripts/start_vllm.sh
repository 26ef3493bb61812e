#!/usr/bin/env bash
# Local start without Docker: creates .venv when missing, installs the service, then runs
# the gRPC server (GRPC_PORT, default 50051) and the REST shim (PORT, default 8005) in
# one process. Ctrl-C or SIGTERM drains both and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e .
exec "$venv/bin/python" -m server --with-rest
