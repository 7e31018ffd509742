"""Foreign conventions: one module per instrumentation family, each reading the key tables in
semconv/conventions/<name>.yaml. No I/O.

Each module's `extract(span_info, consumed)` returns an `Extract` (what the span says in that
convention) or None. `REGISTRY` is the order they are consulted in: for each concept the first
convention that has a value wins (the specific frameworks before the generic gen_ai keys).
"""
from __future__ import annotations

from . import gen_ai, generic, langsmith, openinference, openlit, pydantic_ai, traceloop, vercel_ai
from ._engine import Extract, SpanInfo, merge, plan

REGISTRY = (vercel_ai, openinference, traceloop, langsmith, pydantic_ai, openlit, gen_ai, generic)
# Modules that read more than their table (a provider-metadata blob, a flag from the provider):
# always consulted. The others say nothing about a span their table's plan skips.
_ALWAYS = (vercel_ai, openlit)

__all__ = ["REGISTRY", "Extract", "SpanInfo", "merge", "extract_all", "context_only"]


def extract_all(info: SpanInfo, consumed: set[str]) -> Extract:
    """What all conventions together say about a span (first convention wins per concept)."""
    found = []
    for module in REGISTRY:
        if module not in _ALWAYS and plan(module.NAME, info) is None:
            continue  # nothing of this convention's table on the span, and nothing else to read
        e = module.extract(info, consumed)
        if e is not None and not e.empty():
            found.append(e)
    return merge(found)


def context_only(attrs: dict) -> dict:
    """Foreign context (session, user, agent, ...) from attributes alone, e.g. a resource's."""
    info = SpanInfo(attrs, None, {})
    return extract_all(info, set()).context
