"""The Usage RPC: the ledger's rows summed over a time range, grouped by caller, model
and/or day. A caller reads its own rows; an admin caller (and "anonymous", when the
service has no keys) reads everyone's."""

from __future__ import annotations

import logging
import time

from google.protobuf.timestamp_pb2 import Timestamp

from generated.llm.v1 import llm_service_pb2 as pb
from server.errors import InvalidArgument, LedgerOff, LedgerUnavailable
from server.usage.callers import Caller
from server.usage.ledger import Ledger

log = logging.getLogger("llm.usage")

DEFAULT_DAYS = 7
FLUSH_WAIT = 1.0
GROUP_NAMES = {
    pb.USAGE_GROUP_CALLER: "caller",
    pb.USAGE_GROUP_MODEL: "model",
    pb.USAGE_GROUP_DAY: "day",
}
# Newer than this is a mistake (milliseconds given as seconds, say), not a range.
LATEST = 253402300799  # 9999-12-31T23:59:59Z


def window(request: pb.UsageRequest, now: float) -> tuple[float, float]:
    until = _seconds(request.until, "until") if request.HasField("until") else now
    since = (
        _seconds(request.since, "since")
        if request.HasField("since")
        else until - DEFAULT_DAYS * 86400.0
    )
    if since >= until:
        raise InvalidArgument("since must be before until", field="since")
    return since, until


def _seconds(stamp: Timestamp, name: str) -> float:
    seconds = float(stamp.seconds) + stamp.nanos / 1e9
    if not 0 <= stamp.nanos < 1_000_000_000 or not 0 <= seconds <= LATEST:
        raise InvalidArgument(f"{name} must be a time between 1970 and 9999", field=name)
    return seconds


def groups(request: pb.UsageRequest) -> list[str]:
    names: list[str] = []
    for i, group in enumerate(request.group_by):
        name = GROUP_NAMES.get(group)
        if name is None:
            raise InvalidArgument("group_by must be caller, model or day", field=f"group_by[{i}]")
        if name not in names:
            names.append(name)
    return names


async def usage(
    ledger: Ledger | None, caller: Caller, request: pb.UsageRequest
) -> pb.UsageResponse:
    since, until = window(request, time.time())
    group_by = groups(request)
    if ledger is None:
        raise LedgerOff("the usage ledger is off (LLM_LEDGER=false)")
    await ledger.flushed(FLUSH_WAIT)  # this replica's latest requests included
    try:
        rows = await ledger.store.usage(
            since, until, group_by, None if caller.admin else caller.name
        )
    except Exception as exc:  # the store's driver errors, whatever the store
        log.warning("USAGE query failed: %s", exc)
        raise LedgerUnavailable(f"the {ledger.store.name} usage store did not answer") from None
    reply = pb.UsageResponse(store=ledger.store.name, all_callers=caller.admin)
    reply.since.FromNanoseconds(round(since * 1e9))
    reply.until.FromNanoseconds(round(until * 1e9))
    for row in rows:
        if not row["requests"]:
            continue  # the totals of an empty range
        reply.rows.add(
            caller=row.get("caller") or "",
            model=row.get("model") or "",
            day=str(row.get("day") or ""),
            requests=int(row["requests"]),
            prompt_tokens=int(row["prompt_tokens"] or 0),
            response_tokens=int(row["response_tokens"] or 0),
            failures=int(row["failures"] or 0),
            cancellations=int(row["cancellations"] or 0),
            average_duration_ms=float(row["average_duration_ms"] or 0.0),
        )
    return reply
