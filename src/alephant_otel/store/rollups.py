"""SQL for roll-ups: stats and money of steps grouped by any level, one row per currency.

Every roll-up has the same money columns: model_cost, tool_cost, payment_spend, fees, `cost`
(their sum), revenue, margin (revenue - cost), unpriced_steps and margin_complete. Amounts in
different currencies are never added: a group with amounts in two currencies has two rows
(its step statistics repeat on each). The public views and the CLI's `cost`/`margin` commands
are built here, so they always agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TOKENS = ["input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"]
# one sum of each row's tokens: reads as the sum of five sums, for less work per row
TOTAL_TOKENS = "coalesce(sum(" + " + ".join(f"coalesce({t}, 0)" for t in TOKENS) + "), 0)"
COMPONENTS = ["model_cost", "tool_cost", "payment_spend", "fees", "revenue"]
COST_COMPONENTS = ["model_cost", "tool_cost", "payment_spend", "fees"]

# signed money moved by a payment: settled/verified (or no status) counts, refunded reverses,
# failed moves nothing
_MOVED = ("CASE payment_status WHEN 'refunded' THEN -payment_amount WHEN 'failed' THEN 0 "
          "ELSE payment_amount END")
PAYMENT_SPEND = f"CASE WHEN payment_direction = 'outbound' THEN {_MOVED} END"
REVENUE = f"CASE WHEN payment_direction = 'inbound' THEN {_MOVED} ELSE revenue_amount END"
REVENUE_CURRENCY = "CASE WHEN payment_direction = 'inbound' THEN payment_currency ELSE revenue_currency END"

MONEY_KEYS = ["trace_id", "span_id", "run_id", "session_id", "agent_id", "user_id", "workflow_name",
              "endpoint_id", "department_id", "workspace_id", "virtual_key_id", "prompt_id", "prompt_version",
              "provider", "model", "tool_name", "api_host", "step_kind", "start_time", "retry_attempt", "properties"]

# (component, amount expression, currency expression, a condition every row with an amount meets)
# The condition is on plain columns, so DuckDB skips row groups by their statistics (a store
# with no payments reads no payment column); the amount expressions alone cannot.
AMOUNTS = [("model_cost", "model_cost", "currency", "model_cost IS NOT NULL"),
            ("tool_cost", "tool_cost", "tool_cost_currency", "tool_cost IS NOT NULL"),
            ("payment_spend", PAYMENT_SPEND, "payment_currency", "payment_direction = 'outbound'"),
            ("fees", "fee_amount", "fee_currency", "fee_amount IS NOT NULL"),
            # revenue (see REVENUE) in two parts, each with a condition statistics can use
            ("revenue", _MOVED, "payment_currency", "payment_direction = 'inbound'"),
            ("revenue", "revenue_amount", "revenue_currency",
             "revenue_amount IS NOT NULL AND payment_direction IS DISTINCT FROM 'inbound'")]

MONEY_SQL = (
    "WITH b AS (SELECT " + ", ".join(MONEY_KEYS) + ", model_cost, currency, tool_cost, tool_cost_currency,"
    f" {PAYMENT_SPEND} AS payment_spend, payment_currency, fee_amount, fee_currency,"
    f" {REVENUE} AS revenue, {REVENUE_CURRENCY} AS revenue_currency FROM _spans)\n"
    + "\nUNION ALL ".join(
        f"SELECT {', '.join(MONEY_KEYS)}, '{name}' AS component, {amount} AS amount, {ccy} AS currency"
        f" FROM b WHERE {amount} IS NOT NULL"
        for name, amount, ccy in [("model_cost", "model_cost", "currency"),
                                  ("tool_cost", "tool_cost", "tool_cost_currency"),
                                  ("payment_spend", "payment_spend", "payment_currency"),
                                  ("fees", "fee_amount", "fee_currency"),
                                  ("revenue", "revenue", "revenue_currency")]))

MONEY_COLUMNS = {
    "currency": "Currency of the money columns of this row (a group with several currencies has a row for each; NULL when the group moved no money).",
    "model_cost": "Model cost (the figure that counts per step, see steps.cost_source).",
    "tool_cost": "Tool and external API cost (provided by the span, or from a price list).",
    "payment_spend": "Outbound payments: settled or verified count, refunded reverse, failed do not.",
    "fees": "Platform and settlement fees.",
    "cost": "Total cost: model_cost + tool_cost + payment_spend + fees.",
    "revenue": "Inbound payments (settled/verified; refunds reverse) and revenue amounts, counted once per step.",
    "margin": "Known margin: revenue - cost.",
    "unpriced_steps": "Steps whose cost could not be determined (models without a price, tools and APIs not in a price list).",
    "margin_complete": "False when unpriced steps make cost (and so margin) a lower bound.",
}


@dataclass
class Rollup:
    """A roll-up: `keys` are (SQL expression, column name); `stats` extra (SQL, name, doc)."""

    keys: list[tuple[str, str]]
    stats: list[tuple[str, str, str]] = field(default_factory=list)
    retries: bool = False

    def sql(self, where: str = "", order: str | None = None, skip_null_keys: bool = False) -> str:
        if skip_null_keys:  # e.g. the sessions view: steps without a session are not a session
            nn = " AND ".join(f"{expr} IS NOT NULL" for expr, _ in self.keys)
            where = f"({where}) AND {nn}" if where else nn
        key_cols = ", ".join(f"{expr} AS \"{name}\"" for expr, name in self.keys)
        group = ", ".join(str(i + 1) for i in range(len(self.keys)))
        stats = ",\n    ".join([f"{sql} AS {name}" for sql, name, _ in self.stats] + [
            "count(*) AS step_count",
            "count(*) FILTER (WHERE step_kind = 'model_call') AS model_calls",
            "count(*) FILTER (WHERE step_kind IN ('tool_call', 'api_call')) AS tool_calls",
            "count(*) FILTER (WHERE status = 'ERROR') AS error_count",
            f"{TOTAL_TOKENS} AS total_tokens",
            "count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_steps",
            "min(start_time) AS start_time", "max(end_time) AS end_time",
        ] + (["count(*) FILTER (WHERE retry_attempt > 0) AS retries"] if self.retries else []))
        sums = ",\n    ".join(f"sum(amount) FILTER (WHERE component = '{c}') AS {c}" for c in COMPONENTS)
        retried = (",\n    sum(retried) FILTER (WHERE component <> 'revenue') AS retried_cost"
                   if self.retries else "")
        filt = f"WHERE {where}" if where else ""
        # money: each component aggregated on its own columns, then pivoted (ten times faster than
        # aggregating the unpivoted `money` view: only the columns each amount needs are read)
        def retried_share(amt: str) -> str:  # only where the roll-up shows it
            return f", sum({amt}) FILTER (WHERE retry_attempt > 0) AS retried" if self.retries else ""

        per_component = "\n    UNION ALL ".join(
            f"SELECT {key_cols}, {ccy} AS currency, '{name}' AS component, sum({amt}) AS amount{retried_share(amt)}"
            f" FROM _spans WHERE {present} AND {amt} IS NOT NULL{' AND (' + where + ')' if where else ''}"
            f" GROUP BY {group}, {len(self.keys) + 1}"
            for name, amt, ccy, present in AMOUNTS)
        join = " AND ".join(f"s.\"{n}\" IS NOT DISTINCT FROM m.\"{n}\"" for _, n in self.keys)
        names = [n for _, n in self.keys]
        stat_names = [n for _, n, _ in self.stats] + ["step_count", "model_calls", "tool_calls", "error_count",
                                                     "total_tokens", "start_time", "end_time"]
        if self.retries:
            stat_names.append("retries")
        money = [f"coalesce(m.{c}, 0) AS {c}" for c in COMPONENTS]
        cost = " + ".join(f"coalesce(m.{c}, 0)" for c in COST_COMPONENTS)
        out = ", ".join([f"s.\"{n}\"" for n in names + stat_names]) + ", m.currency, " + ", ".join(money)
        out += f", {cost} AS cost, coalesce(m.revenue, 0) - ({cost}) AS margin"
        out += ", s.unpriced_steps, s.unpriced_steps = 0 AS margin_complete"
        if self.retries:
            out += ", coalesce(m.retried_cost, 0) AS retried_cost"
        sql = (f"WITH s AS (\n  SELECT {key_cols},\n    {stats}\n  FROM _spans {filt} GROUP BY {group}\n),\n"
               f"m AS (\n  SELECT {', '.join(chr(34) + n + chr(34) for n in names)}, currency,\n    {sums}{retried}\n"
               f"  FROM (\n    {per_component}\n  ) GROUP BY ALL\n)\n"
               f"SELECT {out}\nFROM s LEFT JOIN m ON {join}")
        if order:
            sql += f"\nORDER BY {order}"
        return sql

    def columns(self) -> list[str]:
        names = [n for _, n in self.keys] + [n for _, n, _ in self.stats]
        names += ["step_count", "model_calls", "tool_calls", "error_count", "total_tokens", "start_time", "end_time"]
        if self.retries:
            names.append("retries")
        names += ["currency"] + COMPONENTS + ["cost", "margin", "unpriced_steps", "margin_complete"]
        return names + (["retried_cost"] if self.retries else [])


COMMON_DOCS = {
    "step_count": "Number of steps.",
    "model_calls": "Steps of kind model_call.",
    "tool_calls": "Steps of kind tool_call or api_call.",
    "error_count": "Steps with status ERROR.",
    "total_tokens": "Sum of all token buckets.",
    "start_time": "First step start.",
    "end_time": "Last step end.",
    "retries": "Steps that were retries (retry_attempt > 0).",
    "retried_cost": "Cost of the retried steps (part of cost).",
    **MONEY_COLUMNS,
}


def earliest(column: str) -> str:
    """The value of the earliest step that has one: DuckDB's arg_min skips rows whose value (or
    start_time) is NULL, so no FILTER is needed (a FILTER cost ~1.5 ms per column at 1M steps;
    arg_min_null is the variant that keeps NULLs; duckdb is pinned, and the views' tests hold it)."""
    return f"arg_min({column}, start_time)"


def levels() -> dict[str, Rollup]:
    """The roll-up levels `cost --by` accepts (property.<name> is added on demand)."""
    runs = Rollup([("run_id", "run_id")], [
        (earliest("session_id"), "session_id", "Session of the run's earliest step that has one."),
        (earliest("agent_id"), "agent_id", "Agent of the run's earliest step that has one."),
        (earliest("user_id"), "user_id", "User of the run's earliest step that has one."),
        (earliest("workflow_name"), "workflow_name", "Workflow of the run's earliest step that has one."),
        (earliest("endpoint_id"), "endpoint_id", "Paid endpoint of the run's earliest step that has one."),
        (earliest("workspace_id"), "workspace_id", "Workspace of the run's earliest step that has one."),
        ("date_diff('microsecond', min(start_time), max(end_time)) / 1000.0", "duration_ms", "end_time - start_time in milliseconds."),
        ("count(DISTINCT trace_id)", "trace_count", "Number of traces the run spans."),
    ] + [(f"coalesce(sum({t}), 0)", t, f"Sum of {t}.") for t in TOKENS], retries=True)
    return {
        "run": runs,
        "session": Rollup([("session_id", "session_id")], [
            (earliest("session_name"), "session_name", "Session name of the earliest step that has one."),
            (earliest("workspace_id"), "workspace_id", "Workspace of the earliest step that has one."),
            (earliest("agent_id"), "agent_id", "Agent of the earliest step that has one."),
            ("count(DISTINCT run_id)", "run_count", "Number of runs."),
            ("date_diff('microsecond', min(start_time), max(end_time)) / 1000.0", "duration_ms", "end_time - start_time in milliseconds."),
        ]),
        "agent": Rollup([("agent_id", "agent_id")], [
            (earliest("agent_name"), "agent_name", "Agent name of the earliest step that has one."),
            (earliest("workspace_id"), "workspace_id", "Workspace of the earliest step that has one."),
            ("count(DISTINCT session_id)", "session_count", "Number of sessions."),
            ("count(DISTINCT run_id)", "run_count", "Number of runs."),
        ]),
        "user": Rollup([("user_id", "user_id")], [
            ("count(DISTINCT session_id)", "session_count", "Number of sessions."),
            ("count(DISTINCT run_id)", "run_count", "Number of runs.")]),
        "workflow": Rollup([("workflow_name", "workflow_name")], [
            ("count(DISTINCT run_id)", "run_count", "Number of runs.")]),
        "endpoint": Rollup([("endpoint_id", "endpoint_id")], [
            ("count(DISTINCT trace_id)", "calls", "Calls: traces that reached the endpoint."),
            ("1 - count(DISTINCT trace_id) FILTER (WHERE status = 'ERROR') / count(DISTINCT trace_id)",
             "success_rate", "Share of calls with no step in error."),
            ("count(DISTINCT run_id)", "run_count", "Number of runs."),
            ("median(duration_ms) FILTER (WHERE span_kind = 'SERVER')", "median_server_ms",
             "Median duration of the endpoint's SERVER spans (its request latency)."),
        ]),
        "prompt": Rollup([("prompt_id", "prompt_id"), ("prompt_version", "prompt_version")], [
            ("count(DISTINCT run_id)", "run_count", "Number of runs.")]),
        "department": Rollup([("department_id", "department_id")], [
            (earliest("workspace_id"), "workspace_id", "Workspace of the earliest step that has one."),
            ("count(DISTINCT agent_id)", "agent_count", "Number of agents."),
            ("count(DISTINCT run_id)", "run_count", "Number of runs.")]),
        "workspace": Rollup([("workspace_id", "workspace_id")], [
            ("count(DISTINCT department_id)", "department_count", "Number of departments."),
            ("count(DISTINCT agent_id)", "agent_count", "Number of agents."),
            ("count(DISTINCT run_id)", "run_count", "Number of runs.")]),
        "model": Rollup([("provider", "provider"), ("model", "model")]),
        "tool": Rollup([("coalesce(tool_name, api_host)", "tool")]),
        "day": Rollup([("CAST(start_time AS DATE)", "day")]),
        "daily": Rollup([("CAST(start_time AS DATE)", "day"), ("workspace_id", "workspace_id"),
                         ("agent_id", "agent_id"), ("model", "model")]),
    }


def property_level() -> Rollup:
    """Grouping by one custom property; its name is the query parameter `$by_property`."""
    return Rollup([("properties->>$by_property", "property")])


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
