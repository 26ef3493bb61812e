"""Answers of /api/chat and /api/generate, streamed or whole, with the faults applied.

A ``Generation`` becomes ``Piece`` s, one per streamed line: a token of thinking, a
token of the answer, or the tool calls (whole, in a line of their own), each with
its log probabilities when asked for. ``stream`` writes them paced by
``token_delay`` and ends with the done line; ``single`` waits as long as streaming
would have taken and answers once; ``answer`` does either, as the request's
``Answering`` asks. The endpoints give the line shapes; ``done_metrics`` is what
their done lines share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ollama_emulator.content import Generation
from ollama_emulator.inference import Exchange
from ollama_emulator.logprobs import logprob_entry
from ollama_emulator.models import THINKING, ModelSpec
from ollama_emulator.validation import GenerationOptions, format_error
from ollama_emulator.wire import metrics

_BATCH = 64
PROMPT_EVAL_NS_PER_TOKEN = 100_000


@dataclass(frozen=True)
class Answering:
    """What a valid chat or generate request asks of its answer, whatever it answers."""

    stream: bool
    thinks: bool
    structured: bool
    schema: dict[str, Any] | None
    format_error: str | None
    options: GenerationOptions
    top_logprobs: int | None

    @classmethod
    def of(
        cls,
        model: ModelSpec,
        fmt: Any,
        *,
        stream: bool | None,
        think: bool | str | None,
        options: GenerationOptions,
        top_logprobs: int | None,
    ) -> Answering:
        """From the request's ``format``, ``stream`` and ``think`` as sent (None: unset)."""
        return cls(
            stream=stream is not False,
            thinks=model.supports(THINKING) and (model.always_thinks or think is not False),
            structured=fmt not in (None, ""),
            schema=fmt if isinstance(fmt, dict) else None,
            format_error=format_error(fmt),
            options=options,
            top_logprobs=top_logprobs,
        )


@dataclass(frozen=True)
class Piece:
    """What one streamed line carries."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()
    logprobs: tuple[dict[str, Any], ...] = ()


def pieces(generation: Generation, top_logprobs: int | None) -> list[Piece]:
    """The lines of ``generation``; ``top_logprobs`` None: no log probabilities."""

    def probs(token: str) -> tuple[dict[str, Any], ...]:
        return () if top_logprobs is None else (logprob_entry(token, top_logprobs),)

    lines = [Piece(thinking=t, logprobs=probs(t)) for t in generation.thinking_tokens]
    lines += [Piece(content=t, logprobs=probs(t)) for t in generation.content_tokens]
    if generation.tool_calls:
        lines.append(Piece(tool_calls=generation.tool_calls))
    return lines


def all_logprobs(lines: list[Piece]) -> list[dict[str, Any]]:
    return [entry for line in lines for entry in line.logprobs]


LineFor = Callable[[Piece], dict[str, Any]]
Finish = Callable[[], dict[str, Any]]
Final = Callable[[bool, list[dict[str, Any]] | None], dict[str, Any]]
"""The done line: ``final(whole, logprobs)``; ``whole`` when it carries the whole answer
(not streamed), with all the log probabilities (None when not asked for)."""


async def answer(
    exchange: Exchange,
    generation: Generation,
    answering: Answering,
    *,
    line_for: LineFor,
    final: Final,
) -> None:
    """``generation`` streamed a piece a line, or answered whole by ``single``."""
    top_logprobs = answering.top_logprobs
    lines = pieces(generation, top_logprobs)
    if answering.stream:
        await stream(exchange, lines, line_for, lambda: final(False, None))
        return

    def whole() -> dict[str, Any]:
        return final(True, all_logprobs(lines) if top_logprobs is not None else None)

    await single(exchange, len(lines), whole)


def done_metrics(exchange: Exchange, prompt_tokens: int, generation: Generation) -> dict[str, int]:
    """The metrics of a chat or generate done line."""
    total_ns, load_ns, eval_ns = exchange.durations()
    return metrics(
        total_ns=total_ns,
        load_ns=load_ns,
        prompt_eval_count=prompt_tokens,
        prompt_eval_ns=prompt_tokens * PROMPT_EVAL_NS_PER_TOKEN,
        eval_count=generation.eval_count,
        eval_ns=eval_ns,
    )


async def stream(exchange: Exchange, lines: list[Piece], line_for: LineFor, final: Finish) -> None:
    """One NDJSON line per piece, ``token_delay`` before each, then ``final()``.

    ``cut_after_chunks``/``error_after_chunks`` count piece lines; a count past the
    last piece cuts or fails in place of the done line.
    """
    faults = exchange.faults
    cut_at = _position(faults.cut_after_chunks, len(lines))
    fail_at = _position(faults.error_after_chunks, len(lines))
    # Lines fall due at a fixed rate from the start, as a model generates tokens: time
    # spent writing one is not added to the wait for the next. Lines already due go
    # out together (up to _BATCH a write), so a fast answer is streamed fast.
    loop = asyncio.get_running_loop()
    due = loop.time()
    index = 0
    while True:
        if index == cut_at:
            await exchange.drop_connection()
            return
        if index == fail_at:
            await exchange.stream_error(faults.error_message)
            return
        if index == len(lines):
            break
        due += faults.token_delay
        if await exchange.pause(due - loop.time()):
            return
        end = index + 1
        limit = min(x for x in (len(lines), cut_at, fail_at, index + _BATCH) if x is not None)
        while end < limit and due + faults.token_delay <= loop.time():
            due += faults.token_delay
            end += 1
        await exchange.write_lines([line_for(lines[i]) for i in range(index, end)])
        index = end
    if exchange.client_gone():
        return
    await exchange.write_line(final())
    await exchange.end_stream()


def _position(count: int | None, length: int) -> int | None:
    return None if count is None else min(max(count, 0), length)


async def single(exchange: Exchange, produced: int, answer: Finish) -> None:
    """The whole answer at once, after as long as streaming ``produced`` lines would take."""
    faults = exchange.faults
    for limit in (faults.cut_after_chunks, faults.error_after_chunks):
        if limit is not None:
            produced = min(produced, limit)
    if await exchange.pause(faults.token_delay * produced):
        return
    if await answered_by_fault(exchange):
        return
    await exchange.send_json(200, answer())


async def answered_by_fault(exchange: Exchange) -> bool:
    """Applies the mid-response faults to an answer sent whole; True if they answered
    (``cut_after_chunks`` drops the connection, ``error_after_chunks`` answers 500)."""
    faults = exchange.faults
    if faults.cut_after_chunks is not None:
        await exchange.drop_connection()
        return True
    if faults.error_after_chunks is not None:
        await exchange.send_json(500, {"error": faults.error_message})
        return True
    return False
