"""Sampling the service under load with py-spy, and reading its collapsed stacks.

py-spy is optional (``pip install py-spy``); ``--profile DIR`` runs it in extra,
unmeasured rounds. ``py-spy record --format raw`` writes one line per distinct stack,
``frame;frame;...;leaf COUNT`` with frames like ``function (path/file.py:123)``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def find_py_spy() -> str | None:
    """py-spy next to this interpreter, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def start_recording(
    py_spy: str, pid: int, duration: float, out: Path, native: bool = False
) -> subprocess.Popen[bytes]:
    """py-spy record for ``duration`` seconds, active threads only (where CPU goes).

    Without ``native``, time spent in C extensions (grpc's Cython core, for one) shows
    as self time of the Python frame that called them, often ``Handle._run``; with it,
    py-spy pauses the process for each sample, which slows it down."""
    seconds = str(max(1, round(duration)))
    argv = [py_spy, "record", "--pid", str(pid), "--duration", seconds, "--rate", "200"]
    argv += ["--format", "raw", "--output", str(out)]
    argv += ["--native"] if native else ["--nonblocking"]
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


PROJECT = ("server", "rest_shim", "generated", "ollama_emulator", "bench")


def module_of(path: str) -> str:
    """A readable module for a frame's file. py-spy gives paths relative to their
    ``sys.path`` entry (``httpx/_client.py``, ``asyncio/events.py``, ``server/hosts.py``):
    project files become ``server.hosts``, everything else its top-level package."""
    if path.startswith("<"):
        return path
    parts = Path(path).with_suffix("").parts
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
    for i, part in enumerate(parts):
        if part in PROJECT:
            return ".".join(parts[i:])
    if parts and parts[0] == "/":
        lib = [i for i, part in enumerate(parts) if part.startswith("python3")]
        parts = parts[lib[-1] + 1 :] if lib else parts[-1:]
    return parts[0] if parts else path


def _split_frame(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), "?"
    return match["func"], match["file"]


@dataclass
class Profile:
    """Sample counts: self (the leaf frame) and inclusive (anywhere on the stack)."""

    samples: int
    self_by_function: Counter[str]
    total_by_function: Counter[str]
    self_by_module: Counter[str]
    total_by_module: Counter[str]

    def top(self, counter: Counter[str], n: int) -> list[tuple[str, float]]:
        """The ``n`` largest entries, as percentages of all samples."""
        if not self.samples:
            return []
        return [(k, round(100.0 * v / self.samples, 1)) for k, v in counter.most_common(n)]

    def to_json(self, n: int = 25) -> dict[str, object]:
        return {
            "samples": self.samples,
            "self_by_function": self.top(self.self_by_function, n),
            "inclusive_by_function": self.top(self.total_by_function, n),
            "self_by_module": self.top(self.self_by_module, n),
            "inclusive_by_module": self.top(self.total_by_module, n),
        }


def read_collapsed(text: str) -> Profile:
    samples = 0
    self_f: Counter[str] = Counter()
    total_f: Counter[str] = Counter()
    self_m: Counter[str] = Counter()
    total_m: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_split_frame(f) for f in stack.split(";") if f.strip()]
        # The first frame is the thread ("process 123:..." / "thread 0x...") with --threads;
        # without it every frame is a Python frame.
        names = [f"{func} ({module_of(file)})" for func, file in frames]
        modules = [module_of(file) for _, file in frames]
        if names:
            self_f[names[-1]] += count
            self_m[modules[-1]] += count
        for name in set(names):
            total_f[name] += count
        for module in set(modules):
            total_m[module] += count
    return Profile(samples, self_f, total_f, self_m, total_m)
