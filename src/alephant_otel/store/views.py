"""The public views: a documented API for our CLI and for anyone with `duckdb`.

Each view is (description, SELECT, {column: description}); the descriptions are written into the
file as DuckDB comments (see `duckdb_columns()`), and README.md documents the same columns.
Roll-up views come from rollups.py, one row per group and currency.
"""
from __future__ import annotations

from .rollups import (
    COMMON_DOCS, MONEY_SQL, PAYMENT_SPEND, REVENUE, REVENUE_CURRENCY, TOKENS, Rollup, levels,
)

STEP_COLUMNS = {
    "trace_id": "OTel trace id, 32 lowercase hex digits.",
    "span_id": "OTel span id, 16 lowercase hex digits; (trace_id, span_id) is unique.",
    "parent_span_id": "Parent span id (hex), NULL for a root span.",
    "step_kind": "model_call, tool_call, api_call, payment, policy_check or workflow_action; NULL when the span could not be mapped (see mapping_error).",
    "operation": "Source operation: gen_ai.operation.name when present, else the span name.",
    "name": "Span name.",
    "start_time": "Span start (UTC).",
    "end_time": "Span end (UTC).",
    "duration_ms": "End minus start in milliseconds (nanosecond precision).",
    "status": "Span status: UNSET, OK or ERROR.",
    "error_type": "error.type, else the type of the first exception event.",
    "workspace_id": "Workspace (alephant.workspace.id), inherited.",
    "department_id": "Department (alephant.department.id), inherited.",
    "agent_id": "Agent (alephant.agent.id, Alephant-Agent-Id, gen_ai.agent.id/name), inherited.",
    "agent_name": "Agent name (alephant.agent.name, gen_ai.agent.name), inherited.",
    "virtual_key_id": "Virtual key id (never the key itself), inherited.",
    "user_id": "End user (alephant.user.id, user.id, enduser.id, framework user keys), inherited.",
    "session_id": "Session (alephant.session.id, alephant-session-id, gen_ai.conversation.id), inherited.",
    "session_path": "Session path (alephant-session-path), inherited.",
    "session_name": "Session name (alephant-session-name), inherited.",
    "run_id": "Run (alephant.run.id, Alephant-Run-Id), inherited; the trace id when none is given.",
    "request_id": "Request id (x-request-id) of this span, not inherited.",
    "prompt_id": "Prompt template id (alephant.prompt.id, alephant-prompt-id, gen_ai.prompt.name), inherited.",
    "prompt_version": "Prompt template version, inherited.",
    "service_name": "service.name of the span's resource.",
    "provider": "Provider (gen_ai.provider.name, or the deprecated gen_ai.system, normalised).",
    "model": "Billed model: the response model, else the request model.",
    "request_model": "Model the request asked for.",
    "response_model": "Model the provider reported.",
    "tool_name": "Tool name of a tool call (gen_ai.tool.name).",
    "input_tokens": "Input tokens not read from or written to a cache.",
    "cache_read_tokens": "Input tokens read from a prompt cache.",
    "cache_write_tokens": "Input tokens written to a prompt cache.",
    "output_tokens": "Output tokens that are not reasoning tokens.",
    "reasoning_tokens": "Reasoning output tokens.",
    "total_tokens": "Sum of the five token buckets (NULL when the step has no usage).",
    "model_cost": "The model cost that counts, in `currency`: the provided cost when there is one (configurable with serve --cost-preference), else the computed one; NULL when unpriced.",
    "computed_cost": "Model cost computed here from tokens (genai-prices), whether or not it counts.",
    "provided_cost": "Cost the span brought itself (llm.cost.total, operation.cost, gen_ai.usage.cost, alephant.cost.amount, a rule).",
    "provided_cost_source": "Attribute key the provided cost came from.",
    "cost_difference": "provided_cost - computed_cost, when both exist.",
    "cost_source": "computed (priced here), provided (sent by the agent), unpriced (see unpriced_reason); NULL for steps with nothing to price.",
    "unpriced_reason": "Why a model call has no cost.",
    "currency": "ISO 4217 currency of model_cost (USD).",
    "priced_model": "Model id the price was taken for (genai-prices id).",
    "priced_provider": "Provider id the price was taken for.",
    "price_source": "Price table used, with its version.",
    "workflow_name": "Workflow (alephant.workflow.name, gen_ai.workflow.name, traceloop.workflow.name, ai.telemetry.functionId), inherited.",
    "endpoint_id": "Paid endpoint (alephant.endpoint.id) whose call the step belongs to, inherited.",
    "budget_scope": "Budget scope (workspace, department, agent, member, virtual_key), inherited.",
    "budget_id": "Budget id, inherited.",
    "budget_limit": "Budget limit in USD as the gateway saw it, inherited.",
    "budget_consumed": "Budget consumed in USD when the span was recorded, inherited.",
    "budget_remaining": "Budget remaining in USD when the span was recorded, inherited.",
    "api_host": "Host of an api_call (server.address, url.full), used to price external APIs.",
    "api_method": "HTTP or RPC method of an api_call.",
    "tool_cost": "Cost of a tool or API call (provided, or from a price list), or a cost another non-model step brought.",
    "tool_cost_currency": "Currency of tool_cost.",
    "payment_amount": "Amount of a payment event (alephant.payment.amount).",
    "payment_currency": "Currency of the payment.",
    "payment_direction": "outbound (spend) or inbound (revenue).",
    "payment_rail": "Payment rail, e.g. x402.",
    "payment_status": "verified, settled, failed or refunded (NULL: taken as settled).",
    "payment_spend": "Money spent by this step: outbound payments that count (refunds negative), in payment_currency.",
    "revenue": "Revenue of this step: inbound payments that count, else alephant.revenue.amount (once), in revenue_currency.",
    "revenue_currency": "Currency of revenue.",
    "fees": "Fees of this step (alephant.fee.amount), in fee_currency.",
    "fee_currency": "Currency of fees.",
    "total_cost": "model_cost + tool_cost + payment_spend + fees, when they share one currency (money_currency); NULL when they do not.",
    "margin_contribution": "revenue - total_cost, when they share one currency.",
    "money_currency": "The one currency of this step's amounts; NULL when it has none or several.",
    "policy_decision": "allowed, blocked, throttled or escalated (alephant.policy.decision, or a guardrail verdict we recognise).",
    "policy_id": "Policy that decided.",
    "policy_reason": "Why it decided so.",
    "policy_verdict": "The native guardrail verdict (gen_ai.guardrail.result.type=value), kept as sent.",
    "retry_attempt": "Retry attempt (alephant.retry.attempt, http.request.resend_count); 0 or NULL for a first try.",
    "derived_from": "For a step made from a span event (a payment or policy decision a gateway recorded as an event): which event of which span.",
    "properties": "Custom properties (alephant.property.<name>, alephant-property-<name>) as JSON, inherited name by name.",
    "convention": "Conventions the step was mapped from, first wins: rules, alephant, vercel_ai, openinference, traceloop, langsmith, pydantic_ai, openlit, gen_ai, generic.",
    "anomalies": "JSON list of values that were flagged and left out (e.g. negative token counts).",
    "mapping_error": "Why the span could not be mapped (it is stored raw).",
}

_DERIVED = {
    "total_tokens": "CASE WHEN " + " IS NULL AND ".join(TOKENS) + " IS NULL THEN NULL ELSE "
                    + " + ".join(f"coalesce({t}, 0)" for t in TOKENS) + " END",
    "payment_spend": PAYMENT_SPEND,
    "revenue": REVENUE,
    "revenue_currency": REVENUE_CURRENCY,
    "fees": "fee_amount",
    "cost_difference": "provided_cost - computed_cost",
    "properties": "CAST(properties AS JSON)",
    "anomalies": "CAST(anomalies AS JSON)",
    **{b: f"TRY_CAST({b} AS DECIMAL(18, 6))" for b in ("budget_limit", "budget_consumed", "budget_remaining")},
}
_CCYS = ("list_distinct(list_filter([CASE WHEN model_cost IS NOT NULL THEN currency END,"
         " CASE WHEN tool_cost IS NOT NULL THEN tool_cost_currency END,"
         " CASE WHEN payment_spend IS NOT NULL THEN payment_currency END,"
         " CASE WHEN fees IS NOT NULL THEN fee_currency END,"
         " CASE WHEN revenue IS NOT NULL THEN revenue_currency END], x -> x IS NOT NULL))")
_COST = " + ".join(f"coalesce({c}, 0)" for c in ("model_cost", "tool_cost", "payment_spend", "fees"))
_TOTALS = {
    "money_currency": "CASE WHEN len(_ccys) = 1 THEN _ccys[1] END",
    "total_cost": f"CASE WHEN len(_ccys) <= 1 THEN {_COST} END",
    "margin_contribution": f"CASE WHEN len(_ccys) <= 1 THEN coalesce(revenue, 0) - ({_COST}) END",
}
_INNER = [f"{_DERIVED[c]} AS {c}" if c in _DERIVED else c for c in STEP_COLUMNS if c not in _TOTALS]
# three layers: stored and derived columns; the step's currencies; totals in its one currency
STEPS_SQL = ("SELECT " + ", ".join(c if c not in _TOTALS else f"{_TOTALS[c]} AS {c}" for c in STEP_COLUMNS)
             + " FROM (SELECT *, " + _CCYS + " AS _ccys FROM (SELECT " + ", ".join(_INNER) + " FROM _spans))")


def _rollup_view(level: Rollup, doc_keys: dict[str, str]) -> dict[str, str]:
    docs = {**{n: doc for _, n, doc in level.stats}, **COMMON_DOCS, **doc_keys}
    return {c: docs[c] for c in level.columns()}


_LEVELS = levels()
ROLLUP_VIEWS = {
    "runs": ("One row per run (and currency).", "run", {"run_id": "Run id."}),
    "sessions": ("One row per session (and currency); steps without a session are not in it.", "session",
                 {"session_id": "Session id."}),
    "agents": ("One row per agent (and currency); the row with a NULL agent holds unattributed steps.", "agent",
               {"agent_id": "Agent id (NULL: steps no agent is attributed to)."}),
    "workflows": ("One row per workflow (and currency).", "workflow", {"workflow_name": "Workflow name (NULL: steps outside any workflow)."}),
    "endpoints": ("One row per paid endpoint (and currency): calls, revenue, cost, margin, success rate, latency.",
                  "endpoint", {"endpoint_id": "Paid endpoint id (NULL: steps outside any endpoint call)."}),
    "prompts": ("One row per prompt id and version (and currency).", "prompt",
                {"prompt_id": "Prompt template id.", "prompt_version": "Prompt template version."}),
    "departments": ("One row per department (and currency).", "department", {"department_id": "Department id."}),
    "workspaces": ("One row per workspace (and currency).", "workspace", {"workspace_id": "Workspace id."}),
    "daily_costs": ("One row per day, workspace, agent and model (and currency).", "daily",
                    {"day": "Day (UTC) the steps started.", "workspace_id": "Workspace id.", "agent_id": "Agent id.",
                     "model": "Model (NULL for steps that are not model calls)."}),
}

MONEY_COLUMNS_DOC = {
    **{k: f"The step's {k} (see steps)." for k in
       ["trace_id", "span_id", "run_id", "session_id", "agent_id", "user_id", "workflow_name", "endpoint_id",
        "department_id", "workspace_id", "virtual_key_id", "prompt_id", "prompt_version", "provider", "model",
        "tool_name", "api_host", "step_kind", "start_time", "retry_attempt", "properties"]},
    "component": "model_cost, tool_cost, payment_spend, fees or revenue.",
    "amount": "The amount (payment_spend and revenue are negative for refunds).",
    "currency": "Its currency.",
}

POLICY_SQL = """
SELECT agent_id, policy_id, policy_decision, count(*) AS decisions, count(DISTINCT run_id) AS run_count,
  list(DISTINCT run_id ORDER BY run_id) FILTER (WHERE policy_decision IN ('blocked', 'escalated')) AS runs_blocked_or_escalated,
  min(start_time) AS first_seen, max(start_time) AS last_seen
FROM _spans WHERE step_kind = 'policy_check' OR policy_decision IS NOT NULL
GROUP BY ALL"""
POLICY_COLUMNS = {
    "agent_id": "Agent the decision concerned.",
    "policy_id": "Policy that decided.",
    "policy_decision": "allowed, blocked, throttled, escalated (NULL: a native verdict we do not translate; see steps.policy_verdict).",
    "decisions": "Number of decisions.",
    "run_count": "Runs with such a decision.",
    "runs_blocked_or_escalated": "The runs this policy blocked or escalated (for those decisions).",
    "first_seen": "First decision.",
    "last_seen": "Last decision.",
}

SPAN_COLUMNS_DOC = {
    "trace_id": "Trace id (hex).", "span_id": "Span id (hex).", "parent_span_id": "Parent span id (hex).",
    "trace_state": "W3C trace state.", "name": "Span name.",
    "span_kind": "INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER or UNSPECIFIED.",
    "start_time": "Start (UTC).", "end_time": "End (UTC).", "status": "UNSET, OK or ERROR.",
    "status_message": "Status message.", "service_name": "service.name.",
    "scope_name": "Instrumentation scope name.", "scope_version": "Instrumentation scope version.",
    "resource": "Resource attributes (JSON).",
    "attributes": "Span attributes not promoted to a column of `steps` (JSON); secret headers are never kept.",
    "events": "Span events with their attributes (JSON).", "links": "Span links (JSON).",
    "received_at": "When the receiver committed the span (UTC); never earlier than a step committed before it (the writer's clock does not go back).",
    "mapping_error": "Why the span could not be mapped, if it could not.",
}

SPANS_SQL = "SELECT " + ", ".join(
    f"CAST({c} AS JSON) AS {c}" if c in ("resource", "attributes", "events", "links") else c
    for c in SPAN_COLUMNS_DOC) + " FROM _spans"

VIEWS: dict[str, tuple[str, str, dict[str, str]]] = {
    "steps": ("One row per span (and per payment or policy event): the step it is, its run context "
              "(inheritance resolved), tokens, cost and money.", STEPS_SQL, STEP_COLUMNS),
    "money": ("One row per amount of a step: each cost component and revenue with its currency.", MONEY_SQL, MONEY_COLUMNS_DOC),
    **{name: (doc, _LEVELS[level].sql(skip_null_keys=name == "sessions"), _rollup_view(_LEVELS[level], keys))
       for name, (doc, level, keys) in ROLLUP_VIEWS.items()},
    "policy_decisions": ("Policy decisions by agent and policy, with the runs each blocked or escalated.", POLICY_SQL, POLICY_COLUMNS),
    "spans": ("The raw span fields, as sent.", SPANS_SQL, SPAN_COLUMNS_DOC),
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def statements() -> list[str]:
    out = []
    for name, (doc, sql, columns) in VIEWS.items():
        out.append(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        out.append(f"COMMENT ON VIEW {name} IS {_quote(doc)}")
        out += [f"COMMENT ON COLUMN {name}.{c} IS {_quote(d)}" for c, d in columns.items()]
    return out
