"""Foreign conventions: one module per instrumentation family, each reading the key tables in
semconv/conventions/<name>.yaml. No I/O.

Each module's `extract(span_info, consumed)` returns an `Extract` (what the span says in that
convention) or None. `REGISTRY` is the order they are consulted in: for each concept the first
convention that has a value wins (the specific frameworks before the generic gen_ai keys).
"""
from __future__ import annotations

from . import gen_ai, generic, langsmith, openinference, openlit, pydantic_ai, traceloop, vercel_ai
from ._engine import MAX_SHAPES, Extract, SpanInfo, merge, plan

REGISTRY = (vercel_ai, openinference, traceloop, langsmith, pydantic_ai, openlit, gen_ai, generic)
# Modules that read more than their table (a provider-metadata blob, a flag from the provider):
# always consulted. The others say nothing about a span their table's plan skips.
_ALWAYS = (vercel_ai, openlit)

__all__ = ["REGISTRY", "Extract", "SpanInfo", "merge", "extract_all", "context_only"]


def extract_all(info: SpanInfo, consumed: set[str]) -> Extract:
    """What all conventions together say about a span (first convention wins per concept)."""
    found = []
    for module in _consulted(info):
        e = module.extract(info, consumed)
        if e is not None and not e.empty():
            found.append(e)
    return found[0] if len(found) == 1 else merge(found)


_CONSULTED: dict[tuple, tuple] = {}


def _consulted(info: SpanInfo) -> tuple:
    """The modules that may say something about spans of this key shape, in registry order:
    those whose table's plan reads a key of the shape, and those that always look."""
    modules = _CONSULTED.get(info.shape)
    if modules is None:
        if len(_CONSULTED) >= MAX_SHAPES:
            _CONSULTED.clear()
        modules = _CONSULTED[info.shape] = tuple(
            m for m in REGISTRY if m in _ALWAYS or plan(m.NAME, info) is not None)
    return modules


def context_only(attrs: dict) -> dict:
    """Foreign context (session, user, agent, ...) from attributes alone, e.g. a resource's."""
    info = SpanInfo(attrs, None, {})
    return extract_all(info, set()).context
