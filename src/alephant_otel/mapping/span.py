"""One OTLP span -> one step row (a dict), plus a step for each span event that records a
payment or a policy decision. Pure: no I/O, no clock, no store."""
from __future__ import annotations

import hashlib
from urllib.parse import urlsplit
from typing import Any

import orjson

from ..otlp import SPAN_KINDS, STATUS_CODES, any_value, attributes
from ..semconv import CONTENT_KEYS, CONTENT_PREFIXES, COST_AMOUNT, COST_CURRENCY
from . import context, kinds, money, usage
from .conventions import SpanInfo, context_only, extract_all, merge
from .headers import SPAN_HEADER_PREFIXES, is_secret

_TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


class InvalidSpan(ValueError):
    """The span cannot be keyed (bad trace or span id): it is kept raw and rejected."""


def dumps(value: Any) -> str | None:
    """JSON with sorted keys: the same text whatever order attributes were sent or read in."""
    if not value:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS).decode()


_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)


def span_ids(span) -> tuple[str, str, str | None]:
    trace, sid, parent = span.trace_id, span.span_id, span.parent_span_id
    if len(trace) != 16 or trace == _ZERO_TRACE:
        raise InvalidSpan(f"trace_id must be 16 non-zero bytes, got {len(trace)} bytes")
    if len(sid) != 8 or sid == _ZERO_SPAN:
        raise InvalidSpan(f"span_id must be 8 non-zero bytes, got {len(sid)} bytes")
    if parent and (len(parent) != 8 or parent == _ZERO_SPAN):
        raise InvalidSpan(f"parent_span_id must be empty or 8 non-zero bytes, got {len(parent)} bytes")
    return trace.hex(), sid.hex(), parent.hex() if parent else None


def without_secrets(attrs: dict[str, Any]) -> dict[str, Any]:
    secret = _flagged(tuple(attrs))[0]
    return {k: v for k, v in attrs.items() if k not in secret} if secret else attrs


_CONTENT = frozenset(CONTENT_KEYS)


def without_content(attrs: dict[str, Any]) -> dict[str, Any]:
    """Message content replaced by its size (the operator did not opt in to storing it)."""
    content = _flagged(tuple(attrs))[1]
    if not content:
        return attrs
    return {k: ({"omitted_content_bytes": len(orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS))}
                if k in content else v) for k, v in attrs.items()}


_FLAGGED: dict[tuple, tuple[frozenset, frozenset]] = {}


def _flagged(shape: tuple) -> tuple[frozenset, frozenset]:
    """(secret header keys, message content keys) among attribute keys; made once per shape."""
    flagged = _FLAGGED.get(shape)
    if flagged is None:
        if len(_FLAGGED) >= 4096:
            _FLAGGED.clear()
        flagged = _FLAGGED[shape] = (
            frozenset(k for k in shape if k.startswith(SPAN_HEADER_PREFIXES) and is_secret(k.split(".", 3)[3])),
            frozenset(k for k in shape if k in _CONTENT or k.startswith(CONTENT_PREFIXES)))
    return flagged


def read_events(span) -> list[tuple]:
    """A span message's events as (name, time_unix_nano, attributes, dropped_attributes_count),
    as wire.decode_native reads them."""
    if not len(span.events):  # most spans (a quick way out: this runs for every span)
        return []
    return [(e.name, e.time_unix_nano, attributes(e.attributes), e.dropped_attributes_count) for e in span.events]


def _events(events: list[tuple], store_content: bool = True) -> list[dict]:
    if not events:
        return []
    clean = (lambda a: a) if store_content else without_content
    return [{"name": name, "time_unix_nano": t, "attributes": clean(attrs),
             **({"dropped_attributes_count": dropped} if dropped else {})}
            for name, t, attrs, dropped in events]


def read_links(span) -> list[dict]:
    """A span message's links as the `links` column holds them."""
    if not len(span.links):
        return []
    return [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex(),
             **({"trace_state": l.trace_state} if l.trace_state else {}),
             "attributes": attributes(l.attributes)} for l in span.links]


def _error_type(attrs: dict, events: list[dict], consumed: set[str]) -> str | None:
    if attrs.get("error.type") not in (None, ""):
        consumed.add("error.type")
        return str(attrs["error.type"])
    for e in events:
        if e["name"] == "exception" and e["attributes"].get("exception.type"):
            return str(e["attributes"]["exception.type"])
    return None


def raw_fields(span, ids: tuple[str, str, str | None], scope) -> dict:
    """The span's own fields, as sent, that every row keeps (mapped or not)."""
    trace_id, span_id, parent = ids
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "trace_state": span.trace_state or None,
        "name": span.name,
        "span_kind": SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else str(span.kind),
        "start_time": start // 1000 if start else None,
        "end_time": end // 1000 if end else None,
        "duration_ms": (end - start) / 1e6 if start and end >= start else None,
        "status": STATUS_CODES[span.status.code] if 0 <= span.status.code < 3 else str(span.status.code),
        "status_message": span.status.message or None,
        "scope_name": scope.name or None,
        "scope_version": scope.version or None,
    }


def map_fields(row: dict, attrs: dict, kind: int, events: list[tuple], links: list[dict], outer: "Outer",
               rules=None) -> list[dict]:
    """Map one span: its step first, then a step for each event that records a payment or a
    policy decision. The span comes as read: its `raw_fields`, its attributes as plain values,
    its kind, its events (`read_events`) and its links (`read_links`); wire.decode_native reads
    all of them but links without a message. `outer` holds what its resource and export call
    contribute, `rules` an optional RuleSet that runs before the built-in conventions."""
    consumed: set[str] = set()
    anomalies: list[str] = []
    if row["start_time"] is not None and row["duration_ms"] is None:  # start set, end before it
        anomalies.append("end time before start time; duration left out")

    info = SpanInfo(attrs, row["scope_name"], outer.resource_attrs)
    span_alephant = context.alephant_context(attrs, consumed, info.shape)
    found = extract_all(info, consumed)
    cost_currency = None
    if rules is not None:
        by_rule, rule_ctx = rules.apply(info, row["name"], kind, consumed)
        if by_rule is not None:
            found = merge([by_rule, found])
            cost_currency = rule_ctx.pop("_cost_currency", None)
            span_alephant = context.merge(rule_ctx, span_alephant)  # explicit attributes beat rules
    values = money.read(attrs, consumed, anomalies)
    model = found.response_model or found.request_model
    usage_consumed: set[str] = set()
    usage_anomalies: list[str] = []
    tokens = usage.buckets(found.usage, usage_consumed, usage_anomalies, bool(found.input_excludes_cache))
    hint = found.kind
    if hint != "model_call" and "rules" not in found.names:
        hint = "payment" if money.is_payment(values) else "policy_check" if money.is_policy(values) else hint
    step_kind = kinds.classify(attrs, kind, hint, model is not None,
                               usage.has_usage(tokens), consumed, anomalies)
    if step_kind == "model_call":
        consumed |= usage_consumed
        anomalies += usage_anomalies
    else:
        # Usage repeated on agent/workflow spans aggregates their children: counted once, on the
        # model calls. It stays in the leftover attributes.
        tokens = dict.fromkeys(tokens)
    tool_name = found.tool_name
    if step_kind == "model_call" and tool_name is not None:
        # e.g. a model call that asks for a tool: the tool is not this step's; keep it raw
        consumed.discard(found.sources.get("tool_name", ""))
        tool_name = None
    api_host, api_method = _api_target(attrs) if step_kind == "api_call" else (None, None)
    provided, provided_key, provided_currency = _provided_cost(attrs, found, cost_currency, anomalies)
    if provided_key is not None:
        consumed.add(provided_key)

    events = _events(events, outer.store_content)
    conventions = (["alephant"] if span_alephant else []) + found.names
    secret, content = _flagged(info.shape)
    # the keys nothing read, as sets (in C); their order does not matter: dumps sorts them
    leftover = {k: attrs[k] for k in attrs.keys() - consumed - secret}
    if content and not outer.store_content:
        leftover = without_content(leftover)
    own_request_id = span_alephant.pop("request_id", None)
    row = {  # one dict display: cheaper than update(**...) on every span
        **row,
        "step_kind": step_kind,
        "operation": found.operation or row["name"],
        "provider": found.provider,
        "request_model": found.request_model,
        "response_model": found.response_model,
        "model": model,
        "tool_name": tool_name,
        "api_host": api_host,
        "api_method": api_method,
        "error_type": _error_type(attrs, events, consumed),
        **tokens,
        **values,
        "provided_cost": provided,
        "provided_cost_source": provided_key,
        "provided_cost_currency": provided_currency,
        "request_id": own_request_id or outer.request_id,
        "service_name": outer.service_name,
        "resource": outer.resource_json,
        "attributes": dumps(leftover),
        "events": dumps(events),
        "links": dumps(links),
        "convention": ",".join(dict.fromkeys(conventions)) or None,
        "anomalies": dumps(anomalies),
        "mapping_error": None,
        "derived_from": None,
        "tiers": [span_alephant, outer.alephant, found.context, outer.foreign] + outer.imposed,
    }
    return [row] + _event_steps(row, events, outer)


def _event_steps(row: dict, events: list[dict], outer: "Outer") -> list[dict]:
    """A gateway may record a payment or a policy decision as an event on its request span:
    each such event is a step of its own (a child of the span, counted once, there)."""
    out = []
    for i, e in enumerate(events):
        if not money.is_step_event(e["name"], e["attributes"]):
            continue
        consumed: set[str] = set()
        anomalies: list[str] = []
        values = money.read(e["attributes"], consumed, anomalies)
        span_alephant = context.alephant_context(e["attributes"], consumed)
        t_us = e["time_unix_nano"] // 1000 if e["time_unix_nano"] else row["start_time"]
        digest = hashlib.sha256(f"{row['span_id']}/event/{i}".encode()).hexdigest()[:16]
        out.append({
            **dict.fromkeys(_TOKENS),
            "trace_id": row["trace_id"], "span_id": digest, "parent_span_id": row["span_id"],
            "trace_state": None, "name": e["name"], "span_kind": "INTERNAL",
            "start_time": t_us, "end_time": t_us, "duration_ms": 0.0, "status": row["status"],
            "status_message": None, "scope_name": row["scope_name"], "scope_version": row["scope_version"],
            "step_kind": "payment" if money.is_payment(values) else "policy_check",
            "operation": e["name"], "provider": None, "request_model": None, "response_model": None,
            "model": None, "tool_name": None, "api_host": None, "api_method": None, "error_type": None, **values,
            "provided_cost": None, "provided_cost_source": None, "provided_cost_currency": None,
            "request_id": None, "service_name": row["service_name"], "resource": row["resource"],
            "attributes": dumps({k: v for k, v in e["attributes"].items() if k not in consumed}),
            "events": None, "links": None,
            "convention": "gen_ai" if e["name"] == "gen_ai.guardrail.result" else "alephant",
            "anomalies": dumps(anomalies), "mapping_error": None,
            "derived_from": f"event {i} ({e['name']}) of span {row['span_id']}",
            "tiers": [span_alephant, {}, {}, {}] + outer.imposed,
        })
    return out


def _api_target(attrs: dict) -> tuple[str | None, str | None]:
    """(host, method) of an HTTP or RPC client call, for pricing external APIs."""
    host = attrs.get("server.address") or attrs.get("net.peer.name")
    if not host:
        url = attrs.get("url.full") or attrs.get("http.url")
        if isinstance(url, str):
            host = urlsplit(url).hostname
    method = attrs.get("http.request.method") or attrs.get("http.method") or attrs.get("rpc.method")
    return (str(host).lower() if host else None), (str(method) if method else None)


def _provided_cost(attrs: dict, found, rule_currency, anomalies: list[str]):
    """(amount as Decimal, source key, currency) of a cost the span brings, or Nones."""
    if COST_AMOUNT in attrs:
        key, raw = COST_AMOUNT, attrs[COST_AMOUNT]
        cur = attrs.get(COST_CURRENCY)
    elif found.provided_cost is not None:
        (key, raw), cur = found.provided_cost, rule_currency
    else:
        return None, None, None
    amount = money.money(raw)
    if amount is None:
        anomalies.append(f"{key}={raw!r} is not a valid amount; ignored")
        return None, None, None
    return amount, key, money.currency(cur)


def unmapped_row(span, ids, scope, outer: "Outer", error: str) -> dict:
    """A span the mapper failed on: kept raw, flagged, and reported as rejected."""
    row = raw_fields(span, ids, scope)
    attrs = without_secrets(attributes(span.attributes))
    if not outer.store_content:
        attrs = without_content(attrs)
    row.update(
        step_kind=None, operation=span.name, service_name=outer.service_name,
        resource=outer.resource_json, attributes=dumps(attrs),
        events=dumps(_events(read_events(span), outer.store_content)), links=dumps(read_links(span)),
        mapping_error=error, tiers=[{}, outer.alephant, {}, outer.foreign] + outer.imposed,
        request_id=outer.request_id,
    )
    return row


class Outer:
    """What a span's resource and its export call contribute (computed once per resource):
    their context, the attribution the call imposes (see mapping.Attribution) and options."""

    __slots__ = ("alephant", "foreign", "request_id", "service_name", "resource_json", "resource_attrs",
                 "imposed", "store_content")

    def __init__(self, resource_attrs: dict[str, Any], request_ctx: dict, attribution=None,
                 store_content: bool = True):
        self.imposed = [attribution.forced, attribution.defaults] if attribution is not None else []
        self.store_content = store_content
        consumed: set[str] = set()
        res_ctx = context.alephant_context(resource_attrs, consumed)
        merged = context.merge(request_ctx, res_ctx)  # resource beats the export call
        self.request_id = merged.pop("request_id", None)
        self.alephant = merged
        self.foreign = context_only(resource_attrs)
        self.resource_attrs = resource_attrs
        self.service_name = str(resource_attrs["service.name"]) if "service.name" in resource_attrs else None
        self.resource_json = dumps(without_secrets(resource_attrs))


__all__ = ["map_fields", "read_events", "read_links", "unmapped_row", "raw_fields", "span_ids", "Outer",
           "InvalidSpan", "any_value"]
