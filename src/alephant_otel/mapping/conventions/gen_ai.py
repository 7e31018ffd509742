"""OTel GenAI (gen_ai.*) convention: the key tables in semconv/conventions/gen_ai.yaml."""
from __future__ import annotations

from ._engine import Extract, SpanInfo, from_table

NAME = "gen_ai"


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    return from_table(NAME, info, consumed)
