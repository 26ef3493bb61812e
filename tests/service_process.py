"""The service as a child process (``python -m server ...``) with an explicit
environment: for tests that signal it, or run two of it side by side."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Service:
    """``python -m <module>`` in a child process, with an explicit environment (and a
    data directory of its own for the usage ledger, unless ``env`` names one)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self._data = tempfile.TemporaryDirectory(prefix="llm-data-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), "LLM_DATA_DIR": self._data.name, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._output: str | None = None

    def wait_ready(self, url: str, limit: float = 30.0) -> None:
        """Start-up: retry until the port answers (bounded), or the process died."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.output()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"service not ready within {limit} s:\n{self.output()}")

    def output(self) -> str:
        """Everything the process printed (killing it first if it still runs)."""
        if self._output is None:
            if self.proc.poll() is None:
                self.proc.kill()
            self._output, _ = self.proc.communicate(timeout=10)
            self._data.cleanup()
        return self._output

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    async def exit_code(self, limit: float = 30.0) -> int:
        return await asyncio.to_thread(self.proc.wait, limit)
