"""pydantic-ai / Logfire: semconv/conventions/pydantic_ai.yaml.

Read only on spans it recognises (its keys like `agent_name` are too generic otherwise):
`gen_ai.agent.call.id` is a run-id candidate, `operation.cost` a provided cost. Agent spans'
`gen_ai.aggregated_usage.*` repeat their children's usage and are never counted.
"""
from __future__ import annotations

from ...semconv import CONVENTIONS
from ._engine import Extract, SpanInfo, applies, from_table

NAME = "pydantic_ai"
_TABLE = CONVENTIONS[NAME]


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    if not applies(_TABLE, info):
        return None
    return from_table(NAME, info, consumed)
