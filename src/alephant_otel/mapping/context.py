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


def alephant_context(attrs: dict[str, Any], consumed: set[str], shape: tuple | None = None) -> dict:
    """Alephant context from a span's or resource's attributes: `alephant.*` keys and captured
    headers. Explicit `alephant.*` attributes beat headers. Secret headers are consumed (dropped).
    `shape` is `tuple(attrs)` when the caller has it already."""
    dropped, carriers = _plan(tuple(attrs) if shape is None else shape)
    consumed.update(dropped)  # secret headers, and every Alephant carrier even when empty
    ctx: dict = {}
    for key, field, prop, is_header in carriers:  # headers first (table order), explicit last
        v = headers.header_value(attrs[key]) if is_header else _text(attrs[key])
        if v is None:
            continue
        if field is not None:
            ctx[field] = v
        else:
            ctx.setdefault("properties", {})[prop] = v
    return ctx


_PLANS: dict[tuple, tuple] = {}
_MAX_SHAPES = 4096


def _plan(shape: tuple) -> tuple:
    """For attributes with exactly these keys: (the keys consumed whatever their values: secret
    headers and carriers; the carriers in the order they are applied, each (key, context field
    or None, property name or None, is a header)). Made once per key shape."""
    plan = _PLANS.get(shape)
    if plan is not None:
        return plan
    secrets: list[str] = []
    explicit: list[tuple] = []
    captured: list[tuple] = []
    for key in shape:
        if key.startswith("alephant."):
            target = _target(key)
            if target is not None:
                explicit.append((key, *target, False))
        elif key.startswith(headers.SPAN_HEADER_PREFIXES):
            name = key.split(".", 3)[3]
            if headers.is_secret(name):
                secrets.append(key)
                continue
            attr = headers.attribute_for(name)
            target = _target(attr) if attr is not None else None
            if target is not None:
                captured.append((headers.rank(name), (key, *target, True)))
    # applied in this order, the last value wins: the header table's first header, then
    # explicit attributes; spellings of one header (or aliases) by key, whatever the order sent
    captured.sort(key=lambda c: (-c[0], c[1][0]))
    explicit.sort()
    carriers = tuple(c for _, c in captured) + tuple(explicit)
    plan = (tuple(secrets) + tuple(c[0] for c in carriers), carriers)
    if len(_PLANS) >= _MAX_SHAPES:
        _PLANS.clear()
    _PLANS[shape] = plan
    return plan


def _target(attr: str) -> tuple[str | None, str | None] | None:
    """(context field, None) or (None, property name) for an Alephant attribute, else None."""
    field = CONTEXT_ATTRIBUTES.get(attr)
    if field is not None:
        return field, None
    if attr.startswith(PROPERTY_PREFIX) and len(attr) > len(PROPERTY_PREFIX):
        return None, attr[len(PROPERTY_PREFIX):]
    return None


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
