"""Foreign conventions: one module per instrumentation family, each reading the key tables in
semconv/conventions/<name>.yaml. No I/O.

Each module's `extract(span_info, consumed)` returns an `Extract` (what the span says in that
convention) or None. `REGISTRY` is the order they are consulted in: for each concept the first
convention that has a value wins (the specific frameworks before the generic gen_ai keys).

What the conventions say about a span depends on its attribute keys, the values of the keys
they read (except token counts, which they pass through untouched), its scope name and a few
resource values. Spans of one agent repeat those values (operation, provider, models), so
`extract_all` remembers its answer for them and only re-reads the token counts. A module whose
code reads an attribute its table does not name must list it in `READS`, or the memo would not
see that key's value change (tests/test_mapping.py changes each key in turn to catch this).
"""
from __future__ import annotations

from typing import Any

from ...semconv import CONVENTIONS
from . import gen_ai, generic, langsmith, openinference, openlit, pydantic_ai, traceloop, vercel_ai
from ._engine import MAX_SHAPES, TRIGGERS, Extract, SpanInfo, merge, plan

REGISTRY = (vercel_ai, openinference, traceloop, langsmith, pydantic_ai, openlit, gen_ai, generic)
# Modules that read more than their table (a provider-metadata blob, a flag from the provider):
# always consulted. The others say nothing about a span their table's plan skips.
_ALWAYS = (vercel_ai, openlit)

__all__ = ["REGISTRY", "Extract", "SpanInfo", "merge", "extract_all", "context_only"]

# -- what the conventions read ----------------------------------------------------------------
# Attribute keys (and key prefixes) any table or module reads; resource keys they compare.
_READ_KEYS = frozenset().union(*(keys for keys, _, _ in TRIGGERS.values()),
                               *(getattr(m, "READS", ()) for m in REGISTRY))
_READ_PREFIXES = tuple(p for _, prefixes, _ in TRIGGERS.values() for p in prefixes)
_RESOURCE_KEYS = tuple(sorted({k for t in CONVENTIONS.values() for k in t.get("detect_resource", {})}))


def _passed_keys() -> frozenset:
    """Token count keys that the conventions only pass through (to usage.buckets) and read for
    nothing else: the memo is not keyed by their values."""
    usage = {k for t in CONVENTIONS.values() for keys in t.get("usage", {}).values() for k in keys}
    read_otherwise = {k for t in CONVENTIONS.values() for section in ("fields", "context")
                      for keys in t.get(section, {}).values() for k in keys}
    for t in CONVENTIONS.values():
        read_otherwise.update(t[k] for k in ("kind_key", "request_type_key", "operation_key") if k in t)
        read_otherwise.update(k for section in ("provided_cost", "tags", "tags_csv") for k in t.get(section, ()))
        read_otherwise.update(m["key"] for m in t.get("metadata_json", ()))
        if "usage_json" in t:
            read_otherwise.add(t["usage_json"]["key"])
    for module in REGISTRY:
        read_otherwise.update(getattr(module, "READS", ()))
    return frozenset(usage - read_otherwise)


_PASSED = _passed_keys()


class _Shape:
    """For spans with one key shape: the modules consulted and the keys whose values decide."""

    __slots__ = ("modules", "keys")

    def __init__(self, info: SpanInfo):
        self.modules = tuple(m for m in REGISTRY if m in _ALWAYS or plan(m.NAME, info) is not None)
        self.keys = tuple(k for k in info.shape if k not in _PASSED and (k in _READ_KEYS or k.startswith(_READ_PREFIXES)))


_SHAPES: dict[tuple, _Shape] = {}
_MEMO: dict[tuple, tuple] = {}
_MEMO_MAX = 8192


def extract_all(info: SpanInfo, consumed: set[str]) -> Extract:
    """What all conventions together say about a span (first convention wins per concept)."""
    shape = _SHAPES.get(info.shape)
    if shape is None:
        if len(_SHAPES) >= MAX_SHAPES:
            _SHAPES.clear()
        shape = _SHAPES[info.shape] = _Shape(info)
    key = _memo_key(shape, info)
    try:
        hit = _MEMO.get(key)
    except TypeError:  # a value that is a map, or a list holding lists or maps: not remembered
        return _extract(shape.modules, info, consumed)
    if hit is not None:
        template, usage, read = hit
        consumed.update(read)
        attrs = info.attrs
        return _copy(template, {c: (k, attrs[k]) if passed else k for c, (passed, k) in usage.items()})
    before = set(consumed)
    found = _extract(shape.modules, info, consumed)
    attrs = info.attrs
    usage = {c: (True, k) if k in _PASSED and k in attrs and v is attrs[k] else (False, (k, v))
             for c, (k, v) in found.usage.items()}
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.clear()
    _MEMO[key] = (_copy(found, {}), usage, tuple(consumed - before))
    return found


def _extract(modules: tuple, info: SpanInfo, consumed: set[str]) -> Extract:
    found = []
    for module in modules:
        e = module.extract(info, consumed)
        if e is not None and not e.empty():
            found.append(e)
    return found[0] if len(found) == 1 else merge(found)


def _memo_key(shape: _Shape, info: SpanInfo) -> tuple:
    """What the conventions' answer depends on besides the passed-through token counts. Values
    are typed (True, 1 and 1.0 are equal keys, not equal text; so are 0.0 and -0.0). The
    _Shape itself stands for the keys: the memo holds it, so it is never freed and mistaken."""
    attrs = info.attrs
    values: list[Any] = [shape, info.scope_name]
    for k in shape.keys:
        v = attrs[k]
        t = type(v)
        values.append((t, v.hex() if t is float else tuple((type(x), x) for x in v) if t is list else v))
    resource = info.resource
    for k in _RESOURCE_KEYS:
        v = resource.get(k)
        values.append((type(v), v))
    return tuple(values)


def _copy(e: Extract, usage: dict) -> Extract:
    """A new Extract sharing `e`'s other fields (they are not changed once extracted)."""
    return Extract(e.names, e.kind, e.operation, e.provider, e.request_model, e.response_model, e.tool_name,
                   e.context, usage, e.provided_cost, e.input_excludes_cache, e.sources)


def context_only(attrs: dict) -> dict:
    """Foreign context (session, user, agent, ...) from attributes alone, e.g. a resource's."""
    info = SpanInfo(attrs, None, {})
    return extract_all(info, set()).context
