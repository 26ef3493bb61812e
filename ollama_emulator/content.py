"""Deterministic stand-ins for what a model would generate.

Tests compute their expectations from these functions and from the requests the
emulator recorded, never from magic numbers.

Chat (``generate``):

* The *prompt* is the content of the last message whose role is "user" ("" if none).
* The answer is ``"Echo: " + prompt``; when the request sets ``format`` (``"json"`` or
  a JSON schema) it is instead ``json.dumps({"echo": prompt})``.
* Models that think first produce the thinking text ``"Thinking about: " + prompt``.
* Text becomes tokens by ``tokenize``: words with their leading whitespace, so joining
  the tokens gives the text back exactly. Each streamed chunk carries one token.
* ``options.stop``: the answer (not the thinking) ends just before the first
  occurrence of any stop string; done_reason "stop".
* ``length``: when given, the answer is the echo repeated (tokens in a cycle) until it
  holds exactly ``length`` tokens: a very long answer for load and abandonment tests.
* ``options.num_predict`` > 0 caps the tokens generated, thinking and answer together,
  thinking first. Like Ollama, reaching the cap ends with done_reason "length" even when
  the answer would have ended right there (the end-of-sequence token counts too).
* ``eval_count`` is the number of tokens generated (thinking + answer);
  ``prompt_eval_count`` is ``count_prompt_tokens(messages)``: whitespace-separated
  words over the content of every message, all roles.

Embeddings (``embed_vector``): a vector seeded from the SHA-256 of the text, of the
model's dimension, L2-normalised, and truncated + renormalised when ``dimensions``
asks for fewer (as Ollama does).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ANSWER_PREFIX = "Echo: "
THINKING_PREFIX = "Thinking about: "

_TOKEN = re.compile(r"\s*\S+|\s+$")


def message_content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def last_user_message(messages: Sequence[Mapping[str, Any]]) -> str:
    """Content of the last message with role "user", or "" when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_content(message)
    return ""


def count_words(text: str) -> int:
    return len(text.split())


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """``prompt_eval_count`` of a chat: words over all messages' content, all roles."""
    return sum(count_words(message_content(m)) for m in messages)


def tokenize(text: str) -> list[str]:
    """Words with their leading whitespace (trailing whitespace is a token of its own)."""
    return _TOKEN.findall(text)


def answer_text(prompt: str, *, structured: bool) -> str:
    if structured:
        return json.dumps({"echo": prompt})
    return ANSWER_PREFIX + prompt


def thinking_text(prompt: str) -> str:
    return THINKING_PREFIX + prompt


def cut_at_stop(text: str, stop: Iterable[str]) -> str:
    """``text`` up to the first occurrence of any non-empty stop string."""
    cut = len(text)
    for s in stop:
        if s:
            index = text.find(s)
            if index != -1:
                cut = min(cut, index)
    return text[:cut]


@dataclass(frozen=True)
class Generation:
    """The tokens one chat request produces, thinking first."""

    thinking_tokens: tuple[str, ...]
    content_tokens: tuple[str, ...]
    done_reason: str

    @property
    def thinking(self) -> str:
        return "".join(self.thinking_tokens)

    @property
    def content(self) -> str:
        return "".join(self.content_tokens)

    @property
    def eval_count(self) -> int:
        return len(self.thinking_tokens) + len(self.content_tokens)


def generate(
    messages: Sequence[Mapping[str, Any]],
    *,
    structured: bool = False,
    thinks: bool = False,
    num_predict: int = 0,
    stop: Sequence[str] = (),
    length: int | None = None,
) -> Generation:
    """What the emulated model answers to ``messages`` (see the module docstring)."""
    prompt = last_user_message(messages)
    thinking = tokenize(thinking_text(prompt)) if thinks else []
    content = tokenize(cut_at_stop(answer_text(prompt, structured=structured), stop))
    if length is not None and content:
        if num_predict > 0:
            length = min(length, num_predict + 1)  # no need to build what is cut anyway
        content = list(itertools.islice(itertools.cycle(content), length))
    done_reason = "stop"
    if num_predict > 0 and len(thinking) + len(content) >= num_predict:
        done_reason = "length"
        content = content[: max(0, num_predict - len(thinking))]
        thinking = thinking[:num_predict]
    return Generation(tuple(thinking), tuple(content), done_reason)


def embed_vector(text: str, dim: int, dimensions: int | None = None) -> list[float]:
    """A deterministic unit vector for ``text`` (see the module docstring)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vector = _normalise([rng.gauss(0.0, 1.0) for _ in range(dim)])
    if dimensions is not None and 0 < dimensions < len(vector):
        vector = _normalise(vector[:dimensions])
    # float32 precision, as Ollama sends them
    return [float(f"{v:.9g}") for v in vector]


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    scale = 1.0 / max(norm, 1e-12)
    return [v * scale for v in vector]
