"""Vercel AI SDK v4-v7 (`ai.*`): semconv/conventions/vercel_ai.yaml.

The operation id (`ai.operationId`, also the span name) decides the step: `*.doGenerate`,
`*.doStream` and `*.doEmbed` are the provider calls; the outer `ai.generateText` etc. repeat their
children's usage and are workflow actions. `ai.model.provider` is `<provider>.<api>`. v4/v5
generateText carry cache and reasoning counts only in `ai.response.providerMetadata`. v7's
default shape is gen_ai.* (read by the gen_ai module); its `ai.usage.*Details` and
`ai.settings.context.*` extras are read here.
"""
from __future__ import annotations

import orjson

from ...semconv import CONVENTIONS
from ._engine import Extract, SpanInfo, from_table

NAME = "vercel_ai"
_TABLE = CONVENTIONS[NAME]
_ALIASES = _TABLE["provider_aliases"]
_META = _TABLE["provider_metadata"]
READS = ("ai.model.provider", _META["key"])  # keys read beyond the table (see conventions/__init__.py)


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    if "ai" not in info.heads:
        return None
    raw_provider = info.attrs.get("ai.model.provider")
    e = from_table(NAME, info, consumed)
    if isinstance(raw_provider, str) and raw_provider:
        head = raw_provider.split(".", 1)[0].lower()
        e.provider = _ALIASES.get(head, head)
    _usage_from_provider_metadata(info.attrs, e)
    return e


def _usage_from_provider_metadata(attrs: dict, e: Extract) -> None:
    raw = attrs.get(_META["key"])
    if not isinstance(raw, str) or not raw.startswith("{"):
        return
    try:
        meta = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    for provider, fields in _META["usage"].items():
        block = meta.get(provider) if isinstance(meta, dict) else None
        if not isinstance(block, dict):
            continue
        found = False
        for name, concept in fields.items():
            if block.get(name) is not None and concept not in e.usage:
                e.usage[concept] = (f"{_META['key']}.{provider}.{name}", block[name])
                found = True
        if found and provider in _META["input_excludes_cache"] and "input_uncached" not in e.usage:
            e.input_excludes_cache = True
