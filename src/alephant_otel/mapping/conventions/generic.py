"""Generic OTel convention: the key tables in semconv/conventions/generic.yaml."""
from __future__ import annotations

from ._engine import Extract, SpanInfo, from_table

NAME = "generic"


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    return from_table(NAME, info, consumed)
