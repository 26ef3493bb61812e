"""What the emulated model answers on /api/generate: ``Completion``.

The answer shows what the server passed on, so tests can tell:

* By default the answer is ``"Echo: " + prompt``, then a note for each extra the
  request carried, in this order: `` (system: <system>)``, `` (suffix: <suffix>)``,
  `` (context: <n> tokens)`` (n = the length of the ``context`` sent back) and the
  images note of ``content.images_note``.
* ``template`` (not raw): the model sees the template rendered: ``{{ .Prompt }}``,
  ``{{ .System }}`` and ``{{ .Suffix }}`` are replaced, any other action (``if``,
  ``end``, ...) renders as nothing, and ``{{-``/``-}}`` trim whitespace as in Go. The
  answer is ``"Echo: " + rendered`` plus the context and images notes (the template
  decides where system and suffix go).
* ``raw``: the model sees the prompt alone (Ollama applies no template and no
  parser), so the answer is ``"Raw: " + prompt`` plus the images note, without
  thinking and without ``context`` in the done line. (Ollama refuses raw with a
  template, system or context.)
* ``format``: as on chat, the answer is JSON (``content.answer_text``) made from the
  prompt; no notes.
* Thinking models think first, ``"Thinking about: " + prompt``, as on chat.
* ``stop``, ``num_predict`` and ``answer_tokens`` act as on chat (``content``).
* ``prompt_eval_count`` is ``prompt_tokens()``: the length of ``context`` plus the
  words of what the model sees (system, prompt and suffix; raw: the prompt; with a
  template: the rendered template).
* The done line's ``context`` (not raw) is the request's context, then
  ``token_id(word)`` for each of those words, then ``token_id(token)`` for each
  generated token: ``len(context) == prompt_eval_count + eval_count``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ollama_emulator.content import (
    ANSWER_PREFIX,
    Generation,
    answer_text,
    images_note,
    produce,
)

RAW_PREFIX = "Raw: "
VOCABULARY = 100_000
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


def token_id(token: str) -> int:
    """A token's id in ``context``: from the SHA-256 of its text, below ``VOCABULARY``."""
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") % VOCABULARY


def render_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with ``{{ .Name }}`` actions replaced by ``values[".Name"]``."""
    out: list[str] = []
    pos, trim_next = 0, False
    for action in _ACTION.finditer(template):
        text = template[pos : action.start()]
        text = text.lstrip() if trim_next else text
        out.append(text.rstrip() if action.group(1) else text)
        out.append(values.get(action.group(2).strip(), ""))
        trim_next, pos = bool(action.group(3)), action.end()
    tail = template[pos:]
    out.append(tail.lstrip() if trim_next else tail)
    return "".join(out)


@dataclass(frozen=True)
class Completion:
    """One /api/generate request's inputs to the model."""

    prompt: str
    system: str = ""
    suffix: str = ""
    template: str = ""
    raw: bool = False
    context: tuple[int, ...] = ()
    images: tuple[str | bytes, ...] = ()

    def rendered(self) -> str:
        values = {".Prompt": self.prompt, ".System": self.system, ".Suffix": self.suffix}
        return render_template(self.template, values)

    def seen(self) -> str:
        """What the model is given besides ``context``."""
        if self.raw:
            return self.prompt
        if self.template:
            return self.rendered()
        return " ".join(part for part in (self.system, self.prompt, self.suffix) if part)

    def prompt_tokens(self) -> int:
        return len(self.context) + len(self.seen().split())

    def answer(self, *, structured: bool = False, schema: Mapping[str, Any] | None = None) -> str:
        if structured or schema is not None:
            return answer_text(self.prompt, structured=structured, schema=schema)
        if self.raw:
            return RAW_PREFIX + self.prompt + images_note(self.images)
        if self.template:
            text = ANSWER_PREFIX + self.rendered()
        else:
            text = ANSWER_PREFIX + self.prompt
            text += f" (system: {self.system})" if self.system else ""
            text += f" (suffix: {self.suffix})" if self.suffix else ""
        text += f" (context: {len(self.context)} tokens)" if self.context else ""
        return text + images_note(self.images)

    def generate(
        self,
        *,
        structured: bool = False,
        schema: Mapping[str, Any] | None = None,
        thinks: bool = False,
        num_predict: int = 0,
        stop: tuple[str, ...] = (),
        length: int | None = None,
    ) -> Generation:
        """The tokens generated (thinking only when ``thinks`` and not raw)."""
        return produce(
            self.prompt if thinks and not self.raw else None,
            self.answer(structured=structured, schema=schema),
            num_predict=num_predict,
            stop=stop,
            length=length,
        )

    def context_after(self, generation: Generation) -> list[int] | None:
        """The done line's ``context``; None in raw mode, where Ollama sends none."""
        if self.raw:
            return None
        generated = [*generation.thinking_tokens, *generation.content_tokens]
        return [
            *self.context,
            *(token_id(word) for word in self.seen().split()),
            *(token_id(token) for token in generated),
        ]
