"""OpenLLMetry / Traceloop: semconv/conventions/traceloop.yaml, plus entity names.

`traceloop.entity.name` names the tool on tool spans and the agent on agent spans.
"""
from __future__ import annotations

from ...semconv import CONVENTIONS
from ._engine import Extract, SpanInfo, from_table

NAME = "traceloop"
_KIND_KEY = CONVENTIONS[NAME]["kind_key"]
_ENTITY = CONVENTIONS[NAME]["entity_name_key"]
READS = (_ENTITY, _KIND_KEY)  # keys read beyond the table (see conventions/__init__.py)


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    e = from_table(NAME, info, consumed)
    entity = info.attrs.get(_ENTITY)
    if isinstance(entity, str) and entity:
        kind = info.attrs.get(_KIND_KEY)
        if kind == "tool":
            e.tool_name = entity
        elif kind == "agent":
            e.context.setdefault("agent_name", entity)
    return e
