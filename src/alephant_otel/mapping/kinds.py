"""Which step a span is: model_call, tool_call, api_call, payment, policy_check, workflow_action.

Order of evidence: an explicit `alephant.step.kind`; a mapping rule; the conventions' own
span kinds and operation names (in registry order); a span with a model and token usage (a
model call whatever its name); a CLIENT span of plain HTTP or RPC (api_call); everything else
is a workflow_action.
"""
from __future__ import annotations

from typing import Any

from ..semconv import STEP_KIND, STEP_KINDS

CLIENT = 3
_API_KEYS = ("http.request.method", "http.method", "rpc.system", "url.full", "http.url")


def classify(attrs: dict[str, Any], span_kind: int, hinted: str | None, has_model: bool,
             has_usage: bool, consumed: set[str], anomalies: list[str]) -> str:
    explicit = attrs.get(STEP_KIND)
    if explicit is not None:
        consumed.add(STEP_KIND)
        if explicit in STEP_KINDS:
            return explicit
        anomalies.append(f"{STEP_KIND}={explicit!r} is not one of {', '.join(STEP_KINDS)}; ignored")
    if hinted in STEP_KINDS:
        return hinted
    if has_model and has_usage:
        return "model_call"
    if span_kind == CLIENT and any(k in attrs for k in _API_KEYS):
        return "api_call"
    return "workflow_action"
