"""The queries behind the CLI (plain SQL over the public views and the roll-up builder)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..errors import QueryError
from ..store.rollups import Rollup, levels, property_level

LEVELS = levels()
COST_GROUPS = [k for k in LEVELS if k != "daily"] + ["property.<name>"]
MARGIN_GROUPS = ["endpoint", "agent", "workflow", "run"]
FILTER_COLUMNS = {"run_id", "session_id", "agent_id", "user_id", "workflow_name", "endpoint_id", "department_id",
                  "workspace_id", "virtual_key_id", "prompt_id", "prompt_version", "provider", "model",
                  "tool_name", "step_kind"}

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, flag: str = "--since", now: datetime | None = None) -> datetime:
    """`24h`, `7d`, `30m`, `2w` (ago) or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(text)
    if m:
        return (now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})).replace(tzinfo=None)
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"{flag} {text!r}: use a duration like 24h, 7d, 30m or an ISO date/time") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


parse_since = parse_time


def level(by: str) -> tuple[Rollup, dict]:
    """The roll-up for `--by` and its parameters (a property name is a parameter, never SQL)."""
    if by.startswith("property."):
        name = by[len("property."):]
        if not name:
            raise QueryError("--by property.<name> needs a property name")
        return property_level(), {"by_property": name}
    if by not in LEVELS:
        raise QueryError(f"--by must be one of {', '.join(COST_GROUPS)}")
    return LEVELS[by], {}


def where_clause(since: datetime | None = None, until: datetime | None = None,
                 workspace: str | None = None, where: list[str] | tuple = ()) -> tuple[str, dict]:
    """A WHERE condition over columns both steps and money have, and its named parameters.
    Values and property names are parameters; column names come from a fixed list."""
    parts, params = [], {}
    if since is not None:
        parts.append("start_time >= CAST($since AS TIMESTAMP)")
        params["since"] = since.isoformat()
    if until is not None:
        parts.append("start_time < CAST($until AS TIMESTAMP)")
        params["until"] = until.isoformat()
    if workspace is not None:
        parts.append("workspace_id = $workspace")
        params["workspace"] = workspace
    for i, w in enumerate(where):
        key, sep, value = w.partition("=")
        key = key.strip()
        if not sep or not key:
            raise QueryError(f"--where {w!r}: use property.<name>=<value> or <column>=<value>")
        params[f"w{i}"] = value
        if key.startswith("property.") and len(key) > 9:
            parts.append(f"properties->>$w{i}_name = $w{i}")
            params[f"w{i}_name"] = key[9:]
        elif key in FILTER_COLUMNS:
            parts.append(f"{key} = $w{i}")
        else:
            raise QueryError(f"--where {key!r}: filter on property.<name> or one of {', '.join(sorted(FILTER_COLUMNS))}")
    return " AND ".join(parts), params


def cost_sql(by: str, since=None, until=None, workspace=None, where=()) -> tuple[str, dict]:
    lv, params = level(by)
    cond, wparams = where_clause(since, until, workspace, where)
    return _named(lv.sql(cond, order="cost DESC, step_count DESC"), by), {**params, **wparams}


def margin_sql(by: str, since=None, until=None, workspace=None, where=()) -> tuple[str, dict]:
    lv, params = level(by)
    cond, wparams = where_clause(since, until, workspace, where)
    return _named(lv.sql(cond, order="margin ASC, cost DESC"), by), {**params, **wparams}


def _named(sql: str, by: str) -> str:
    """Show a property grouping under its own name (`property.<name>`): an alias, from the
    validated --by text, quoted as an identifier."""
    if not by.startswith("property."):
        return sql
    ident = '"' + by.replace('"', '""') + '"'
    return f"SELECT * RENAME (property AS {ident}) FROM ({sql})"


def runs_sql(session: str | None = None, limit: int = 100, workspace: str | None = None) -> tuple[str, dict]:
    conds, params = [], {"limit": int(limit)}
    if session is not None:
        conds.append("session_id = $session")
        params["session"] = session
    if workspace is not None:
        conds.append("workspace_id = $workspace")
        params["workspace"] = workspace
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    return (f"SELECT run_id, session_id, agent_id, start_time, duration_ms, step_count, model_calls,"
            f" tool_calls, error_count, total_tokens, currency, cost, revenue, margin, unpriced_steps FROM runs {where}"
            f" ORDER BY start_time DESC LIMIT $limit", params)


RUN_STEPS_SQL = """
SELECT span_id, parent_span_id, trace_id, step_kind, name, operation, start_time, duration_ms, status,
  model, tool_name, total_tokens, model_cost, tool_cost, payment_spend, fees, revenue, money_currency,
  total_cost, cost_source, policy_decision, retry_attempt
FROM steps WHERE run_id = $run_id AND ($workspace IS NULL OR workspace_id = $workspace)
ORDER BY start_time, span_id"""

SESSION_STEPS_SQL = """
SELECT run_id, span_id, session_path, start_time, end_time, duration_ms, status,
  model_cost, tool_cost, payment_spend, fees, revenue, money_currency, total_cost
FROM steps WHERE session_id = $session_id AND ($workspace IS NULL OR workspace_id = $workspace)
ORDER BY start_time"""


def tree(rows: list[dict]) -> list[dict]:
    """Nest step rows by parent_span_id (within a trace); roots first, children in time order.
    A step whose parent is not in the run is a root."""
    by_id = {(r["trace_id"], r["span_id"]): {**r, "children": []} for r in rows}
    roots = []
    for r in by_id.values():
        parent = by_id.get((r["trace_id"], r["parent_span_id"])) if r["parent_span_id"] else None
        (parent["children"] if parent else roots).append(r)
    return roots


def path_tree(rows: list[dict]) -> dict:
    """Helicone-style session tree from `session_path` segments: a node per segment, with its
    descendants' latency (last end - first start), cost (per currency) and step count."""
    root = {"segment": "/", "path": "/", "children": {}, "steps": 0, "start": None, "end": None, "cost": {}}
    for r in rows:
        parts = [p for p in (r["session_path"] or "").split("/") if p]
        node = root
        nodes = [root]
        for i, seg in enumerate(parts):
            node = node["children"].setdefault(seg, {"segment": seg, "path": "/" + "/".join(parts[:i + 1]),
                                                     "children": {}, "steps": 0, "start": None, "end": None, "cost": {}})
            nodes.append(node)
        for n in nodes:
            n["steps"] += 1
            if r["start_time"] is not None:
                n["start"] = r["start_time"] if n["start"] is None else min(n["start"], r["start_time"])
            if r["end_time"] is not None:
                n["end"] = r["end_time"] if n["end"] is None else max(n["end"], r["end_time"])
            if r["total_cost"] is not None and r["money_currency"]:
                n["cost"][r["money_currency"]] = n["cost"].get(r["money_currency"], 0) + r["total_cost"]

    def finish(n):
        n["latency_ms"] = (n["end"] - n["start"]).total_seconds() * 1000 if n["start"] and n["end"] else None
        n["children"] = [finish(c) for c in n["children"].values()]
        return n
    return finish(root)


def named(name: str, args: dict, workspace: str | None = None) -> tuple[str, dict]:
    """The SQL and parameters of a named query: what the CLI (and the web view) ask a server
    for. `workspace`, when given, is imposed (a tenant's queries see only its workspace)."""
    a = dict(args)
    since = parse_time(a["since"], "--since") if a.get("since") else None
    until = parse_time(a["until"], "--until") if a.get("until") else None
    ws = workspace if workspace is not None else a.get("workspace")
    if name in ("cost", "margin"):
        build = cost_sql if name == "cost" else margin_sql
        return build(a["by"], since, until, ws, tuple(a.get("where") or ()))
    if name == "runs":
        return runs_sql(a.get("session"), int(a.get("limit") or 100), ws)
    if name == "run":
        return RUN_STEPS_SQL, {"run_id": a["run_id"], "workspace": ws}
    if name == "session":
        return SESSION_STEPS_SQL, {"session_id": a["session_id"], "workspace": ws}
    raise QueryError(f"unknown query {name!r}")
