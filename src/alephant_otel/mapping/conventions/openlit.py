"""OpenLIT: semconv/conventions/openlit.yaml.

Recognised by its instrumentation scope or `telemetry.sdk.name=openlit`. It sends a provided
cost (`gen_ai.usage.cost`), and for Anthropic its `gen_ai.usage.input_tokens` excludes cache
tokens, unlike the GenAI convention: flagged here so usage is normalised before pricing.
"""
from __future__ import annotations

from ...semconv import CONVENTIONS
from ._engine import Extract, SpanInfo, applies, from_table, normalise_provider

NAME = "openlit"
_TABLE = CONVENTIONS[NAME]
_GEN_AI = CONVENTIONS["gen_ai"]
# keys read beyond the table (see conventions/__init__.py): the provider, and the resource
# attribute that recognises OpenLIT when a span carries it itself
READS = (*_GEN_AI["fields"]["provider"], *_TABLE.get("detect_resource", {}))


def extract(info: SpanInfo, consumed: set[str]) -> Extract | None:
    if not applies(_TABLE, info):
        return None
    e = from_table(NAME, info, consumed)
    provider = None
    for key in _GEN_AI["fields"]["provider"]:
        if isinstance(info.attrs.get(key), str):
            provider = normalise_provider(info.attrs[key], _GEN_AI["provider_aliases"])
            break
    if provider in _TABLE.get("input_excludes_cache_for", ()):
        e.input_excludes_cache = True
    return e
