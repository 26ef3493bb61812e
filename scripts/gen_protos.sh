#!/usr/bin/env bash
# Rebuilds generated/ from protos/. The only way generated/ changes; never edit it by hand.
# Run with the project's virtualenv active (or PYTHON pointing at its interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
rm -rf generated
mkdir -p generated/llm/v1
# -Igenerated=protos makes the stubs import as generated.llm.v1.* instead of bare llm.v1.*
"$python" -m grpc_tools.protoc -Igenerated=protos \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  generated/llm/v1/llm_service.proto
touch generated/__init__.py generated/llm/__init__.py generated/llm/v1/__init__.py
