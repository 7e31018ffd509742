"""Token usage -> five non-overlapping buckets.

  input_tokens        input tokens NOT read from or written to a cache
  cache_read_tokens   input tokens read from a prompt cache
  cache_write_tokens  input tokens written to a prompt cache
  output_tokens       output tokens that are not reasoning tokens
  reasoning_tokens    reasoning ("thinking") output tokens

Conventions report input including cache and output including reasoning; we subtract once.
A value that is not a whole number, negative, or above MAX_TOKENS is flagged as an anomaly and
left out (NULL), never stored as is and never a reason to drop the span.
"""
from __future__ import annotations

import math
from typing import Any

MAX_TOKENS = 100_000_000  # more than this in one call is not a real usage figure


def coerce_tokens(key: str, raw: Any, anomalies: list[str]) -> int | None:
    """A token count from an int, an integral float or a numeric string; None (and an anomaly)
    for anything else."""
    if type(raw) is int and 0 <= raw <= MAX_TOKENS:  # what nearly every span sends
        return raw
    value: Any = raw
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, str):
        s = raw.strip()
        try:
            value = int(s)
        except ValueError:
            try:
                value = float(s)
            except ValueError:
                value = None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    if not isinstance(value, int):
        anomalies.append(f"{key}={raw!r} is not a whole number; ignored")
        return None
    if value < 0:
        anomalies.append(f"{key}={value} is negative; ignored")
        return None
    if value > MAX_TOKENS:
        anomalies.append(f"{key}={value} exceeds {MAX_TOKENS}; ignored")
        return None
    return value


def buckets(raw: dict[str, tuple[str, Any]], consumed: set[str], anomalies: list[str],
            input_excludes_cache: bool = False) -> dict[str, int | None]:
    """Split raw usage ({concept: (key, value)}, concepts as in semconv) into the five buckets.

    Concepts: input_with_cache, input_uncached, cache_read, cache_write, output_with_reasoning,
    output_without_reasoning, reasoning. `input_excludes_cache` says the instrumentation reports
    input without cache tokens (OpenLIT for Anthropic). Keys whose values were used are added to
    `consumed`; rejected values stay in the span's leftover attributes so nothing is lost.
    """
    vals: dict[str, int | None] = {}
    for concept, (key, value) in raw.items():
        n = coerce_tokens(key, value, anomalies)
        vals[concept] = n
        if n is not None:
            consumed.add(key)
    inp, cr, cw = vals.get("input_with_cache"), vals.get("cache_read"), vals.get("cache_write")
    out, rs = vals.get("output_with_reasoning"), vals.get("reasoning")
    uncached = inp
    if vals.get("input_uncached") is not None:
        uncached = vals["input_uncached"]
    elif input_excludes_cache:
        pass
    elif inp is not None and (cr or cw):
        cached = (cr or 0) + (cw or 0)
        if inp >= cached:
            uncached = inp - cached
        else:
            anomalies.append(
                f"input tokens ({inp}) fewer than cache tokens ({cached}); "
                "input taken as already excluding cache")
    plain_out = out
    if vals.get("output_without_reasoning") is not None:
        plain_out = vals["output_without_reasoning"]
    elif out is not None and rs:
        if out >= rs:
            plain_out = out - rs
        else:
            anomalies.append(
                f"output tokens ({out}) fewer than reasoning tokens ({rs}); "
                "output taken as already excluding reasoning")
    return {
        "input_tokens": uncached,
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "output_tokens": plain_out,
        "reasoning_tokens": rs,
    }


def has_usage(tokens: dict[str, int | None]) -> bool:
    for v in tokens.values():
        if v is not None:
            return True
    return False
