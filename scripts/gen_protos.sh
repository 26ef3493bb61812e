#!/usr/bin/env bash
# Rebuilds generated/ from protos/. The only way generated/ changes; never edit it by hand.
# Run with the project's virtualenv active (or PYTHON pointing at its interpreter).
#
# The contract registers under its own path, llm/v1/llm_service.proto (what reflection
# shows and what a client that compiles the proto itself also registers), and the Python
# modules live in the package generated.llm.v1: protoc's gRPC stubs import the messages
# as the top-level llm.v1, so that one import line is pointed at generated.llm.v1.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
rm -rf generated
mkdir -p generated/llm/v1
"$python" -m grpc_tools.protoc -Iprotos \
  --python_out=generated --pyi_out=generated --grpc_python_out=generated \
  llm/v1/llm_service.proto
"$python" - <<'PY'
from pathlib import Path

stubs = Path("generated/llm/v1/llm_service_pb2_grpc.py")
text = stubs.read_text()
fixed = text.replace("from llm.v1 import", "from generated.llm.v1 import")
assert fixed != text, "protoc's import line changed: update scripts/gen_protos.sh"
stubs.write_text(fixed)
PY
touch generated/__init__.py generated/llm/__init__.py generated/llm/v1/__init__.py
