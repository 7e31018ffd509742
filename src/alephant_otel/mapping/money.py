"""Money and governance on a step: payments, revenue, fees, policy decisions, retries.

Read from our attributes (semconv/registry/alephant.yaml) and their foreign equivalents (GenAI
guardrail results, `http.request.resend_count`). Amounts are Decimals with 12 decimal places;
currencies are upper-case codes, USD when absent. A bad value is flagged in `anomalies` and left
out, never stored as is.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ..semconv import CONVENTIONS, ENUM_VALUES, STEP_ATTRIBUTES

COST_PLACES = Decimal("0.000000000001")  # money columns are DECIMAL(18, 12)
MAX_AMOUNT = Decimal("1000000")  # one step moving a million or more is not a real figure
_BY_FIELD = {f: k for k, f in STEP_ATTRIBUTES.items()}
_GUARDRAIL = CONVENTIONS["gen_ai"]["guardrail"]
_DECISIONS = {v.lower(): decision for decision, values in _GUARDRAIL["decisions"].items() for v in values}
_RETRY_KEYS = CONVENTIONS["generic"]["retry_attempt"]

MONEY_FIELDS = ("payment_amount", "payment_currency", "payment_direction", "payment_rail", "payment_status",
                "revenue_amount", "revenue_currency", "fee_amount", "fee_currency",
                "policy_decision", "policy_id", "policy_reason", "policy_verdict", "retry_attempt")


def money(raw: Any) -> Decimal | None:
    """A non-negative amount below MAX_AMOUNT, from a number or numeric string, to 12 places."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        d = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    if not d.is_finite() or d < 0 or d >= MAX_AMOUNT:
        return None
    d = d.quantize(COST_PLACES, rounding=ROUND_HALF_EVEN)
    return d if d < MAX_AMOUNT else None  # rounding can reach the limit: DECIMAL(18, 12) holds less


def currency(raw: Any) -> str:
    return str(raw).strip().upper() if raw not in (None, "") else "USD"


def _text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    return str(v)


def _enum(field: str, raw: Any, anomalies: list[str]) -> str | None:
    key = _BY_FIELD[field]
    v = _text(raw)
    if v is None:
        return None
    allowed = ENUM_VALUES[key]
    if v.lower() in allowed:
        return v.lower()
    anomalies.append(f"{key}={v!r} is not one of {', '.join(allowed)}; ignored")
    return None


# Every key `read` may look at: a span with none of them (most model calls) carries nothing
_READ_KEYS = frozenset(
    [_BY_FIELD[f] for f in MONEY_FIELDS if f in _BY_FIELD]
    + [k for part in ("policy_id", "result_type", "result_value", "reason") for k in _GUARDRAIL[part]]
    + list(_RETRY_KEYS))


# What `read` returns for a span that carries none of its keys (most spans): one shared dict,
# never changed (a read-only mappingproxy cost ~0.5 us more per span where rows spread it)
_NOTHING = dict.fromkeys(MONEY_FIELDS)


def read(attrs: dict[str, Any], consumed: set[str], anomalies: list[str]):
    """The money and governance fields a span (or span event) carries: a dict of MONEY_FIELDS,
    shared by the spans that carry none (read it, never change it)."""
    if _READ_KEYS.isdisjoint(attrs):
        return _NOTHING
    out = dict.fromkeys(MONEY_FIELDS)

    def take(field: str):
        key = _BY_FIELD[field]
        if key in attrs:
            consumed.add(key)
            return attrs[key]
        return None

    for prefix in ("payment", "revenue", "fee"):
        raw = take(f"{prefix}_amount")
        if raw is None:
            continue
        amount = money(raw)
        if amount is None:
            anomalies.append(f"{_BY_FIELD[prefix + '_amount']}={raw!r} is not a valid amount; ignored")
            consumed.discard(_BY_FIELD[prefix + "_amount"])
            continue
        out[f"{prefix}_amount"] = amount
        out[f"{prefix}_currency"] = currency(take(f"{prefix}_currency"))
    if out["payment_amount"] is not None:
        out["payment_direction"] = _enum("payment_direction", take("payment_direction"), anomalies) or "outbound"
        out["payment_status"] = _enum("payment_status", take("payment_status"), anomalies)
        out["payment_rail"] = _text(take("payment_rail"))
    out["policy_decision"] = _enum("policy_decision", take("policy_decision"), anomalies)
    out["policy_id"] = _text(take("policy_id"))
    out["policy_reason"] = _text(take("policy_reason"))
    if out["policy_decision"] is None:
        _guardrail(attrs, out, consumed)
    out["retry_attempt"] = _retry(attrs, take("retry_attempt"), consumed, anomalies)
    return out


def _first(attrs: dict, keys, consumed: set[str]) -> str | None:
    for k in keys:
        v = _text(attrs.get(k))
        if v is not None:
            consumed.add(k)
            return v
    return None


def _guardrail(attrs: dict, out: dict, consumed: set[str]) -> None:
    value = _first(attrs, _GUARDRAIL["result_value"], consumed)
    kind = _first(attrs, _GUARDRAIL["result_type"], consumed)
    if value is None and kind is None:
        return
    out["policy_verdict"] = f"{kind}={value}" if kind and value else (value or kind)
    out["policy_decision"] = _DECISIONS.get((value or "").lower())
    out["policy_id"] = out["policy_id"] or _first(attrs, _GUARDRAIL["policy_id"], consumed)
    out["policy_reason"] = out["policy_reason"] or _first(attrs, _GUARDRAIL["reason"], consumed)


def _retry(attrs: dict, raw: Any, consumed: set[str], anomalies: list[str]) -> int | None:
    key = _BY_FIELD["retry_attempt"]
    if raw is None:
        for k in _RETRY_KEYS:
            if k in attrs:
                key, raw = k, attrs[k]
                consumed.add(k)
                break
    if raw is None:
        return None
    try:
        n = int(str(raw).strip())
    except ValueError:
        n = -1
    if n < 0 or n > 10_000:
        anomalies.append(f"{key}={raw!r} is not a retry attempt (0, 1, 2, ...); ignored")
        consumed.discard(key)
        return None
    return n


def is_payment(values: dict) -> bool:
    return values["payment_amount"] is not None


def is_policy(values: dict) -> bool:
    return values["policy_decision"] is not None or values["policy_verdict"] is not None


def is_step_event(name: str, attrs: dict) -> bool:
    """Whether a span event records a payment or a policy decision (a step of its own)."""
    return (name == _GUARDRAIL["event"] or _BY_FIELD["payment_amount"] in attrs
            or _BY_FIELD["policy_decision"] in attrs)
