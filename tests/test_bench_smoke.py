"""The benchmark runs end to end (a short latency phase only): the same chat through the
emulator, gRPC and REST with no errors, and a result file that says the machine's core
count. The speed targets themselves live in bench/, not in tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realmodel import cache_root, ensure

ROOT = Path(__file__).resolve().parent.parent


def run_bench(
    options: list[str], output: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``python -m bench --quick`` with ``options``, its results written to ``output``."""
    argv = [sys.executable, "-m", "bench", "--quick", *options, "--output", str(output)]
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def test_bench_smoke_run(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    options = ["--only", "latency", "--rounds", "1", "--latency-requests", "20"]
    done = run_bench(options, output, {"PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["machine"]["cpu_count"] == os.cpu_count()
    latency = results["latency"]
    for rounds in (latency["rounds"], latency["lean_http_client"]["rounds"]):
        (round_,) = rounds
        for path in ("direct", "grpc", "rest"):
            assert round_[path]["errors"] == 0
            assert round_[path]["n"] == 20
    assert "added" in results["latency"]
    assert "REST" in done.stdout


@pytest.mark.realmodel
def test_bench_real_model_phase(tmp_path: Path) -> None:
    """``--only realmodel``: llama-server and the service in front of it, the same stream
    straight and through every face, the same answer everywhere."""
    ensure()  # built once, or taken from the cache (scripts/test.sh builds it first)
    output = tmp_path / "bench.json"
    options = ["--only", "realmodel", "--realmodel-streams", "1", "--realmodel-tokens", "8"]
    env = {"PATH": os.environ.get("PATH", ""), "LLM_CACHE_DIR": str(cache_root())}
    done = run_bench(options, output, env)
    assert done.returncode == 0, done.stderr[-3000:]
    real = json.loads(output.read_text())["realmodel"]
    assert set(real["median"]) == {"direct", "grpc", "rest", "openai", "ollama"}
    assert all(count == 0 for count in real["errors"].values()), real["errors"]
    assert real["same_answer_everywhere"], real["answers"]
    assert all(m["tokens"] == 8 for m in real["median"].values()), real["median"]
    assert set(real["added"]) == {"grpc", "rest", "openai", "ollama"}
    assert "OpenAI face" in done.stdout
