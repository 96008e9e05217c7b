"""Minimal example values for JSON schemas, used by the fake vendors to answer structured requests."""

from __future__ import annotations

from typing import Any


def example_for_schema(schema: Any) -> Any:
    """Build a minimal value that satisfies a (simple) JSON schema.

    Objects get their required properties, recursively; strings are ``"ok"``, numbers ``0``,
    booleans ``false``, arrays hold `minItems` items; `enum` and `const` take their first value;
    `anyOf`/`oneOf`/`allOf` use their first branch. Type names are compared case-insensitively, so
    Gemini's OpenAPI-style schemas (``"OBJECT"``, ``"STRING"``) work too.

    Args:
        schema: A JSON schema (a dict; anything else yields None).

    Returns:
        A JSON-serialisable value.
    """
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    kind = str(kind).lower()
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_for_schema(properties.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [example_for_schema(schema.get("items", {})) for _ in range(count)]
    if kind == "string":
        return "ok"
    if kind in ("number", "integer"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None
