"""OpenTelemetry GenAI conventions (`gen_ai.*`, current and deprecated spellings).

The key lists live in semconv/conventions/gen_ai.yaml; this module applies them.
"""
from __future__ import annotations

from typing import Any

from ..semconv import GEN_AI_CONVENTION as _CONV

NAME = "gen_ai"
OPERATIONS: dict[str, str] = _CONV["operations"]
PROVIDER_ALIASES: dict[str, str] = _CONV["provider_aliases"]


def _first(attrs: dict[str, Any], keys: list[str], consumed: set[str]) -> tuple[str | None, Any]:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            consumed.add(key)
            return key, value
    return None, None


def context(attrs: dict[str, Any], consumed: set[str]) -> dict:
    """Session, agent and prompt as the GenAI conventions express them."""
    ctx = {}
    for field, keys in _CONV["context"].items():
        _, value = _first(attrs, keys, consumed)
        if value is not None:
            ctx[field] = str(value)
    return ctx


def fields(attrs: dict[str, Any], consumed: set[str]) -> dict[str, str]:
    """operation, provider (normalised), request_model, response_model, tool_name."""
    out = {}
    for field, keys in _CONV["fields"].items():
        _, value = _first(attrs, keys, consumed)
        if value is not None:
            out[field] = str(value)
    if "provider" in out:
        p = out["provider"].lower()
        out["provider"] = PROVIDER_ALIASES.get(p, p)
    return out


def usage(attrs: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Raw usage values by concept: {concept: (source key, raw value)}; not yet validated."""
    out = {}
    for concept, keys in _CONV["usage"].items():
        for key in keys:
            if key in attrs:
                out[concept] = (key, attrs[key])
                break
    return out
