"""The public views: a documented API for our CLI and for anyone with `duckdb`.

Each view is (description, SELECT, {column: description}); the descriptions are written into the
file as DuckDB comments (see `duckdb_columns()`), and README.md documents the same columns.
"""
from __future__ import annotations

_TOKENS = ["input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"]

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
    "properties": "Custom properties (alephant.property.<name>, alephant-property-<name>) as JSON, inherited name by name.",
    "convention": "Conventions the step was mapped from, first wins: rules, alephant, vercel_ai, openinference, traceloop, langsmith, pydantic_ai, openlit, gen_ai, generic.",
    "anomalies": "JSON list of values that were flagged and left out (e.g. negative token counts).",
    "mapping_error": "Why the span could not be mapped (it is stored raw).",
}

STEPS_SQL = "SELECT " + ", ".join(
    "CAST(properties AS JSON) AS properties" if c == "properties"
    else "CAST(anomalies AS JSON) AS anomalies" if c == "anomalies"
    else "provided_cost - computed_cost AS cost_difference" if c == "cost_difference"
    else "CASE WHEN " + " IS NULL AND ".join(_TOKENS) + " IS NULL THEN NULL ELSE "
         + " + ".join(f"coalesce({t}, 0)" for t in _TOKENS) + " END AS total_tokens" if c == "total_tokens"
    else c
    for c in STEP_COLUMNS) + " FROM _spans"

_TOKEN_SUMS = ", ".join(f"coalesce(sum({t}), 0) AS {t}" for t in _TOKENS)
_TOTAL = " + ".join(f"coalesce(sum({t}), 0)" for t in _TOKENS)

RUN_COLUMNS = {
    "run_id": "Run id.",
    "session_id": "Session of the run's earliest step that has one.",
    "agent_id": "Agent of the run's earliest step that has one.",
    "user_id": "User of the run's earliest step that has one.",
    "workspace_id": "Workspace of the run's earliest step that has one.",
    "start_time": "First step start.",
    "end_time": "Last step end.",
    "duration_ms": "end_time - start_time in milliseconds.",
    "trace_count": "Number of traces the run spans.",
    "step_count": "Number of steps.",
    "model_calls": "Steps of kind model_call.",
    "tool_calls": "Steps of kind tool_call.",
    "error_count": "Steps with status ERROR.",
    **{t: f"Sum of {t}." for t in _TOKENS},
    "total_tokens": "Sum of all token buckets.",
    "cost": "Total cost (today: model cost) in USD.",
    "model_cost": "Sum of model_cost.",
    "unpriced_steps": "Model calls that could not be priced (their cost is missing from cost).",
}

RUNS_SQL = f"""
SELECT run_id,
  arg_min(session_id, start_time) FILTER (WHERE session_id IS NOT NULL) AS session_id,
  arg_min(agent_id, start_time) FILTER (WHERE agent_id IS NOT NULL) AS agent_id,
  arg_min(user_id, start_time) FILTER (WHERE user_id IS NOT NULL) AS user_id,
  arg_min(workspace_id, start_time) FILTER (WHERE workspace_id IS NOT NULL) AS workspace_id,
  min(start_time) AS start_time, max(end_time) AS end_time,
  date_diff('microsecond', min(start_time), max(end_time)) / 1000.0 AS duration_ms,
  count(DISTINCT trace_id) AS trace_count,
  count(*) AS step_count,
  count(*) FILTER (WHERE step_kind = 'model_call') AS model_calls,
  count(*) FILTER (WHERE step_kind = 'tool_call') AS tool_calls,
  count(*) FILTER (WHERE status = 'ERROR') AS error_count,
  {_TOKEN_SUMS}, {_TOTAL} AS total_tokens,
  coalesce(sum(model_cost), 0) AS cost,
  coalesce(sum(model_cost), 0) AS model_cost,
  count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_steps
FROM _spans GROUP BY run_id"""

SESSION_COLUMNS = {
    "session_id": "Session id (steps without a session are not in this view).",
    "session_name": "Session name of the earliest step that has one.",
    "workspace_id": "Workspace of the earliest step that has one.",
    "agent_id": "Agent of the earliest step that has one.",
    "run_count": "Number of runs.",
    "step_count": "Number of steps.",
    "error_count": "Steps with status ERROR.",
    "start_time": "First step start.",
    "end_time": "Last step end.",
    "duration_ms": "end_time - start_time in milliseconds.",
    "total_tokens": "Sum of all token buckets.",
    "cost": "Total cost (today: model cost) in USD.",
    "unpriced_steps": "Model calls that could not be priced.",
}

SESSIONS_SQL = f"""
SELECT session_id,
  arg_min(session_name, start_time) FILTER (WHERE session_name IS NOT NULL) AS session_name,
  arg_min(workspace_id, start_time) FILTER (WHERE workspace_id IS NOT NULL) AS workspace_id,
  arg_min(agent_id, start_time) FILTER (WHERE agent_id IS NOT NULL) AS agent_id,
  count(DISTINCT run_id) AS run_count, count(*) AS step_count,
  count(*) FILTER (WHERE status = 'ERROR') AS error_count,
  min(start_time) AS start_time, max(end_time) AS end_time,
  date_diff('microsecond', min(start_time), max(end_time)) / 1000.0 AS duration_ms,
  {_TOTAL} AS total_tokens,
  coalesce(sum(model_cost), 0) AS cost,
  count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_steps
FROM _spans WHERE session_id IS NOT NULL GROUP BY session_id"""

AGENT_COLUMNS = {
    "agent_id": "Agent id; one row with NULL holds the steps no agent is attributed to.",
    "agent_name": "Agent name of the earliest step that has one.",
    "workspace_id": "Workspace of the earliest step that has one.",
    "session_count": "Number of sessions.",
    "run_count": "Number of runs.",
    "step_count": "Number of steps.",
    "model_calls": "Steps of kind model_call.",
    "tool_calls": "Steps of kind tool_call.",
    "error_count": "Steps with status ERROR.",
    "total_tokens": "Sum of all token buckets.",
    "cost": "Total cost (today: model cost) in USD.",
    "unpriced_steps": "Model calls that could not be priced.",
}

AGENTS_SQL = f"""
SELECT agent_id,
  arg_min(agent_name, start_time) FILTER (WHERE agent_name IS NOT NULL) AS agent_name,
  arg_min(workspace_id, start_time) FILTER (WHERE workspace_id IS NOT NULL) AS workspace_id,
  count(DISTINCT session_id) AS session_count,
  count(DISTINCT run_id) AS run_count, count(*) AS step_count,
  count(*) FILTER (WHERE step_kind = 'model_call') AS model_calls,
  count(*) FILTER (WHERE step_kind = 'tool_call') AS tool_calls,
  count(*) FILTER (WHERE status = 'ERROR') AS error_count,
  {_TOTAL} AS total_tokens,
  coalesce(sum(model_cost), 0) AS cost,
  count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_steps
FROM _spans GROUP BY agent_id"""

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
    "received_at": "When the receiver committed the span (UTC).",
    "mapping_error": "Why the span could not be mapped, if it could not.",
}

SPANS_SQL = "SELECT " + ", ".join(
    f"CAST({c} AS JSON) AS {c}" if c in ("resource", "attributes", "events", "links") else c
    for c in SPAN_COLUMNS_DOC) + " FROM _spans"

VIEWS: dict[str, tuple[str, str, dict[str, str]]] = {
    "steps": ("One row per span: the step it is, its run context (inheritance resolved), tokens and cost.", STEPS_SQL, STEP_COLUMNS),
    "runs": ("One row per run.", RUNS_SQL, RUN_COLUMNS),
    "sessions": ("One row per session.", SESSIONS_SQL, SESSION_COLUMNS),
    "agents": ("One row per agent.", AGENTS_SQL, AGENT_COLUMNS),
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
