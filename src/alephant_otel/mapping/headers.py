"""The gateway header convention: header names -> Alephant attribute keys (table in semconv/).

Headers reach us on two carriers: captured on a span as `http.request.header.<name>` (a string
array), and as the OTLP export call's own gRPC metadata / HTTP headers. Both use this module.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

from ..semconv import HEADER_ATTRIBUTES, HEADER_PREFIXES, SECRET_HEADERS

SPAN_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
_SECRETS = frozenset(SECRET_HEADERS)


def normalize(name: str) -> str:
    """Header names compare case-insensitively, with `_` and `-` treated alike."""
    return name.strip().lower().replace("_", "-")


@lru_cache(maxsize=4096)
def is_secret(name: str) -> bool:
    return normalize(name) in _SECRETS


_RANK = {h: i for i, h in enumerate(HEADER_ATTRIBUTES)}


@lru_cache(maxsize=4096)
def rank(name: str) -> int:
    """Position of a header in the convention table: when a span carries two headers for the
    same attribute (`Alephant-Agent-Id` and the legacy `X-Alephant-Agent`), the earlier wins."""
    return _RANK.get(normalize(name), len(_RANK))


@lru_cache(maxsize=4096)
def attribute_for(name: str) -> str | None:
    """The Alephant attribute a header carries, or None when it carries none.

    Property names from headers are lowercased and use `_` for `-`, so that
    `alephant-property-user-tier` and `alephant_property_user_tier` agree.
    """
    n = normalize(name)
    attr = HEADER_ATTRIBUTES.get(n)
    if attr is not None:
        return attr
    for prefix, attr_prefix in HEADER_PREFIXES:
        if n.startswith(prefix) and len(n) > len(prefix):
            return attr_prefix + n[len(prefix):].replace("-", "_")
    return None


def header_value(value: Any) -> str | None:
    """Captured header values are string arrays (`["run_42"]`); take the first non-empty one."""
    if isinstance(value, (list, tuple)):
        for v in value:
            if v not in (None, ""):
                return str(v)
        return None
    if value in (None, ""):
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def attributes_from_headers(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Alephant attributes carried by (header name, value) pairs; secrets are never returned.
    Of two headers for one attribute, the earlier in the convention table wins."""
    out: dict[str, str] = {}
    ranks: dict[str, int] = {}
    for name, value in pairs:
        attr = attribute_for(name)
        if attr is None:
            continue
        v = header_value(value)
        if v is not None and rank(name) <= ranks.get(attr, rank(name)):
            out[attr] = v
            ranks[attr] = rank(name)
    return out
