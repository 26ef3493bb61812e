#!/usr/bin/env bash
# Local start without Docker: creates .venv when missing, installs the service, then runs
# the gRPC server (GRPC_PORT, default 50051) and the REST shim (PORT, default 8005) in
# one process. Ctrl-C or SIGTERM drains both and exits.
#
#   scripts/start_vllm.sh           the service, in front of OLLAMA_BASE_URL (or LLM_UPSTREAMS)
#   scripts/start_vllm.sh --demo    the service in front of a real model on this machine:
#                                   llama.cpp's llama-server with SmolLM2-135M ("smollm2"),
#                                   built once from source and cached (about 17 minutes on two
#                                   busy cores, needs cmake and a C++ compiler), see
#                                   scripts/demo.py; Ctrl-C or SIGTERM stops both
#
# The install takes the versions of uv.lock (with uv, itself pinned and hash-checked by
# scripts/uv_bootstrap.py): the service, its dependencies and the "tools" extra the
# README's quick start uses (grpcurl); the emulator comes with the service's sources.
#
# VENV picks another virtualenv (default .venv), PYTHON the interpreter that creates it
# (default python3, 3.11 or newer). The install runs when the venv is new, when
# pyproject.toml or uv.lock changed since the last install, or with FORCE_INSTALL=1;
# otherwise the service starts at once, without asking the package index. It adds what
# is missing and removes nothing, so a venv set up by scripts/test.sh stays as it is.
set -euo pipefail
demo=0
case "${1:-}" in
  "") ;;
  --demo) demo=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"

stamp="$venv/.llm-service-installed"
want="$(pwd) $("$venv/bin/python" -c 'import hashlib
print(hashlib.sha256(open("pyproject.toml", "rb").read() + open("uv.lock", "rb").read()).hexdigest())')"
if [ "${FORCE_INSTALL:-0}" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
  || ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("llm-service")' 2>/dev/null
then
  "$venv/bin/python" scripts/uv_bootstrap.py
  # the system's certificate store, as pip uses (a proxy's own CA included)
  UV_PROJECT_ENVIRONMENT="$venv" UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1} \
    "$venv/bin/uv" sync --quiet --locked --inexact --extra tools
  printf '%s\n' "$want" >"$stamp"
fi

# exec: python replaces this shell, so Ctrl-C and SIGTERM reach it directly
if [ "$demo" = 1 ]; then
  exec "$venv/bin/python" -m scripts.demo
fi
exec "$venv/bin/python" -m server --with-rest
