"""GET /usage: the Usage RPC over HTTP, as JSON or (``Accept: text/csv``) CSV.

``since`` and ``until`` are ISO 8601 times (``2026-11-30``, ``2026-11-30T12:00:00Z``;
without an offset, UTC); ``group_by`` is ``caller``, ``model`` or ``day``, several
separated by commas (or the parameter repeated).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.backend import PROBE_DEADLINE, backend, metadata
from rest_shim.errors import ShimError
from rest_shim.fastjson import JSONResponse
from rest_shim.openapi_parts import BOOL, INT, NUM, STR, Schema, array, json_answer, obj, ref

GROUPS = {
    "caller": pb.USAGE_GROUP_CALLER,
    "model": pb.USAGE_GROUP_MODEL,
    "day": pb.USAGE_GROUP_DAY,
}
KEYS = ("caller", "model", "day")
SUMS = (
    "requests",
    "prompt_tokens",
    "response_tokens",
    "failures",
    "cancellations",
    "average_duration_ms",
)
PARAMETERS = {"since", "until", "group_by"}


def _time(name: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ShimError(
            400, "invalid_argument", f"{name}: not an ISO 8601 time: {text[:64]!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def usage_request(request: Request) -> tuple[pb.UsageRequest, list[str]]:
    query = request.query_params
    unknown = sorted(set(query) - PARAMETERS)
    if unknown:
        raise ShimError(400, "invalid_argument", f"unknown parameter {unknown[0][:64]!r}")
    rpc = pb.UsageRequest()
    for name in ("since", "until"):
        values = query.getlist(name)
        if len(values) > 1:
            raise ShimError(400, "invalid_argument", f"{name}: give it once")
        if values:
            stamp = getattr(rpc, name)
            stamp.FromDatetime(_time(name, values[0]))
    grouped: list[str] = []
    for value in query.getlist("group_by"):
        for name in filter(None, (part.strip() for part in value.split(","))):
            if name not in GROUPS:
                raise ShimError(
                    400, "invalid_argument", "group_by: caller, model or day (comma-separated)"
                )
            if name not in grouped:
                grouped.append(name)
    rpc.group_by.extend(GROUPS[name] for name in grouped)
    return rpc, grouped


def _row(row: pb.UsageRow, grouped: list[str]) -> dict[str, Any]:
    plain: dict[str, Any] = {key: getattr(row, key) if key in grouped else None for key in KEYS}
    plain.update({key: getattr(row, key) for key in SUMS})
    plain["average_duration_ms"] = round(row.average_duration_ms, 3)
    return plain


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a model name such as
    ``=HYPERLINK(...)`` sent by anyone) is kept as text, as OWASP advises."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


async def usage(request: Request) -> Response:
    b = backend(request)
    rpc, grouped = usage_request(request)
    reply = await b.stub.Usage(rpc, timeout=PROBE_DEADLINE, metadata=metadata(request))
    rows = [_row(row, grouped) for row in reply.rows]
    if _wants_csv(request):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        columns = [*grouped, *SUMS]
        writer.writerow(columns)
        writer.writerows([_cell(row[c]) for c in columns] for row in rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse(
        {
            "since": reply.since.ToDatetime(tzinfo=UTC).isoformat(),
            "until": reply.until.ToDatetime(tzinfo=UTC).isoformat(),
            "group_by": grouped,
            "store": reply.store,
            "all_callers": reply.all_callers,
            "rows": rows,
        }
    )


def usage_openapi(secured: list[Schema]) -> tuple[dict[str, Schema], dict[str, Schema]]:
    """The OpenAPI path and schemas of GET /usage."""

    def query(name: str, description: str) -> Schema:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": STR,
        }

    text = {"type": "string", "nullable": True}
    row = {
        "type": "object",
        "properties": {
            **{key: text for key in KEYS},
            **{key: INT for key in SUMS[:-1]},
            "average_duration_ms": NUM,
        },
    }
    reply = obj(
        since={"type": "string", "format": "date-time"},
        until={"type": "string", "format": "date-time"},
        group_by=array(STR),
        store=STR,
        all_callers=BOOL,
        rows=array(ref("UsageRow")),
    )
    ok = json_answer("UsageReply", "the rows (the caller's own unless it is an admin)")
    ok["content"]["text/csv"] = {"schema": STR}
    operation = {
        "operationId": "usage",
        "summary": "Usage from the ledger, summed by caller, model and/or day",
        "security": secured,
        "parameters": [
            query("since", "ISO 8601; default: seven days before until"),
            query("until", "ISO 8601; default: now"),
            query("group_by", "caller, model and/or day, comma-separated"),
        ],
        "responses": {
            "200": ok,
            "400": json_answer(
                "Error", "a bad time or group, or the ledger is off (LLM_LEDGER=false)"
            ),
            "401": json_answer("Error", "missing or wrong API key"),
            "503": json_answer("Error", "the gRPC server or the ledger's store cannot be reached"),
        },
    }
    return {"/usage": {"get": operation}}, {"UsageRow": row, "UsageReply": reply}
