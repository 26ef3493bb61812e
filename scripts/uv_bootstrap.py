"""Installs uv, the installer of uv.lock, at the version uv.lock pins, checked against
the lock's hashes, into the environment of the interpreter that runs this file.

    .venv/bin/python scripts/uv_bootstrap.py [pip options...]

Nothing happens when that version is there already. Extra arguments go to pip.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "uv.lock"


def main(pip_options: list[str]) -> int:
    with LOCK.open("rb") as f:
        lock = tomllib.load(f)
    (uv,) = [p for p in lock["package"] if p["name"] == "uv"]
    try:
        if importlib.metadata.version("uv") == uv["version"]:
            return 0
    except importlib.metadata.PackageNotFoundError:
        pass
    files = [*uv.get("wheels", []), *([uv["sdist"]] if "sdist" in uv else [])]
    hashes = " ".join(f"--hash={f['hash']}" for f in files)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "uv.txt"
        requirements.write_text(f"uv=={uv['version']} {hashes}\n")
        command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        command += ["--require-hashes", "--no-deps", *pip_options, "-r", str(requirements)]
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
