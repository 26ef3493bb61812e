"""What every RPC does around its own work: time it, log one line, record its outcome,
and turn domain errors into a gRPC status (code, message, machine-readable code).

Unexpected exceptions are logged with their traceback and reach the caller only as
INTERNAL "internal error": never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from server.errors import ERROR_CODE_KEY, RETRY_AFTER_KEY, LlmError, OllamaTimeout, Overloaded
from server.stats import Outcome, RequestRecord, StatsRecorder

log = logging.getLogger("llm.requests")

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass
class Call:
    category: str
    method: str
    started: float
    timeout: float
    model: str = ""
    prompt_tokens: int = 0
    response_tokens: int = 0
    stream: bool = False
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    # Whether the model is known to exist: unknown names are folded in the stats.
    model_known: bool = True

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def remaining(self) -> float:
        """Seconds left of this call's time budget (never below a millisecond)."""
        return max(0.001, self.timeout - (time.perf_counter() - self.started))


class CallTracker:
    def __init__(self, stats: StatsRecorder, timeout: float) -> None:
        self._stats = stats
        self._timeout = timeout

    def deadline(self, context: Context) -> float:
        """Seconds this call may take: OLLAMA_TIMEOUT, or less when the caller's
        gRPC deadline comes sooner."""
        remaining = context.time_remaining()
        if remaining is None:
            return self._timeout
        return max(0.001, min(self._timeout, remaining))

    @asynccontextmanager
    async def track(
        self, category: str, method: str, context: Context, *, counted: bool = True
    ) -> AsyncIterator[Call]:
        call = Call(category, method, time.perf_counter(), self.deadline(context))
        try:
            yield call
        except asyncio.CancelledError:
            self._finish(call, Outcome.CANCELLED, "cancelled", counted)
            raise
        except LlmError as exc:
            await self._abort(call, exc, context, counted)
        except TimeoutError:
            timeout = OllamaTimeout(
                f"overall timeout: Ollama did not finish answering with model "
                f"'{call.model}' within {call.timeout:g} s"
            )
            await self._abort(call, timeout, context, counted)
        except Exception:
            log.exception("%s %s failed unexpectedly", call.category, call.method)
            self._finish(call, Outcome.FAILURE, "internal", counted)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                "internal error",
                trailing_metadata=((ERROR_CODE_KEY, "internal"),),
            )
        else:
            self._finish(call, Outcome.SUCCESS, "", counted)

    async def _abort(self, call: Call, exc: LlmError, context: Context, counted: bool) -> None:
        if exc.code in ("invalid_argument", "model_not_found"):
            call.model_known = False
        self._finish(call, Outcome.FAILURE, exc.code, counted, detail=exc.message)
        trailers: tuple[tuple[str, str], ...] = ((ERROR_CODE_KEY, exc.code),)
        if isinstance(exc, Overloaded):
            trailers += ((RETRY_AFTER_KEY, f"{exc.retry_after:g}"),)
        await context.abort(exc.grpc_code, exc.message, trailing_metadata=trailers)

    def _finish(
        self, call: Call, outcome: Outcome, code: str, counted: bool, detail: str = ""
    ) -> None:
        ms = call.elapsed_ms()
        if counted:
            self._stats.record(
                RequestRecord(
                    method=call.method,
                    model=call.model if call.model_known else "",
                    outcome=outcome,
                    duration_ms=ms,
                    error_code=code,
                    prompt_tokens=call.prompt_tokens,
                    response_tokens=call.response_tokens,
                    stream=call.stream,
                    time_to_first_token_ms=call.time_to_first_token_ms,
                    tokens_per_second=call.tokens_per_second,
                )
            )
        level = logging.INFO if outcome is not Outcome.FAILURE else logging.WARNING
        if code in ("invalid_argument",):
            level = logging.INFO
        parts = [
            call.category,
            call.method,
            f"model={call.model or '-'}",
            f"outcome={outcome.value}",
            f"ms={ms:.1f}",
        ]
        if call.prompt_tokens or call.response_tokens:
            parts.append(f"tokens={call.prompt_tokens}+{call.response_tokens}")
        if call.time_to_first_token_ms is not None:
            parts.append(f"ttft_ms={call.time_to_first_token_ms:.1f}")
        if call.tokens_per_second is not None:
            parts.append(f"tok_s={call.tokens_per_second:.1f}")
        if code:
            parts.append(f"code={code}")
        if detail:
            parts.append(f"detail={detail!r}")
        log.log(level, " ".join(parts))
