"""The queries behind the CLI's `cost` and `runs` commands (plain SQL over the public views)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..errors import QueryError

# --by value -> (grouping columns, extra columns shown with each group)
COST_GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "run": (["run_id"], [
        "arg_min(session_id, start_time) FILTER (WHERE session_id IS NOT NULL) AS session_id",
        "arg_min(agent_id, start_time) FILTER (WHERE agent_id IS NOT NULL) AS agent_id"]),
    "session": (["session_id"], ["count(DISTINCT run_id) AS runs"]),
    "agent": (["agent_id"], ["count(DISTINCT run_id) AS runs"]),
    "user": (["user_id"], ["count(DISTINCT run_id) AS runs", "count(DISTINCT session_id) AS sessions"]),
    "model": (["provider", "model"], []),
    "prompt": (["prompt_id", "prompt_version"], ["count(DISTINCT run_id) AS runs"]),
}

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`24h`, `7d`, `30m`, `2w` (ago) or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(text)
    if m:
        return (now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})).replace(tzinfo=None)
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"--since {text!r}: use a duration like 24h, 7d, 30m or an ISO date/time") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def cost_sql(by: str, since: datetime | None = None) -> tuple[str, list]:
    if by not in COST_GROUPS:
        raise QueryError(f"--by must be one of {', '.join(COST_GROUPS)}")
    keys, extra = COST_GROUPS[by]
    where, params = "", []
    if since is not None:
        where, params = "WHERE start_time >= ?", [since]
    key_sql = ", ".join(keys)
    select = ", ".join(keys + extra)
    sql = f"""
SELECT {select}, count(*) AS steps,
  count(*) FILTER (WHERE step_kind = 'model_call') AS model_calls,
  coalesce(sum(total_tokens), 0) AS total_tokens,
  coalesce(sum(model_cost), 0) AS cost,
  count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_steps
FROM steps {where}
GROUP BY {key_sql}
ORDER BY cost DESC, steps DESC, {key_sql}"""
    return sql, params


def runs_sql(session: str | None = None, limit: int = 100) -> tuple[str, list]:
    where, params = "", []
    if session is not None:
        where, params = "WHERE session_id = ?", [session]
    return (f"SELECT run_id, session_id, agent_id, start_time, duration_ms, step_count, model_calls,"
            f" tool_calls, error_count, total_tokens, cost, unpriced_steps FROM runs {where}"
            f" ORDER BY start_time DESC LIMIT {int(limit)}", params)
