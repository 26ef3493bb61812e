"""What every RPC does around its own work: time it, log one line, record its outcome,
and turn domain errors into a gRPC status (code, message, and the trailers of
``server.rich_errors``: machine-readable code, field, and the rich error model).

Unexpected exceptions are logged with their traceback and reach the caller only as
INTERNAL "internal error": never a stack trace.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from server.errors import LlmError, OllamaTimeout
from server.logs import FACE_KEY, FACES, REQUEST_ID_HEADER, new_request_id, request_id
from server.metrics import Metrics
from server.rich_errors import trailers
from server.stats import Outcome, RequestRecord, StatsRecorder
from server.usage.callers import ANONYMOUS, Caller, Callers
from server.usage.ledger import Ledger
from server.usage.store import Row

log = logging.getLogger("llm.requests")

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


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
    # Whether the model reasons on a budget of its own (LLM_REASONING_BUDGET).
    reasoning: bool = False
    # The model asked for, when a fallback (model) answers instead.
    fallback_from: str = ""
    caller: Caller = ANONYMOUS
    # The face the request came through: grpc, rest, openai or ollama.
    face: str = "grpc"
    # The upstream host that answered.
    host: str = ""
    # When the call started, Unix seconds (for the ledger).
    wall_start: float = 0.0
    request_id: str = "-"

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def remaining(self) -> float:
        """Seconds left of this call's time budget (never below a millisecond)."""
        return max(0.001, self.timeout - (time.perf_counter() - self.started))


# The call in progress in this task, for the layers below that know what it needs to
# know (the host that answered).
current_call: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "current_call", default=None
)


class CallTracker:
    def __init__(
        self,
        stats: StatsRecorder,
        metrics: Metrics,
        timeout: float,
        callers: Callers,
        ledger: Ledger | None = None,
    ) -> None:
        self._stats = stats
        self._metrics = metrics
        self._timeout = timeout
        self._callers = callers
        self._ledger = ledger

    def deadline(self, context: Context) -> float:
        """Seconds this call may take: OLLAMA_TIMEOUT, or less when the caller's
        gRPC deadline comes sooner."""
        remaining = context.time_remaining()
        if remaining is None:
            return self._timeout
        return max(0.001, min(self._timeout, remaining))

    @asynccontextmanager
    async def track(
        self,
        category: str,
        method: str,
        context: Context,
        *,
        counted: bool = True,
        wrapper: str = "",
    ) -> AsyncIterator[Call]:
        """Every way out of the block ends the call exactly once: success, failure (by
        code) or cancellation. Anything that is neither success nor an error
        (cancellation, a task torn down, a generator closed) counts as cancelled.

        ``wrapper`` is the field of the RPC's request that holds the request checked
        inside (``request`` of ChatStreamRequest): an invalid field's path starts with it.
        """
        call = Call(category, method, time.perf_counter(), self.deadline(context))
        call.request_id, call.face, authorization = _metadata(context)
        call.caller = self._callers.identify(authorization)
        call.wall_start = time.time()
        token = request_id.set(call.request_id)
        call_token = current_call.set(call)
        try:
            yield call
        except LlmError as exc:
            if wrapper and exc.field:
                exc.field = f"{wrapper}.{exc.field}"
            await self._abort(call, exc, context, counted)
        except TimeoutError:
            timeout = OllamaTimeout(
                f"overall timeout: the answer with model '{call.model}' did not finish "
                f"within {call.timeout:g} s"
            )
            await self._abort(call, timeout, context, counted)
        except Exception:
            log.exception("%s %s failed unexpectedly", call.category, call.method)
            self._finish(call, Outcome.FAILURE, "internal", counted, status="INTERNAL")
            internal = LlmError("internal error")
            await context.abort(
                internal.grpc_code,
                internal.message,
                trailing_metadata=trailers(internal, call.request_id),
            )
        except BaseException:  # CancelledError, GeneratorExit
            self._finish(call, Outcome.CANCELLED, "cancelled", counted, status="CANCELLED")
            raise
        else:
            self._finish(call, Outcome.SUCCESS, "", counted)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, call.request_id),))
        finally:
            _reset(request_id, token)
            _reset(current_call, call_token)

    async def _abort(self, call: Call, exc: LlmError, context: Context, counted: bool) -> None:
        if exc.code in ("invalid_argument", "model_not_found"):
            call.model_known = False
        self._finish(
            call, Outcome.FAILURE, exc.code, counted, detail=exc.message, status=exc.grpc_code.name
        )
        await context.abort(
            exc.grpc_code, exc.message, trailing_metadata=trailers(exc, call.request_id)
        )

    def _finish(
        self,
        call: Call,
        outcome: Outcome,
        code: str,
        counted: bool,
        detail: str = "",
        status: str = "OK",
    ) -> None:
        ms = call.elapsed_ms()
        if counted:
            if outcome is Outcome.SUCCESS:
                self._metrics.answered(call.model)
            record = RequestRecord(
                method=call.method,
                model=self._metrics.label(call.model if call.model_known else ""),
                outcome=outcome,
                duration_ms=ms,
                error_code=code,
                prompt_tokens=call.prompt_tokens,
                response_tokens=call.response_tokens,
                stream=call.stream,
                time_to_first_token_ms=call.time_to_first_token_ms,
                tokens_per_second=call.tokens_per_second,
                fallback_from=self._metrics.label(call.fallback_from) if call.fallback_from else "",
                caller=call.caller.name,
                request_id=call.request_id,
                host=call.host,
                status=status,
            )
            self._stats.record(record)
            self._metrics.observe(record, status)
        if self._ledger is not None:
            self._ledger.record(
                Row(
                    at=call.wall_start,
                    caller=call.caller.name,
                    face=call.face,
                    method=call.method,
                    model=call.model,
                    host=call.host,
                    prompt_tokens=call.prompt_tokens,
                    response_tokens=call.response_tokens,
                    duration_ms=ms,
                    ttft_ms=call.time_to_first_token_ms,
                    outcome=outcome.value,
                    error_code=code,
                    request_id=call.request_id,
                )
            )
        failed = outcome is Outcome.FAILURE and code != "invalid_argument"
        level = logging.WARNING if failed else logging.INFO
        if not log.isEnabledFor(level):
            return
        fields: dict[str, object] = {
            "category": call.category,
            "method": call.method,
            "request_id": call.request_id,
            "caller": call.caller.name,
            "face": call.face,
            "model": call.model or "-",
            "outcome": outcome.value,
            "ms": round(ms, 1),
        }
        if call.prompt_tokens or call.response_tokens:
            fields["prompt_tokens"] = call.prompt_tokens
            fields["response_tokens"] = call.response_tokens
        if call.time_to_first_token_ms is not None:
            fields["ttft_ms"] = round(call.time_to_first_token_ms, 1)
        if call.tokens_per_second is not None:
            fields["tokens_per_second"] = round(call.tokens_per_second, 1)
        if code:
            fields["code"] = code
        if detail:
            fields["detail"] = detail
        log.log(
            level, "%s %s %s", call.category, call.method, outcome.value, extra={"fields": fields}
        )


def _reset(var: contextvars.ContextVar[T], token: contextvars.Token[T]) -> None:
    """Restores ``var`` as the caller's context had it. A block left from another
    context (an abandoned generator finalised elsewhere) cannot reset it, and must not
    fail because of it: that context's value is simply left."""
    with contextlib.suppress(ValueError):
        var.reset(token)


def _metadata(context: Context) -> tuple[str, str, str | None]:
    """The request id (the caller's when sane, else a new one), the face the request
    came through (the REST shim says which; gRPC otherwise), and the authorization."""
    offered, face, authorization = None, "grpc", None
    for key, value in context.invocation_metadata() or ():
        text = value if isinstance(value, str) else value.decode(errors="replace")
        if key == REQUEST_ID_HEADER:
            offered = text
        elif key == FACE_KEY and text in FACES:
            face = text
        elif key == "authorization":
            authorization = text
    return new_request_id(offered), face, authorization
