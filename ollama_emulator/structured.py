"""What a model constrained by a JSON schema answers: ``schema_instance(schema, text)``.

Ollama turns a ``format`` schema into a grammar, so its answer always validates. The
emulator builds one deterministic instance instead, from the schema and a text (the
prompt):

* ``$ref`` (a JSON pointer into the root schema, as in "#/$defs/Item" that pydantic
  emits for nested models) is followed; ``allOf`` parts are merged.
* ``const`` gives its value; ``enum`` its first value.
* ``anyOf``/``oneOf`` take the first option that is not ``{"type": "null"}``; a list
  of types its first type other than "null".
* objects (or schemas with ``properties`` and no type): every listed property, in
  order, each built recursively; ``additionalProperties`` adds nothing.
* strings: the text, padded with "x" up to ``minLength``, cut at ``maxLength``; the
  formats date-time, date, time, email, uri and uuid get a fixed valid value
  (``uuid`` derived from the text). ``pattern`` is not honoured.
* integers: the number of words in the text, moved into
  ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` and up to a
  ``multipleOf``; numbers: the same count as a float (the middle of an open range
  that does not hold it).
* booleans are true, null is null.
* arrays: one item (``minItems`` items when it asks for more, none when
  ``maxItems`` is 0); ``prefixItems`` one of each.
* a schema without type or keywords (``{}``, ``true``) gives the text.

A recursive schema (a ``$ref`` met again inside itself) stops growing: inside it,
arrays hold only ``minItems`` items, ``anyOf`` prefers its null option, and objects
keep only their required properties.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
}
_MAX_DEPTH = 64


def schema_instance(schema: Any, text: str, *, root: Any = None) -> Any:
    """A JSON value valid against ``schema`` (see the module docstring).

    ``root`` is the document ``$ref`` pointers resolve in (``schema`` itself by
    default; give the whole tool ``parameters`` when building one property).
    """
    return _Builder(schema if root is None else root, text).build(schema, (), False, 0)


class _Builder:
    def __init__(self, root: Any, text: str) -> None:
        self.root = root
        self.text = text
        self.words = len(text.split())

    def build(self, schema: Any, refs: tuple[str, ...], recursive: bool, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            return None
        if not isinstance(schema, Mapping):
            return self.text if schema is not False else None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.resolve(ref)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            merged = {**target, **rest} if isinstance(target, Mapping) else rest
            return self.build(merged, (*refs, ref), recursive or ref in refs, depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if isinstance(part, Mapping):
                    part = self.build_ref_target(part)
                    merged = {**part, **merged}
            return self.build(merged, refs, recursive, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                chosen = self.choose(options, recursive)
                return self.build(chosen, refs, recursive, depth + 1)
        kind = self.kind(schema)
        args = (refs, recursive, depth + 1)
        if kind == "object":
            return self.object(schema, *args)
        if kind == "array":
            return self.array(schema, *args)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self.string(schema)

    def build_ref_target(self, part: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = part.get("$ref")
        target = self.resolve(ref) if isinstance(ref, str) else part
        return target if isinstance(target, Mapping) else {}

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node = self.root
        for raw in ref[1:].split("/")[1:]:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node

    @staticmethod
    def is_null(option: Any) -> bool:
        return isinstance(option, Mapping) and option.get("type") == "null"

    def choose(self, options: list[Any], recursive: bool) -> Any:
        if recursive:
            nulls = [o for o in options if self.is_null(o)]
            if nulls:
                return nulls[0]
        return next((o for o in options if not self.is_null(o)), options[0])

    @staticmethod
    def kind(schema: Mapping[str, Any]) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null" if kind else None)
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    def object(
        self, schema: Mapping[str, Any], refs: tuple[str, ...], recursive: bool, depth: int
    ) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        required = schema.get("required")
        wanted = set(required) if isinstance(required, list) else set()
        return {
            name: self.build(prop, refs, recursive, depth)
            for name, prop in properties.items()
            if not recursive or name in wanted
        }

    def array(
        self, schema: Mapping[str, Any], refs: tuple[str, ...], recursive: bool, depth: int
    ) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [self.build(item, refs, recursive, depth) for item in prefix]
        low = _int(schema.get("minItems"), 0)
        count = max(low, 0 if recursive else 1)
        high = schema.get("maxItems")
        if isinstance(high, int) and not isinstance(high, bool):
            count = min(count, high)
        items = schema.get("items", {})
        return [self.build(items, refs, recursive, depth) for _ in range(count)]

    def string(self, schema: Mapping[str, Any]) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, self.text))
        value = _FORMATS.get(fmt, self.text) if isinstance(fmt, str) else self.text
        low = _int(schema.get("minLength"), 0)
        if len(value) < low:
            value += "x" * (low - len(value))
        high = schema.get("maxLength")
        if isinstance(high, int) and not isinstance(high, bool):
            value = value[: max(high, 0)]
        return value

    def integer(self, schema: Mapping[str, Any]) -> int:
        low, high = -math.inf, math.inf
        if _number(schema.get("minimum")):
            low = math.ceil(schema["minimum"])
        if _number(schema.get("exclusiveMinimum")):
            low = max(low, math.floor(schema["exclusiveMinimum"]) + 1)
        if _number(schema.get("maximum")):
            high = math.floor(schema["maximum"])
        if _number(schema.get("exclusiveMaximum")):
            high = min(high, math.ceil(schema["exclusiveMaximum"]) - 1)
        value = int(min(max(self.words, low), high))
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            value = -(-value // step) * step
        return value

    def number(self, schema: Mapping[str, Any]) -> float:
        value = float(self.words)
        low = schema.get("minimum") if _number(schema.get("minimum")) else None
        high = schema.get("maximum") if _number(schema.get("maximum")) else None
        open_low = schema.get("exclusiveMinimum")
        open_high = schema.get("exclusiveMaximum")
        lower = open_low if _number(open_low) else low
        upper = open_high if _number(open_high) else high
        fits_low = lower is None or value > lower or (value == lower and lower == low)
        fits_high = upper is None or value < upper or (value == upper and upper == high)
        if fits_low and fits_high:
            return value
        if lower is not None and upper is not None:
            return (float(lower) + float(upper)) / 2
        if lower is not None:
            return float(lower) + 1
        assert upper is not None
        return float(upper) - 1


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
