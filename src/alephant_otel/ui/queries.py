"""The SQL behind each page, as `Query` objects (SQL with named parameters).

Roll-up figures come from the same builder as the views and the CLI's `cost` command
(store/rollups.py), with the page's filters applied to the steps *before* grouping: that is
how a virtual key's workspace is imposed (a session or agent id used in two workspaces is two
groups, never one), and it lets DuckDB skip what the filters rule out instead of grouping the
whole store. Without filters the rows are exactly the view's rows. List pages never scan
`steps` unfiltered row by row: they group it (sessions), or read roll-ups with a LIMIT.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..store.rollups import Rollup, levels
from . import multi
from .sql import Query

LEVELS = levels()
PAGE_SIZE = 50
TOP = 10
MAX_RUN_STEPS = 2000
MAX_TIMELINE_STEPS = 400


@dataclass
class Filters:
    """Conditions on steps (columns of both `steps` and the table under it)."""

    workspace: str | None = None  # imposed by the viewer's key, never taken from the URL
    since: datetime | None = None
    until: datetime | None = None
    agent: str | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)

    def where(self) -> tuple[list[str], dict]:
        conds, params = [], {}
        if self.workspace is not None:
            conds.append("workspace_id = $workspace")
            params["workspace"] = self.workspace
        if self.since is not None:
            conds.append("start_time >= $since")
            params["since"] = self.since
        if self.until is not None:
            conds.append("start_time < $until")
            params["until"] = self.until
        if self.agent is not None:
            conds.append("agent_id = $agent")
            params["agent"] = self.agent
        for i, (name, value) in enumerate(self.properties):
            conds.append(f"(properties->>$p{i}_name) = $p{i}")
            params[f"p{i}_name"], params[f"p{i}"] = name, value
        return conds, params


def rollup(level: Rollup, conds: list[str], params: dict, order: str, limit: int | None = None,
           offset: int = 0, skip_null_keys: bool = False) -> Query:
    sql = level.sql(" AND ".join(conds), order=order, skip_null_keys=skip_null_keys)
    if limit is not None:
        sql += f"\nLIMIT {int(limit)} OFFSET {int(offset)}"
    return Query(sql, params)


def lean(keys: list[tuple[str, str]], keep=(), base: str | None = None) -> Rollup:
    """A roll-up with only the `keep` statistics of level `base` (distinct counts are what
    make the agents view slow on big stores; top lists do not need them)."""
    stats = [s for s in LEVELS[base].stats if s[1] in keep] if base else []
    return Rollup(keys, stats)


# -- overview -------------------------------------------------------------------------------
def overview(f: Filters) -> Query:
    """Totals, per day, and the top agents, workflows, endpoints, models and sessions by cost,
    in one pass (see multi.py)."""
    conds, params = f.where()
    return multi.overview(conds, params, TOP)


def unpriced(f: Filters) -> Query:
    conds, params = f.where()
    where = " AND ".join(["cost_source = 'unpriced'"] + conds)
    return Query(f"""
SELECT step_kind, coalesce(model, tool_name, api_host, name) AS what, unpriced_reason,
  count(*) AS steps, arg_max(run_id, start_time) AS latest_run
FROM steps WHERE {where}
GROUP BY ALL ORDER BY steps DESC, what LIMIT {TOP}""", params)


def policy_blocks(f: Filters) -> Query:
    conds, params = f.where()
    where = " AND ".join(["policy_decision IN ('blocked', 'escalated')"] + conds)
    return Query(f"""
SELECT agent_id, policy_id, policy_decision, count(*) AS decisions, count(DISTINCT run_id) AS run_count,
  arg_max(run_id, start_time) AS latest_run
FROM steps WHERE {where}
GROUP BY ALL ORDER BY decisions DESC, policy_id LIMIT {TOP}""", params)


# -- sessions -------------------------------------------------------------------------------
def session_page(f: Filters, errors: bool, page: int) -> Query:
    """Which sessions are on the page: those with steps that pass the filters, latest first
    (grouping two columns of the filtered steps; one more row than a page says there is a next)."""
    conds, params = f.where()
    where = " AND ".join(["session_id IS NOT NULL"] + conds)
    having = "\nHAVING bool_or(status = 'ERROR')" if errors else ""
    return Query(f"""
SELECT session_id, min(start_time) AS first_start
FROM steps WHERE {where}
GROUP BY session_id{having}
ORDER BY first_start DESC, session_id
LIMIT {PAGE_SIZE + 1} OFFSET {(page - 1) * PAGE_SIZE}""", params)


def sessions(ids: list[str], workspace: str | None) -> Query:
    """The sessions view's rows for these sessions."""
    params = {f"s{i}": s for i, s in enumerate(ids)}
    conds = ["session_id IN (" + ", ".join(f"$s{i}" for i in range(len(ids))) + ")"]
    if workspace is not None:
        conds.append("workspace_id = $workspace")
        params["workspace"] = workspace
    return rollup(LEVELS["session"], conds, params, "start_time DESC, session_id, currency")


def _one(column: str, value: str, workspace: str | None) -> tuple[list[str], dict]:
    conds, params = [f"{column} = ${column}"], {column: value}
    if workspace is not None:
        conds.append("workspace_id = $workspace")
        params["workspace"] = workspace
    return conds, params


def session(session_id: str, workspace: str | None) -> Query:
    return rollup(LEVELS["session"], *_one("session_id", session_id, workspace), "currency")


def session_runs(session_id: str, workspace: str | None, page: int) -> Query:
    """The runs of a session (their steps in this session), in time order."""
    return rollup(LEVELS["run"], *_one("session_id", session_id, workspace), "start_time, run_id, currency",
                  limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)


def session_paths(session_id: str, workspace: str | None) -> Query:
    """Per session path and currency: steps, first start, last end, cost (steps whose amounts
    share one currency; the same rule as `alephant-otel session`)."""
    conds, params = _one("session_id", session_id, workspace)
    return Query(f"""
SELECT session_path, money_currency AS currency, count(*) AS steps, min(start_time) AS first_start,
  max(end_time) AS last_end, sum(total_cost) AS cost
FROM steps WHERE {" AND ".join(conds)}
GROUP BY ALL ORDER BY session_path NULLS FIRST, currency""", params)


def session_timeline(session_id: str, workspace: str | None) -> Query:
    conds, params = _one("session_id", session_id, workspace)
    return Query(f"""
SELECT run_id, trace_id, span_id, parent_span_id, name, step_kind, start_time, end_time, duration_ms, status
FROM steps WHERE {" AND ".join(conds)}
ORDER BY start_time, span_id LIMIT {MAX_TIMELINE_STEPS + 1}""", params)


# -- runs -----------------------------------------------------------------------------------
def run(run_id: str, workspace: str | None) -> Query:
    return rollup(LEVELS["run"], *_one("run_id", run_id, workspace), "currency")


def run_steps(run_id: str, workspace: str | None) -> Query:
    conds, params = _one("run_id", run_id, workspace)
    return Query(f"""
SELECT trace_id, span_id, parent_span_id, step_kind, name, start_time, end_time, duration_ms, status, error_type,
  model, tool_name, total_tokens, input_tokens, output_tokens, model_cost, currency, tool_cost, tool_cost_currency,
  payment_spend, payment_currency, fees, fee_currency, revenue, revenue_currency, total_cost, money_currency,
  cost_source, policy_decision, policy_id, retry_attempt
FROM steps WHERE {" AND ".join(conds)}
ORDER BY start_time, span_id LIMIT {MAX_RUN_STEPS + 1}""", params)


def step(run_id: str, trace_id: str, span_id: str, workspace: str | None) -> Query:
    conds, params = _one("run_id", run_id, workspace)
    params.update(trace_id=trace_id, span_id=span_id)
    return Query(f"SELECT * FROM steps WHERE trace_id = $trace_id AND span_id = $span_id AND {' AND '.join(conds)}",
                 params)


def span(trace_id: str, span_id: str) -> Query:
    return Query("""
SELECT span_kind, status_message, service_name, scope_name, scope_version, resource, attributes, events, links,
  received_at
FROM spans WHERE trace_id = $trace_id AND span_id = $span_id""", {"trace_id": trace_id, "span_id": span_id})


# -- agents, endpoints, prompts -------------------------------------------------------------
@dataclass
class Group:
    """A page of groups: its roll-up levels (the list's, and one group's, which may afford
    distinct counts since it is filtered to one group), key columns and shown statistics."""

    title: str
    level: Rollup
    keys: list[str]
    stats: list[str]
    detail: Rollup | None = None
    detail_stats: list[str] | None = None
    skip_null_keys: bool = False  # leave out the group of steps outside any such group


_AGENT = [("agent_id", "agent_id")]
GROUPS = {
    "agents": Group("Agents", lean(_AGENT, ["agent_name"], "agent"), ["agent_id"], ["agent_name"],
                    lean(_AGENT, ["agent_name", "session_count", "run_count"], "agent"),
                    ["agent_name", "session_count", "run_count"]),
    "endpoints": Group("Endpoints", LEVELS["endpoint"], ["endpoint_id"],
                       ["calls", "success_rate", "median_server_ms", "run_count"], skip_null_keys=True),
    "prompts": Group("Prompts", LEVELS["prompt"], ["prompt_id", "prompt_version"], ["run_count"], skip_null_keys=True),
}


def groups(name: str, workspace: str | None, page: int) -> Query:
    g, f = GROUPS[name], Filters(workspace=workspace)
    return rollup(g.level, *f.where(), "cost DESC, step_count DESC, " + ", ".join(g.keys),
                  limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, skip_null_keys=g.skip_null_keys)


def key_filter(name: str, values: list[str | None], workspace: str | None) -> tuple[list[str], dict]:
    """Conditions selecting one group (a NULL key value is matched too)."""
    conds, params = Filters(workspace=workspace).where()
    for i, (col, value) in enumerate(zip(GROUPS[name].keys, values)):
        if value is None:
            conds.append(f"{col} IS NULL")
        else:  # (= rather than IS NOT DISTINCT FROM: DuckDB pushes it into the scan)
            conds.append(f"{col} = $k{i}")
            params[f"k{i}"] = value
    return conds, params


def group(name: str, values, workspace) -> Query:
    g = GROUPS[name]
    return rollup(g.detail or g.level, *key_filter(name, values, workspace), "currency")


BY_TOOL = Rollup([("coalesce(tool_name, api_host)", "tool")])
BY_DECISION = Rollup([("step_kind", "step_kind"), ("name", "name")])


def by_tool(name: str, values, workspace) -> Query:
    conds, params = key_filter(name, values, workspace)
    conds.append("step_kind IN ('tool_call', 'api_call')")
    return rollup(BY_TOOL, conds, params, "cost DESC, error_count DESC, tool", limit=PAGE_SIZE)


def by_decision(name: str, values, workspace) -> Query:
    """Decision points: the model calls (where the agent decides) and policy checks (where a
    policy decides), by step name."""
    conds, params = key_filter(name, values, workspace)
    conds.append("step_kind IN ('model_call', 'policy_check')")
    return rollup(BY_DECISION, conds, params, "cost DESC, error_count DESC, step_kind, name", limit=PAGE_SIZE)


def decisions(name: str, values, workspace) -> Query:
    conds, params = key_filter(name, values, workspace)
    conds.append("policy_decision IS NOT NULL")
    return Query(f"""
SELECT policy_id, policy_decision, count(*) AS decisions, count(DISTINCT run_id) AS run_count,
  arg_max(run_id, start_time) AS latest_run
FROM steps WHERE {" AND ".join(conds)}
GROUP BY ALL ORDER BY decisions DESC, policy_id, policy_decision LIMIT {PAGE_SIZE}""", params)
