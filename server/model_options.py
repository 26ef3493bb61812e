"""Ollama's model options of a request: the typed ones (``ModelOptions``' own fields),
checked one by one, and the pass-through ``extra`` ones, checked against the types
Ollama gives its options, each rejection an ``InvalidArgument`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from server.errors import InvalidArgument, quoted
from server.validation import bounded_plain


def options(req_options: pb.ModelOptions) -> dict[str, Any]:
    """The typed model options, then the pass-through ones (never overriding a typed
    one or the common settings, which the request holds in fields of their own)."""
    out: dict[str, Any] = {}
    if req_options.extra.fields:
        extra = bounded_plain(req_options.extra, "options.extra")
        for key, value in extra.items():
            _check_option(key, value)
        out.update(extra)
    for name in ("num_ctx", "top_k"):
        if req_options.HasField(name):
            value = getattr(req_options, name)
            if value <= 0:
                raise InvalidArgument(
                    f"options.{name} must be above 0, got {value}", field=f"options.{name}"
                )
            out[name] = value
    for field in ("min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        if req_options.HasField(field):
            value = getattr(req_options, field)
            if not math.isfinite(value):
                raise InvalidArgument(
                    f"options.{field} must be a finite number", field=f"options.{field}"
                )
            out[field] = value
    return out


# Ollama's own options and their types (api/types.go Options and Runner): a wrong type
# is a 500 from Ollama, so it is refused here. Other keys pass; Ollama ignores them.
_OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys(
        (
            "num_keep",
            "seed",
            "num_predict",
            "top_k",
            "repeat_last_n",
            "mirostat",
            "num_ctx",
            "num_batch",
            "num_gpu",
            "main_gpu",
            "num_thread",
        ),
        "integer",
    ),
    **dict.fromkeys(
        (
            "top_p",
            "min_p",
            "typical_p",
            "temperature",
            "repeat_penalty",
            "presence_penalty",
            "frequency_penalty",
            "mirostat_tau",
            "mirostat_eta",
            "tfs_z",
        ),
        "number",
    ),
    **dict.fromkeys(
        (
            "penalize_newline",
            "numa",
            "low_vram",
            "f16_kv",
            "logits_all",
            "vocab_only",
            "use_mmap",
            "use_mlock",
        ),
        "boolean",
    ),
    "stop": "array of strings",
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_IS_KIND: dict[str, Callable[[Any], bool]] = {
    "integer": lambda v: _number(v) and float(v).is_integer() and abs(v) < 2**63,
    "number": _number,
    "boolean": lambda v: isinstance(v, bool),
    "array of strings": lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
}


def _check_option(key: str, value: Any) -> None:
    kind = _OPTION_TYPES.get(key)
    if kind is None or value is None:
        return
    if not _IS_KIND[kind](value):
        raise InvalidArgument(
            f'option "{key}" must be of type {kind}, got {quoted(value)}',
            field=f"options.extra.{key}",
        )
