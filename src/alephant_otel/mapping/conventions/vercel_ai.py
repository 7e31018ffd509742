"""Vercel AI SDK v4-v6 (`ai.*`): semconv/conventions/vercel_ai.yaml.

The operation id (`ai.operationId`, also the span name) decides the step: `*.doGenerate`,
`*.doStream` and `*.doEmbed` are the provider calls; the outer `ai.generateText` etc. repeat their
children's usage and are workflow actions. `ai.model.provider` is `<provider>.<api>`.
v7 emits gen_ai.* and is read by the gen_ai module.
"""
from __future__ import annotations

from ...semconv import CONVENTIONS
from ._engine import Extract, SpanInfo, from_table

NAME = "vercel_ai"
_ALIASES = CONVENTIONS[NAME]["provider_aliases"]


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    if "ai.operationId" not in info.attrs and "ai.model.id" not in info.attrs and "ai.toolCall.name" not in info.attrs:
        return None
    raw_provider = info.attrs.get("ai.model.provider")
    e = from_table(NAME, info, consumed)
    if isinstance(raw_provider, str) and raw_provider:
        head = raw_provider.split(".", 1)[0].lower()
        e.provider = _ALIASES.get(head, head)
    return e
