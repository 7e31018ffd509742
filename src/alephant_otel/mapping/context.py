"""Where a span's Alephant context comes from: the carriers, sorted into precedence tiers.

A span's context is four dicts ("tiers"), highest precedence first:

  0 SPAN_ALEPHANT      `alephant.*` span attributes (baggage arrives this way) and captured
                       HTTP headers on the span (`http.request.header.<name>`)
  1 OUTER_ALEPHANT     `alephant.*` resource attributes, then the export call's headers
                       (resource wins over the export call)
  2 SPAN_FOREIGN       foreign conventions on the span (e.g. `gen_ai.conversation.id`)
  3 OUTER_FOREIGN      foreign conventions on the resource

Each tier is {field: value, ..., "properties": {name: value}}. Inheritance (`inherit.py`) merges
each tier with the nearest ancestor's, and the resolved value of a field is the first tier that
has it. So an explicit Alephant carrier beats a foreign one wherever it is, the span beats its
ancestors within a tier, and an ancestor's span attributes beat the span's resource and export
call.
"""
from __future__ import annotations

from typing import Any

from ..semconv import CONTEXT_ATTRIBUTES, PROPERTY_PREFIX
from . import headers

SPAN_ALEPHANT, OUTER_ALEPHANT, SPAN_FOREIGN, OUTER_FOREIGN = range(4)
N_TIERS = 4


def _text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return headers.header_value(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _put(ctx: dict, attr: str, value: Any) -> bool:
    """Put one Alephant attribute into a tier dict; True when the key was an Alephant key."""
    field = CONTEXT_ATTRIBUTES.get(attr)
    if field is not None:
        v = _text(value)
        if v is not None:
            ctx[field] = v
        return True
    if attr.startswith(PROPERTY_PREFIX) and len(attr) > len(PROPERTY_PREFIX):
        v = _text(value)
        if v is not None:
            ctx.setdefault("properties", {})[attr[len(PROPERTY_PREFIX):]] = v
        return True
    return False


def alephant_context(attrs: dict[str, Any], consumed: set[str]) -> dict:
    """Alephant context from a span's or resource's attributes: `alephant.*` keys and captured
    headers. Explicit `alephant.*` attributes beat headers. Secret headers are consumed (dropped)."""
    ctx: dict = {}
    explicit: list[tuple[str, Any]] = []
    captured: list[tuple[int, str, str, Any]] = []
    for key, value in attrs.items():
        if key.startswith("alephant."):
            explicit.append((key, value))
        elif key.startswith(headers.SPAN_HEADER_PREFIXES):
            name = key.split(".", 3)[3]
            if headers.is_secret(name):
                consumed.add(key)
                continue
            attr = headers.attribute_for(name)
            if attr is not None:
                captured.append((headers.rank(name), key, attr, value))
    for _, key, attr, value in sorted(captured, key=lambda c: -c[0]):  # the header table's first wins
        if _put(ctx, attr, headers.header_value(value)):
            consumed.add(key)
    for key, value in explicit:
        if _put(ctx, key, value):
            consumed.add(key)
    return ctx


def request_context(metadata: Any) -> dict:
    """Alephant context from the export call's headers (gRPC metadata or HTTP headers)."""
    ctx: dict = {}
    if not metadata:
        return ctx
    for attr, value in headers.attributes_from_headers(metadata).items():
        _put(ctx, attr, value)
    return ctx


def merge(low: dict, high: dict) -> dict:
    """`high` over `low`, properties merged name by name. May return one of its arguments
    (tier dicts are not changed once built)."""
    if not low:
        return high
    if not high:
        return low
    out = {**low, **high}
    if "properties" in low and "properties" in high:
        out["properties"] = {**low["properties"], **high["properties"]}
    return out
