"""The store's tables. The schema version is recorded in the file (`_meta`).

Tables are internal (prefixed `_`); the public API is the views in views.py.
"""
from __future__ import annotations

import pyarrow as pa

from ..inherit import RESOLVED_FIELDS

SCHEMA_VERSION = 2

# (column, DuckDB type, Arrow type) of _spans, in order.
_S, _I, _F, _T = pa.string(), pa.int64(), pa.float64(), pa.timestamp("us")
_D = pa.decimal128(18, 12)
SPAN_COLUMNS: list[tuple[str, str, pa.DataType]] = [
    ("trace_id", "VARCHAR NOT NULL", _S),
    ("span_id", "VARCHAR NOT NULL", _S),
    ("parent_span_id", "VARCHAR", _S),
    ("trace_state", "VARCHAR", _S),
    ("name", "VARCHAR", _S),
    ("span_kind", "VARCHAR", _S),
    ("start_time", "TIMESTAMP", _T),
    ("end_time", "TIMESTAMP", _T),
    ("duration_ms", "DOUBLE", _F),
    ("status", "VARCHAR", _S),
    ("status_message", "VARCHAR", _S),
    ("error_type", "VARCHAR", _S),
    ("step_kind", "VARCHAR", _S),
    ("operation", "VARCHAR", _S),
    ("provider", "VARCHAR", _S),
    ("request_model", "VARCHAR", _S),
    ("response_model", "VARCHAR", _S),
    ("model", "VARCHAR", _S),
    ("tool_name", "VARCHAR", _S),
    ("input_tokens", "BIGINT", _I),
    ("cache_read_tokens", "BIGINT", _I),
    ("cache_write_tokens", "BIGINT", _I),
    ("output_tokens", "BIGINT", _I),
    ("reasoning_tokens", "BIGINT", _I),
    ("model_cost", "DECIMAL(18,12)", _D),
    ("computed_cost", "DECIMAL(18,12)", _D),
    ("provided_cost", "DECIMAL(18,12)", _D),
    ("provided_cost_source", "VARCHAR", _S),
    ("provided_cost_currency", "VARCHAR", _S),
    ("cost_source", "VARCHAR", _S),
    ("unpriced_reason", "VARCHAR", _S),
    ("currency", "VARCHAR", _S),
    ("priced_model", "VARCHAR", _S),
    ("priced_provider", "VARCHAR", _S),
    ("price_source", "VARCHAR", _S),
    ("api_host", "VARCHAR", _S),
    ("api_method", "VARCHAR", _S),
    ("tool_cost", "DECIMAL(18,12)", _D),
    ("tool_cost_currency", "VARCHAR", _S),
    ("payment_amount", "DECIMAL(18,12)", _D),
    ("payment_currency", "VARCHAR", _S),
    ("payment_direction", "VARCHAR", _S),
    ("payment_rail", "VARCHAR", _S),
    ("payment_status", "VARCHAR", _S),
    ("revenue_amount", "DECIMAL(18,12)", _D),
    ("revenue_currency", "VARCHAR", _S),
    ("fee_amount", "DECIMAL(18,12)", _D),
    ("fee_currency", "VARCHAR", _S),
    ("policy_decision", "VARCHAR", _S),
    ("policy_id", "VARCHAR", _S),
    ("policy_reason", "VARCHAR", _S),
    ("policy_verdict", "VARCHAR", _S),
    ("retry_attempt", "INTEGER", pa.int32()),
    ("workspace_id", "VARCHAR", _S),
    ("department_id", "VARCHAR", _S),
    ("agent_id", "VARCHAR", _S),
    ("agent_name", "VARCHAR", _S),
    ("virtual_key_id", "VARCHAR", _S),
    ("user_id", "VARCHAR", _S),
    ("session_id", "VARCHAR", _S),
    ("session_path", "VARCHAR", _S),
    ("session_name", "VARCHAR", _S),
    ("run_id", "VARCHAR", _S),
    ("request_id", "VARCHAR", _S),
    ("prompt_id", "VARCHAR", _S),
    ("prompt_version", "VARCHAR", _S),
    ("workflow_name", "VARCHAR", _S),
    ("endpoint_id", "VARCHAR", _S),
    ("budget_scope", "VARCHAR", _S),
    ("budget_id", "VARCHAR", _S),
    ("budget_limit", "VARCHAR", _S),
    ("budget_consumed", "VARCHAR", _S),
    ("budget_remaining", "VARCHAR", _S),
    ("properties", "VARCHAR", _S),
    ("service_name", "VARCHAR", _S),
    ("scope_name", "VARCHAR", _S),
    ("scope_version", "VARCHAR", _S),
    ("resource", "VARCHAR", _S),
    ("attributes", "VARCHAR", _S),
    ("events", "VARCHAR", _S),
    ("links", "VARCHAR", _S),
    ("convention", "VARCHAR", _S),
    ("anomalies", "VARCHAR", _S),
    ("mapping_error", "VARCHAR", _S),
    ("derived_from", "VARCHAR", _S),
    ("context_tiers", "VARCHAR", _S),
    ("received_at", "TIMESTAMP", _T),
]
SPAN_COLUMN_NAMES = [c for c, _, _ in SPAN_COLUMNS]
ARROW_SCHEMA = pa.schema([(c, t) for c, _, t in SPAN_COLUMNS])

CONTEXT_COLUMNS = list(RESOLVED_FIELDS)  # the resolved run context (inherit.py)

DDL = [
    "CREATE TABLE IF NOT EXISTS _meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS _spans (\n  "
    + ",\n  ".join(f"{c} {t}" for c, t, _ in SPAN_COLUMNS)
    + "\n)",
    # one row per trace stored, when its first span was written. A span is stored at most once
    # per (trace_id, span_id); _spans has no index for it (a primary key's index cost ~150 bytes
    # per step): the writer checks a batch's spans against its traces' stored spans only, read
    # from `first_received` on (received_at never decreases, see writer.py), or none at all for
    # a trace that is new here.
    "CREATE TABLE IF NOT EXISTS _traces (trace_id VARCHAR PRIMARY KEY, first_received TIMESTAMP NOT NULL)",
    # spans whose parent has not arrived (yet): when it does, their subtree is re-resolved
    "CREATE TABLE IF NOT EXISTS _orphans (trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR,"
    " PRIMARY KEY (trace_id, span_id))",
    # virtual keys: only a SHA-256 of each key is kept
    "CREATE TABLE IF NOT EXISTS _virtual_keys (key_id VARCHAR PRIMARY KEY, key_hash VARCHAR NOT NULL,"
    " workspace_id VARCHAR NOT NULL, department_id VARCHAR, agent_id VARCHAR, created_at TIMESTAMP,"
    " revoked_at TIMESTAMP)",
    # spans that cannot be keyed (bad ids): kept as their raw protobuf bytes with the reason
    "CREATE TABLE IF NOT EXISTS _rejected_spans (received_at TIMESTAMP, trace_id VARCHAR,"
    " span_id VARCHAR, reason VARCHAR, span BLOB)",
]

# MIGRATIONS[n] upgrades a file from schema n to n + 1 (a list of SQL statements).
MIGRATIONS: dict[int, list[str]] = {
    # 1 -> 2: _spans loses its primary key (its index was half the file), _traces takes over.
    # Rows are copied in the order received, so that `received_at` stays clustered in the file.
    1: ["CREATE TABLE _spans_v2 AS SELECT * FROM _spans ORDER BY received_at NULLS FIRST",
        "DROP TABLE _spans",
        "ALTER TABLE _spans_v2 RENAME TO _spans",
        "ALTER TABLE _spans ALTER COLUMN trace_id SET NOT NULL",
        "ALTER TABLE _spans ALTER COLUMN span_id SET NOT NULL",
        "UPDATE _spans SET received_at = TIMESTAMP '1970-01-01' WHERE received_at IS NULL",
        "CREATE TABLE _traces (trace_id VARCHAR PRIMARY KEY, first_received TIMESTAMP NOT NULL)",
        "INSERT INTO _traces SELECT trace_id, min(received_at) FROM _spans GROUP BY trace_id"],
}
