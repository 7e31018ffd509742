"""Recompute computed costs after prices or overrides change. Provided figures are never
overwritten; every repriced figure records the price source (and version) it used."""
from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from ..pricing import price_step
from .writer import registered

_READ = ["trace_id", "span_id", "step_kind", "provider", "request_model", "response_model", "model",
         "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
         "provided_cost", "provided_cost_currency", "tool_name", "api_host", "api_method", "start_time"]
_WRITE = ["model_cost", "computed_cost", "cost_source", "unpriced_reason", "currency", "priced_model",
          "priced_provider", "price_source", "tool_cost", "tool_cost_currency"]
_D = pa.decimal128(18, 12)
_SCHEMA = pa.schema([("trace_id", pa.string()), ("span_id", pa.string())] + [
    (c, _D if c in ("model_cost", "computed_cost", "tool_cost") else pa.string()) for c in _WRITE])


def reprice(con, prices, prefer: str = "provided", since: datetime | None = None,
            until: datetime | None = None, table: str = "_spans") -> int:
    """Reprice model, tool and API calls that started in [since, until); returns how many
    steps' figures changed. Runs in the caller's transaction-less connection as one transaction.
    Reads `_spans`, writes `table` (a DuckLake's `_span_rows`: every stored copy of a span)."""
    where = ["(step_kind = 'model_call' OR (step_kind IN ('tool_call', 'api_call') AND provided_cost IS NULL))"]
    params: list = []
    if since is not None:
        where.append("start_time >= ?")
        params.append(since)
    if until is not None:
        where.append("start_time < ?")
        params.append(until)
    rows = con.execute(f"SELECT {', '.join(_READ + _WRITE)} FROM _spans WHERE {' AND '.join(where)}",
                       params).fetchall()
    changed = []
    for values in rows:
        row = dict(zip(_READ + _WRITE, values))
        before = {c: row[c] for c in _WRITE}
        if row["start_time"] is not None:
            row["start_time"] = int(row["start_time"].timestamp() * 1_000_000)  # pricing takes microseconds
        for c in _WRITE:
            row[c] = None
        price_step(row, prefer, prices)
        if any(row[c] != before[c] for c in _WRITE):
            changed.append({"trace_id": row["trace_id"], "span_id": row["span_id"], **{c: row[c] for c in _WRITE}})
    if not changed:
        return 0
    tbl = pa.Table.from_pylist(changed, schema=_SCHEMA)
    con.execute("BEGIN")
    try:
        sets = ", ".join(f"{c} = r.{c}" for c in _WRITE)
        with registered(con, "_repriced", tbl):
            con.execute(f"UPDATE {table} SET {sets} FROM _repriced r"
                        f" WHERE {table}.trace_id = r.trace_id AND {table}.span_id = r.span_id")
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT has already ended the transaction
        raise
    return len(changed)
