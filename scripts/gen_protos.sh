#!/usr/bin/env bash
# Rebuilds generated/ from protos/. The only way generated/ changes; never edit it by hand.
# Run with the project's virtualenv active (or PYTHON pointing at its interpreter).
#
# The contract registers under its own path, llm/v1/llm_service.proto (what reflection
# shows and what a client that compiles the proto itself also registers), and the Python
# modules live in the package generated.llm.v1: protoc's gRPC stubs (and mypy-protobuf's
# typed stubs of them) import the messages as the top-level llm.v1, so those import lines
# are pointed at generated.llm.v1.
#
# The .pyi files come from mypy-protobuf (dev extra): typed messages, and typed gRPC
# stubs for both grpc and grpc.aio channels (LlmServiceStub, LlmServiceAsyncStub).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
# mypy-protobuf's plugins sit beside the interpreter that has it installed
bin=$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))')
rm -rf generated
mkdir -p generated/llm/v1
"$python" -m grpc_tools.protoc -Iprotos \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
  --python_out=generated --grpc_python_out=generated \
  --mypy_out=quiet:generated --mypy_grpc_out=quiet:generated \
  llm/v1/llm_service.proto
"$python" - <<'PY'
from pathlib import Path

for name in ("llm_service_pb2_grpc.py", "llm_service_pb2_grpc.pyi"):
    stubs = Path("generated/llm/v1") / name
    text = stubs.read_text()
    fixed = text.replace("import llm.v1.", "import generated.llm.v1.").replace(
        "from llm.v1 import", "from generated.llm.v1 import"
    )
    assert fixed != text, f"protoc's import line in {name} changed: update scripts/gen_protos.sh"
    stubs.write_text(fixed)
PY
touch generated/__init__.py generated/llm/__init__.py generated/llm/v1/__init__.py
