"""The processes under test: Ollama emulators and the service, each its own subprocess.

Every process is started by the bench and stopped by it (SIGTERM to its own pid, then
SIGKILL if it lingers); output goes to log files, never to pipes that could fill up.
Memory and CPU are read from ``/proc/<pid>``: VmHWM (peak RSS), VmRSS, and
utime + stime.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port free right now (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status`` (VmHWM, VmRSS); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Proc:
    """One started process, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def peak_rss_kb(self) -> int:
        return proc_status_kb(self.pid, "VmHWM")

    def rss_kb(self) -> int:
        return proc_status_kb(self.pid, "VmRSS")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5.0)


def _spawn(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_dir: Path,
    stdout_pipe: bool = False,
) -> Proc:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    try:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
        )
    finally:
        log.close()  # the child has its own descriptor
    return Proc(name, popen, log_path)


def _read_line(proc: Proc, timeout: float) -> str:
    """The first line the process prints on stdout (a pipe), within ``timeout``."""
    stream = proc.popen.stdout
    assert stream is not None
    end = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = end - time.monotonic()
        if left <= 0 or not proc.alive():
            break
        ready, _, _ = select.select([stream], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").split("\n", 1)[0]


def _wait_http(url: str, proc: Proc, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not proc.alive():
            break
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not answer {url} in time:\n{proc.log_tail()}")


def _wait_grpc_serving(target: str, proc: Proc, timeout: float) -> None:
    """Until grpc.health.v1 says SERVING (the server has reached Ollama)."""
    end = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < end and proc.alive():
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not serve gRPC on {target} in time:\n{proc.log_tail()}")


@dataclass
class Emulator:
    proc: Proc
    url: str


def start_emulator(
    name: str, *, python: str, repo: Path, token_delay: float, log_dir: Path
) -> Emulator:
    """``python -m ollama_emulator`` on a port it picks itself (``--port 0``)."""
    argv = [
        python,
        "-m",
        "ollama_emulator",
        "--host",
        LOOPBACK,
        "--port",
        "0",
        "--token-delay",
        f"{token_delay:g}",
    ]
    proc = _spawn(name, argv, cwd=repo, env=os.environ, log_dir=log_dir, stdout_pipe=True)
    line = _read_line(proc, START_TIMEOUT)
    marker = "listening on "
    if marker not in line:
        proc.stop()
        raise RuntimeError(f"{name} did not start: {line!r}\n{proc.log_tail()}")
    url = line.split(marker, 1)[1].split()[0]
    _wait_http(url + "/api/version", proc, START_TIMEOUT)
    return Emulator(proc, url)


@dataclass
class Service:
    """The service as operators run it: one process, or the gRPC server and the shim."""

    grpc_target: str
    rest_url: str
    procs: list[Proc] = field(default_factory=list)

    @property
    def server(self) -> Proc:
        return self.procs[0]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def service_env(ollama_url: str, extra: Mapping[str, str], upstreams: str = "") -> dict[str, str]:
    """The environment of the service processes: the bench's settings over the caller's,
    minus anything that would turn on auth or TLS or name other upstreams. The service
    goes to ``ollama_url`` (OLLAMA_BASE_URL), or to ``upstreams`` (LLM_UPSTREAMS)."""
    skip = ("LLM_API_KEYS", "GRPC_TLS", "LLM_UPSTREAM", "OLLAMA_BASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        {
            "HOST": LOOPBACK,
            "LOG_LEVEL": "WARNING",
            "SHUTDOWN_GRACE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if upstreams:
        env["LLM_UPSTREAMS"] = upstreams
    else:
        env["OLLAMA_BASE_URL"] = ollama_url
    env.update(extra)
    return env


def start_service(
    name: str,
    *,
    python: str,
    repo: Path,
    ollama_url: str,
    split: bool,
    extra_env: Mapping[str, str],
    log_dir: Path,
    upstreams: str = "",
) -> Service:
    """``python -m server --with-rest`` (one process, what the Dockerfile runs), or with
    ``split`` ``python -m server`` plus ``python -m rest_shim`` in a second process.
    ``upstreams``: LLM_UPSTREAMS instead of ``ollama_url``."""
    grpc_port, rest_port = free_port(), free_port()
    env = service_env(ollama_url, extra_env, upstreams)
    env.update({"GRPC_PORT": str(grpc_port), "PORT": str(rest_port)})
    grpc_target = f"{LOOPBACK}:{grpc_port}"
    service = Service(grpc_target, f"http://{LOOPBACK}:{rest_port}")
    try:
        if split:
            server = _spawn(
                f"{name}-server", [python, "-m", "server"], cwd=repo, env=env, log_dir=log_dir
            )
            service.procs.append(server)
            _wait_grpc_serving(grpc_target, server, START_TIMEOUT)
            shim_env = {**env, "GRPC_TARGET": grpc_target}
            shim = _spawn(
                f"{name}-shim", [python, "-m", "rest_shim"], cwd=repo, env=shim_env, log_dir=log_dir
            )
            service.procs.append(shim)
            _wait_http(service.rest_url + "/livez", shim, START_TIMEOUT)
        else:
            argv = [python, "-m", "server", "--with-rest"]
            server = _spawn(name, argv, cwd=repo, env=env, log_dir=log_dir)
            service.procs.append(server)
            _wait_grpc_serving(grpc_target, server, START_TIMEOUT)
            _wait_http(service.rest_url + "/livez", server, START_TIMEOUT)
    except BaseException:
        service.stop()
        raise
    return service


@dataclass
class LlamaServer:
    proc: Proc
    url: str


def start_llama_server(
    name: str, argv: Sequence[str], *, repo: Path, log_dir: Path, timeout: float = 120.0
) -> LlamaServer:
    """llama.cpp's ``llama-server`` (``argv`` without host and port) on a free loopback
    port; ready once ``/health`` answers 200 (503 while it loads the model)."""
    port = free_port()
    full = [*argv, "--host", LOOPBACK, "--port", str(port)]
    proc = _spawn(name, full, cwd=repo, env=os.environ, log_dir=log_dir)
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_http(url + "/health", proc, timeout)
    except BaseException:
        proc.stop()
        raise
    return LlamaServer(proc, url)


def system_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``, idle and iowait out)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuMeter:
    """CPU used by named processes (and by everything else) between ``start`` and ``stop``.

    ``others`` is the machine's busy time minus the measured processes': load from
    outside the bench, which makes the numbers of that phase less trustworthy.
    """

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._t0 = 0.0
        self._busy0 = 0.0
        self._cpu0: dict[str, float] = {}

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._busy0 = system_busy_seconds()
        self._cpu0 = {name: proc_cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> dict[str, float]:
        """Cores used on average by each process, and by ``others``."""
        elapsed = max(1e-9, time.perf_counter() - self._t0)
        used = {name: proc_cpu_seconds(pid) - self._cpu0[name] for name, pid in self._pids.items()}
        busy = system_busy_seconds() - self._busy0
        cores = {name: round(v / elapsed, 3) for name, v in used.items()}
        cores["others"] = round(max(0.0, busy - sum(used.values())) / elapsed, 3)
        return cores
