"""Deterministic log probabilities, for requests with ``logprobs: true``.

As Ollama's api.Logprob marshals them: every generated token (thinking and answer
alike; not the text of tool calls) gets ``{"token", "logprob", "bytes"}``, plus
``top_logprobs`` when the request asks for ``top_logprobs`` > 0 (at most 20):

* ``logprob`` is ``token_logprob(token)``: -(1 + (first byte of SHA-256 of the
  token) mod 100) / 100, between -1.0 and -0.01.
* ``bytes`` is the token's UTF-8 bytes.
* ``top_logprobs`` lists ``n`` alternatives, most likely first: the token itself,
  then "<alt1>", "<alt2>", ..., each 1.0 less likely than the one before.

Streamed, each chunk carries the logprobs of the tokens in it; a single answer
carries them all, in order.
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_TOP_LOGPROBS = 20


def token_logprob(token: str) -> float:
    return -(1 + hashlib.sha256(token.encode()).digest()[0] % 100) / 100


def _token_entry(token: str, logprob: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"token": token, "logprob": logprob}
    if token:
        entry["bytes"] = list(token.encode())
    return entry


def logprob_entry(token: str, top: int = 0) -> dict[str, Any]:
    """The api.Logprob of one generated ``token`` with ``top`` alternatives."""
    logprob = token_logprob(token)
    entry = _token_entry(token, logprob)
    if top > 0:
        alternatives = [_token_entry(token, logprob)]
        alternatives += [_token_entry(f"<alt{i}>", logprob - i) for i in range(1, top)]
        entry["top_logprobs"] = alternatives
    return entry
