"""Readers of the deployment files for tests/test_deploy.py: the Dockerfile's instructions
and stages, compose's ``${VAR:-default}`` interpolation and durations, README.md's
configuration table, and env files. No Docker engine is needed for any of them.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# -- Dockerfile -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/RUN, or None for shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = _healthcheck_command(self.args)
        if not text.lstrip().startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None

    def flags(self) -> dict[str, str]:
        """Leading ``--name=value`` options (COPY --from, HEALTHCHECK --interval ...)."""
        found: dict[str, str] = {}
        for word in self.args.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found

    def words(self) -> list[str]:
        """The arguments without leading options, split like a shell would."""
        words = shlex.split(self.args)
        while words and words[0].startswith("--"):
            words.pop(0)
        return words


def _healthcheck_command(args: str) -> str:
    match = re.search(r"(?:^|\s)CMD\s+(.*)$", args, re.DOTALL)
    return match.group(1) if match else ""


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped."""
    out: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        joined = " ".join(part for part in buffer if part)
        buffer = []
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    assert not buffer, "the Dockerfile ends inside a continued line"
    return out


def dockerfile_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.words()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            assert instruction.keyword == "ARG", f"{instruction} before the first FROM"
    return stages


def env_assignments(instruction: Instruction) -> dict[str, str]:
    """``ENV A=1 B="two"`` (or ``ARG A=1``) as a mapping."""
    pairs: dict[str, str] = {}
    for word in shlex.split(instruction.args):
        name, sep, value = word.partition("=")
        if sep:
            pairs[name] = value
    return pairs


def image_tag(image: str) -> str | None:
    """The tag of ``name:tag`` (None when there is none or only a digest)."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


# -- docker compose ---------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation (``$$``, ``$VAR``, ``${VAR}``, ``${VAR-d}``, ``${VAR:-d}``)
    applied to every string of a loaded compose file."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: _substitute(m, env), value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group("escaped"):
        return "$"
    name = match.group("braced") or match.group("plain")
    value = env.get(name)
    op = match.group("op")
    if op == ":-" and not value:
        return match.group("default")
    if op == "-" and value is None:
        return match.group("default")
    return value or ""


def variables_used(text: str) -> set[str]:
    """Names of the variables a compose file interpolates."""
    names = set()
    for match in _VARIABLE.finditer(text):
        name = match.group("braced") or match.group("plain")
        if name:
            names.add(name)
    return names


def duration_seconds(value: str | int | float) -> float:
    """A compose duration ("45s", "1m15s", "500ms") in seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"bad duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


# -- README and env files ---------------------------------------------------------------


def readme_settings(readme: str) -> dict[str, str]:
    """Variable -> default, from the table of README.md's "Configuration" section."""
    match = re.search(r"^## Configuration\s*$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, "README.md has no Configuration section"
    settings: dict[str, str] = {}
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[A-Z][A-Z0-9_]*", cells[0]):
            settings[cells[0]] = cells[-1].strip("`")
    assert settings, "README.md's Configuration section has no table of variables"
    return settings


def env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"not a KEY=VALUE line: {line!r}"
        values[name.strip()] = value.strip()
    return values
