"""Agents, endpoints and prompts: a paginated list with cost, margin and error rate; one group
(`id`, and `version` for prompts) broken down by tool and by decision point, with its policy
decisions."""
from __future__ import annotations

from .. import format as fmt
from .. import queries as Q
from ..html import Html, h, join
from ..layout import MONEY_COLS, NotFound, Page, fig, kv, link, money_cells, money_pairs, pager, panel, table
from ..params import Params

ACCEPTS = {"page", "id", "version"}
STAT_NAMES = {"agent_name": "name", "run_count": "runs", "session_count": "sessions", "calls": "calls", "success_rate": "success",
              "median_server_ms": "median latency"}


def renderer(name: str):
    def render(page: Page, query) -> tuple[str, Html]:
        p = Params(query, ACCEPTS if name == "prompts" else ACCEPTS - {"version"})
        if p.get("id") is not None:
            return _one(page, name, [p.get("id")] + ([p.get("version")] if name == "prompts" else []))
        return _list(page, name, p)
    return render


def _stat(a: str, key: str, value) -> Html | str:
    if key == "success_rate":
        return fig(a, fmt.rate(value))
    if key == "median_server_ms":
        return fig(a, fmt.ms(value))
    if key in ("run_count", "session_count", "calls"):
        return fig(a, fmt.count(value))
    return value or ""


def _key_link(name: str, r: dict) -> Html:
    g = Q.GROUPS[name]
    values = [r[k] for k in g.keys]
    if values[0] is None:
        return h('<span class="none">(none)</span>')
    text = " ".join(str(v) for v in values if v is not None)
    return link(f"/ui/{name}", text, [("id", values[0])] + ([("version", values[1])] if len(values) > 1 else []))


def _list(page: Page, name: str, p: Params) -> tuple[str, Html]:
    g, number = Q.GROUPS[name], p.page()
    rows, a = page.run(Q.groups(name, page.viewer.workspace, number))
    has_next = len(rows) > Q.PAGE_SIZE
    out = [[_key_link(name, r), *(_stat(a, s, r[s]) for s in g.stats), fig(a, fmt.count(r["step_count"])),
            fig(a, fmt.pct(r["error_count"], r["step_count"])), *money_cells(a, r), fig(a, fmt.count(r["unpriced_steps"]))]
           for r in rows[:Q.PAGE_SIZE]]
    cols = [" / ".join(k.split("_")[0] for k in g.keys[:1]) + (" version" if len(g.keys) > 1 else ""),
            *((STAT_NAMES.get(s, s), "num" if s != "agent_name" else "") for s in g.stats),
            ("steps", "num"), ("error rate", "num"), *MONEY_COLS,
            ("unpriced", "num")]
    body = h("<h1>{}</h1>{}", g.title, panel(g.title, a, page, table(cols, out) + pager(f"/ui/{name}", p.pairs, number, has_next),
                                              note="Most expensive first; one row per currency."))
    return g.title, body


def _one(page: Page, name: str, values: list) -> tuple[str, Html]:
    g, ws = Q.GROUPS[name], page.viewer.workspace
    rows, a = page.run(Q.group(name, values, ws))
    label = " ".join(str(v) for v in values if v is not None)
    if not rows:
        raise NotFound(f"no {name[:-1]} {label!r}" + (f" in workspace {ws!r}" if ws else ""))
    r = rows[0]
    pairs = [(STAT_NAMES.get(s, s), _stat(a, s, r[s])) for s in (g.detail_stats or g.stats)]
    pairs += [("steps", fig(a, fmt.count(r["step_count"]))), ("errors", fig(a, fmt.count(r["error_count"]))),
              ("error rate", fig(a, fmt.pct(r["error_count"], r["step_count"]))),
              ("unpriced steps", fig(a, fmt.count(r["unpriced_steps"])))]
    pairs += money_pairs(a, rows)
    more = link("/ui/sessions", "its sessions", agent=values[0]) if name == "agents" else Html("")
    body = [h('<h1>{} <span class="id">{}</span></h1>', g.title[:-1], label), panel(g.title[:-1], a, page, kv(pairs) + more),
            _breakdown(page, Q.by_tool(name, values, ws), "By tool", "tool"),
            _breakdown(page, Q.by_decision(name, values, ws), "By decision point", "name"),
            _decisions(page, Q.decisions(name, values, ws))]
    return f"{g.title[:-1]} {label}", join(body)


def _breakdown(page: Page, query, title: str, key: str) -> Html:
    rows, a = page.run(query)
    kinds = key == "name"

    def cells(r):
        kind = [h('<span class="kind {}">{}</span>', r["step_kind"], r["step_kind"])] if kinds else []
        return kind + [r[key] or "(none)", fig(a, fmt.count(r["step_count"])), fig(a, fmt.count(r["error_count"])),
                       fig(a, fmt.pct(r["error_count"], r["step_count"])), *money_cells(a, r),
                       fig(a, fmt.count(r["unpriced_steps"]))]
    out = [cells(r) for r in rows]
    cols = (["kind"] if kinds else []) + [
        key, ("steps", "num"), ("errors", "num"), ("error rate", "num"), *MONEY_COLS, ("unpriced", "num")]
    note = ("Model calls (where the agent decides) and policy checks (where a policy decides), by step name."
            if key == "name" else "Tool and API calls, by tool name or API host.")
    return panel(title, a, page, table(cols, out, "None."), note=note)


def _decisions(page: Page, query) -> Html:
    rows, a = page.run(query)
    out = [[r["policy_id"] or "-", r["policy_decision"], fig(a, fmt.count(r["decisions"])), fig(a, fmt.count(r["run_count"])),
            link("/ui/run", r["latest_run"], id=r["latest_run"])] for r in rows]
    return panel("Policy decisions", a, page,
                 table(["policy", "decision", ("decisions", "num"), ("runs", "num"), "latest run"], out, "None."))
