"""scripts/buf_breaking.sh, run by scripts/test.sh: a breaking change to the contract
fails the check, an additive one passes, and a clone without the previous commit (the
first commit, a shallow clone) skips it with a line saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_files import ROOT

PROTO = Path("protos/llm/v1/llm_service.proto")
SCRIPT = Path("scripts/buf_breaking.sh")


def _buf() -> str:
    beside = Path(sys.executable).parent / "buf"
    found = str(beside) if beside.exists() else shutil.which("buf")
    if not found:
        pytest.fail("buf is not installed (buf-bin is a dev dependency)")
    return found


def _env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "BUF": _buf(),
        "BUF_CACHE_DIR": str(home / "buf-cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }


def _git(repo: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _check(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git repository with the project's contract, buf.yaml and the script: one commit."""
    repo = tmp_path / "repo"
    for path in (PROTO, SCRIPT, Path("buf.yaml")):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, repo / path)
    env = _env(tmp_path)
    _git(repo, env, "init", "-q", "-b", "main")
    _git(repo, env, "add", ".")
    _git(repo, env, "commit", "-q", "-m", "contract")
    return repo, env


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / PROTO
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_first_commit_skips_with_a_reason(repo: tuple[Path, dict[str, str]]) -> None:
    path, env = repo
    done = _check(path, env)
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout and "first commit" in done.stdout


def test_additive_change_passes_a_breaking_one_fails(repo: tuple[Path, dict[str, str]]) -> None:
    path, env = repo
    _edit(
        path,
        "\nmessage ChatResponse {",
        "\nmessage Added {\n  string user = 1;\n}\n\nmessage ChatResponse {",
    )
    _git(path, env, "commit", "-qam", "add a field")
    added = _check(path, env)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "no breaking change against HEAD~1" in added.stdout

    # uncommitted: checked against HEAD, the contract before the edit
    _edit(path, "  string model = 2;\n  // Earlier turns", "  int32 model = 2;\n  // Earlier turns")
    broken = _check(path, env)
    assert broken.returncode != 0
    assert "model" in broken.stdout + broken.stderr

    # committed: the last commit is what HEAD~1 shows
    _git(path, env, "commit", "-qam", "retype a field")
    assert _check(path, env).returncode != 0


def test_shallow_clone_skips_and_a_named_missing_ref_fails(
    repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, env = repo
    _edit(
        path,
        "\nmessage ChatResponse {",
        "\nmessage Added {\n  string user = 1;\n}\n\nmessage ChatResponse {",
    )
    _git(path, env, "commit", "-qam", "add a field")
    shallow = tmp_path / "shallow"
    _git(tmp_path, env, "clone", "-q", "--depth", "1", f"file://{path}", str(shallow))
    done = _check(shallow, env)
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout and "shallow" in done.stdout
    named = _check(shallow, {**env, "BUF_AGAINST": "origin/old-release"})
    assert named.returncode != 0
    assert "BUF_AGAINST=origin/old-release" in named.stderr


def test_test_script_runs_the_breaking_check() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text()
    assert "scripts/buf_breaking.sh" in text


def test_the_contract_registers_under_its_own_path(tmp_path: Path) -> None:
    """A client that compiles the proto itself (protoc -Iprotos) registers the same file
    name as the service's generated code, so both load in one process, and reflection
    shows llm/v1/llm_service.proto."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'protos'}",
            f"--python_out={tmp_path}",
            "llm/v1/llm_service.proto",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    script = (
        "from generated.llm.v1 import llm_service_pb2 as ours\n"
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from llm.v1 import llm_service_pb2 as theirs\n"
        "assert ours.DESCRIPTOR.name == theirs.DESCRIPTOR.name == 'llm/v1/llm_service.proto'\n"
        "print(theirs.ChatRequest(message='hi').message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hi"
