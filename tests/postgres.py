"""A real PostgreSQL server for the tests: a throwaway cluster (initdb) in a temporary
directory, listening on a Unix socket only (no port to collide with), started once per
test session when a test first asks for it, stopped and deleted at the end.

The binaries come from Debian's ``postgresql`` package (``scripts/test.sh`` installs it
when missing). PostgreSQL refuses to run as root: under root the cluster belongs to the
``postgres`` account the package creates, and its commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    on_path = shutil.which("initdb")
    if on_path:
        found.append(on_path)
    if not found:
        raise RuntimeError(
            "PostgreSQL's server binaries (initdb) are not installed: "
            "run scripts/test.sh, or apt-get install postgresql"
        )
    return Path(found[-1]).parent


@dataclass
class Postgres:
    """One running cluster; ``database()`` makes a fresh, empty database."""

    root: Path
    bindir: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://llm@/{database}?host={self.socket_dir}"

    def database(self) -> str:
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run(cmd: list[str]) -> None:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


def start() -> Postgres:
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="llm-pg-"))
    (root / "socket").mkdir()
    if os.geteuid() == 0:
        for path in (root, root / "socket"):
            shutil.chown(path, "postgres", "postgres")
    pg = Postgres(root, bindir)
    data = root / "data"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "llm", "--auth=trust"]
    _run([*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"])
    options = f"-c listen_addresses='' -k {pg.socket_dir} -c fsync=off -c max_connections=200"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options]
    _run([*pg_ctl, "-l", str(root / "server.log"), "-w", "-t", "60", "start"])
    return pg


def stop(pg: Postgres) -> None:
    try:
        _run([str(pg.bindir / "pg_ctl"), "-D", str(pg.root / "data"), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(pg.root, ignore_errors=True)
