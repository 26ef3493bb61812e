# LLM service image: the gRPC server (50051) and the REST shim (8005) in one process.
#
#   docker build -t llm-service .
#   docker run --rm -p 8005:8005 -p 50051:50051 -e OLLAMA_BASE_URL=http://ollama:11434 llm-service
#
# Stages: "probe" fetches grpc_health_probe and checks its sha256, "builder" installs the
# runtime dependencies pinned by uv.lock (no extras) and the service's wheel (without the
# Ollama emulator) into a venv, the final stage copies both onto a fresh slim base and
# runs as an unprivileged user.
# tests/test_deploy.py lints this file and runs its CMD against the wheel the builder makes.

# --------------------------------------------------------------------------------------
FROM python:3.11-slim AS probe

# A release binary of grpc-ecosystem/grpc-health-probe, verified against its published
# sha256 (linux-amd64). Other architectures: add their digest here, or the build stops.
ARG GRPC_HEALTH_PROBE_VERSION=v0.4.37
ARG GRPC_HEALTH_PROBE_SHA256_AMD64=8302d54fc41d4ffbfea6871b6a04584265d5eabbe738aee2966f9a574b6f17d1
# set by BuildKit; empty with the legacy builder, which builds for the host (amd64 here)
ARG TARGETARCH
ADD https://github.com/grpc-ecosystem/grpc-health-probe/releases/download/${GRPC_HEALTH_PROBE_VERSION}/grpc_health_probe-linux-amd64 /tmp/grpc_health_probe
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ "${TARGETARCH:-amd64}" != "amd64" ]; then \
        echo "no pinned grpc_health_probe digest for linux/${TARGETARCH}" >&2; exit 1; \
    fi \
    && echo "${GRPC_HEALTH_PROBE_SHA256_AMD64}  /tmp/grpc_health_probe" | sha256sum -c - \
    && install -m 0755 /tmp/grpc_health_probe /usr/local/bin/grpc_health_probe \
    && rm /tmp/grpc_health_probe

# --------------------------------------------------------------------------------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The runtime dependencies first, exactly as uv.lock pins them (hash-checked), in a
# layer of their own: it is rebuilt only when the lock changes. uv, the lock's reader,
# is pinned by the lock too; it stays in this stage.
COPY pyproject.toml uv.lock README.md ./
COPY scripts/uv_bootstrap.py scripts/
RUN python scripts/uv_bootstrap.py --no-cache-dir \
    && uv export --frozen --no-emit-project --no-header --output-file /tmp/requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir --require-hashes --no-deps \
       -r /tmp/requirements.txt
# Then the service's own wheel (pyproject.toml names README.md as its readme). The
# Ollama emulator is a test tool: its sources are not copied, so the wheel leaves it
# out, and its console script, which would point at nothing, is removed.
COPY generated/ generated/
COPY server/ server/
COPY rest_shim/ rest_shim/
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/python -m pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm /opt/venv/bin/ollama-emulator

# --------------------------------------------------------------------------------------
FROM python:3.11-slim

# version: pyproject.toml's, which GET / and /openapi.json report (tests/test_deploy.py checks)
LABEL org.opencontainers.image.title="llm-service" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="gRPC LlmService in front of Ollama, with a REST shim for the Gateway"

RUN groupadd --system --gid 10001 llm \
    && useradd --system --uid 10001 --gid llm --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin llm \
    && mkdir /data && chown 10001:10001 /data

COPY --from=probe /usr/local/bin/grpc_health_probe /usr/local/bin/grpc_health_probe
COPY --from=builder /opt/venv /opt/venv

# Defaults of the settings a container needs different from a laptop; everything else
# keeps the defaults of README.md's configuration table (docker-compose.yml sets them all).
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8005 \
    GRPC_PORT=50051 \
    LLM_DATA_DIR=/data

# the usage ledger's SQLite file (LLM_DATA_DIR)
VOLUME ["/data"]

WORKDIR /home/llm
USER 10001:10001

# REST shim (the Gateway's http://vllm:8005) and gRPC (vllm:50051)
EXPOSE 8005 50051

# grpc.health.v1 on the gRPC port: SERVING while Ollama answers, NOT_SERVING when it does
# not or while the service drains after SIGTERM. The shell follows GRPC_PORT (50051 by
# default) and speaks TLS when GRPC_TLS_CERT is set (loopback: no certificate check).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "exec grpc_health_probe -addr=127.0.0.1:${GRPC_PORT:-50051} ${GRPC_TLS_CERT:+-tls -tls-no-verify}"]

# Exec form: python is PID 1 and receives SIGTERM itself (drains, exits 0). Keep
# docker-compose.yml's stop_grace_period above the drain time (see README, Deployment).
CMD ["python", "-m", "server", "--with-rest"]
