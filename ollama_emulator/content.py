"""Deterministic stand-ins for what a model would generate.

Tests compute their expectations from these functions and from the requests the
emulator recorded, never from magic numbers.

Chat (``generate``):

* The model answers one message: the last message when it comes from a tool (a
  ``role: "tool"`` message carrying a tool's result), otherwise the last message
  whose role is "user". Its content is the *prompt* ("" if there is none).
* The answer is ``"Echo: " + prompt``, followed by ``images_note`` when that
  message carries images: `` (2 images: 1a2b3c4d, 5e6f7a8b)``, the count and the
  first 8 hex digits of the SHA-256 of each image's bytes, in order.
* With ``format`` "json" the answer is ``json.dumps({"echo": prompt})``; with a
  JSON schema it is ``json.dumps(schema_instance(schema, prompt))``, a value that
  validates against the schema (rules in ``structured``). Images are not noted in
  structured answers.
* With ``tools``, when the last message is from the user, the model calls a tool
  instead of answering (which one, and with what arguments: ``tools``); the answer
  is then empty and the message carries ``tool_calls``.
* Models that think first produce the thinking text ``"Thinking about: " + prompt``
  (before a tool call too).
* Text becomes tokens by ``tokenize``: words with their leading whitespace, so joining
  the tokens gives the text back exactly. Each streamed chunk carries one token; a
  tool call comes whole, in one chunk of its own after the thinking.
* ``options.stop``: the answer (not the thinking) ends just before the first
  occurrence of any stop string; done_reason "stop".
* ``length``: when given, the answer is the echo repeated (tokens in a cycle) until it
  holds exactly ``length`` tokens: a very long answer for load and abandonment tests.
* ``options.num_predict`` > 0 caps the tokens generated, thinking and answer together,
  thinking first. Like Ollama, reaching the cap ends with done_reason "length" even when
  the answer would have ended right there (the end-of-sequence token counts too). A
  tool call that does not fit whole under the cap is not made.
* ``eval_count`` is the number of tokens generated (thinking + answer + the text of a
  tool call, ``tools.call_text``); ``prompt_eval_count`` is
  ``count_prompt_tokens(messages)``: whitespace-separated words over the content of
  every message, all roles.

Generate (``/api/generate``): see ``completion``. Log probabilities: see ``logprobs``.

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

from ollama_emulator.images import image_digest
from ollama_emulator.structured import schema_instance
from ollama_emulator.tools import call_text, tool_call

ANSWER_PREFIX = "Echo: "
THINKING_PREFIX = "Thinking about: "

_TOKEN = re.compile(r"\s*\S+|\s+$")


def message_content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def prompt_message(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The message the model answers: the last one if from a tool, else the last user one."""
    if messages and messages[-1].get("role") == "tool":
        return messages[-1]
    return next((m for m in reversed(messages) if m.get("role") == "user"), None)


def count_words(text: str) -> int:
    return len(text.split())


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """``prompt_eval_count`` of a chat: words over all messages' content, all roles."""
    return sum(count_words(message_content(m)) for m in messages)


def tokenize(text: str) -> list[str]:
    """Words with their leading whitespace (trailing whitespace is a token of its own)."""
    return _TOKEN.findall(text)


def images_note(images: Sequence[str | bytes]) -> str:
    """`` (N images: d1, d2)``: how an answer shows the images it was given ("" if none)."""
    if not images:
        return ""
    noun = "image" if len(images) == 1 else "images"
    return f" ({len(images)} {noun}: {', '.join(image_digest(i) for i in images)})"


def answer_text(
    prompt: str,
    *,
    structured: bool,
    schema: Mapping[str, Any] | None = None,
    images: Sequence[str | bytes] = (),
) -> str:
    """The answer to ``prompt``: the echo, or JSON when ``structured``/``schema``."""
    if schema is not None:
        return json.dumps(schema_instance(schema, prompt))
    if structured:
        return json.dumps({"echo": prompt})
    return ANSWER_PREFIX + prompt + images_note(images)


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
    """The tokens one request produces, thinking first, then an answer or tool calls."""

    thinking_tokens: tuple[str, ...]
    content_tokens: tuple[str, ...]
    done_reason: str
    tool_calls: tuple[dict[str, Any], ...] = ()

    @property
    def thinking(self) -> str:
        return "".join(self.thinking_tokens)

    @property
    def content(self) -> str:
        return "".join(self.content_tokens)

    @property
    def eval_count(self) -> int:
        calls = sum(len(tokenize(call_text(c))) for c in self.tool_calls)
        return len(self.thinking_tokens) + len(self.content_tokens) + calls


def produce(
    thinking_prompt: str | None,
    answer: str,
    *,
    num_predict: int = 0,
    stop: Sequence[str] = (),
    length: int | None = None,
) -> Generation:
    """Thinking about ``thinking_prompt`` (None: no thinking), then ``answer``, as tokens
    under ``stop``, ``length`` and ``num_predict`` (see the module docstring)."""
    thinking = tokenize(thinking_text(thinking_prompt)) if thinking_prompt is not None else []
    content = tokenize(cut_at_stop(answer, stop))
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


def _calling(thinking: list[str], call: dict[str, Any], num_predict: int) -> Generation:
    if num_predict > 0 and len(thinking) + len(tokenize(call_text(call))) >= num_predict:
        return Generation(tuple(thinking[:num_predict]), (), "length")
    return Generation(tuple(thinking), (), "stop", (call,))


def generate(
    messages: Sequence[Mapping[str, Any]],
    *,
    structured: bool = False,
    schema: Mapping[str, Any] | None = None,
    thinks: bool = False,
    num_predict: int = 0,
    stop: Sequence[str] = (),
    length: int | None = None,
    tools: Sequence[Any] = (),
) -> Generation:
    """What the emulated model answers to ``messages`` (see the module docstring)."""
    message = prompt_message(messages)
    prompt = message_content(message) if message is not None else ""
    if tools and messages and messages[-1].get("role") == "user":
        call = tool_call(tools, prompt)
        if call is not None:
            thinking = tokenize(thinking_text(prompt)) if thinks else []
            return _calling(thinking, call, num_predict)
    images = message.get("images") if message is not None else None
    answer = answer_text(
        prompt, structured=structured, schema=schema, images=images if images else ()
    )
    return produce(
        prompt if thinks else None, answer, num_predict=num_predict, stop=stop, length=length
    )


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
