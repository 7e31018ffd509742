"""OpenInference convention: the key tables in semconv/conventions/openinference.yaml.

Read only on spans it recognises (`openinference.span.kind` or its `llm.*` keys), since keys
like `metadata` and `session.id` are shared with other conventions.
"""
from __future__ import annotations

from ...semconv import CONVENTIONS
from ._engine import Extract, SpanInfo, applies, from_table

NAME = "openinference"
_TABLE = CONVENTIONS[NAME]


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    if not applies(_TABLE, info):
        return None
    return from_table(NAME, info, consumed)
