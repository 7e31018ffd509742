"""Overview: cost, revenue and known margin per day; top agents, workflows, endpoints, models
and sessions by cost; unpriced steps and policy blocks."""
from __future__ import annotations

from datetime import timedelta

from .. import format as fmt
from ..charts import line_chart
from ..html import Html, h, join
from ..layout import MONEY_COLS, Page, fig, link, money_cells, panel, table
from ..params import Params
from .. import queries as Q

ACCEPTS = {"since", "until"}
DEFAULT_SINCE = "7d"


def render(page: Page, query) -> tuple[str, Html]:
    p = Params(query, ACCEPTS)
    f = Q.Filters(workspace=page.viewer.workspace, since=p.time("since", DEFAULT_SINCE), until=p.time("until"))
    rows, a = page.run(Q.overview(f))
    lists = {}
    for r in rows:
        lists.setdefault(r["list"], []).append(r)
    body = [h("<h1>Overview</h1>"), _range_form(p), _totals(page, lists.get("totals", []), a),
            _chart(page, lists.get("days", []), a)]
    body.append(h('<div class="grid">{}{}</div>', _top(page, lists, a, "agents", "Top agents by cost", "agent_id"),
                  _top(page, lists, a, "workflows", "Top workflows by cost", "workflow_name")))
    body.append(h('<div class="grid">{}{}</div>', _top(page, lists, a, "endpoints", "Top endpoints by cost", "endpoint_id"),
                  _top(page, lists, a, "models", "Top models by cost", "model")))
    body.append(_top(page, lists, a, "sessions", "Most expensive sessions", "session_id"))
    body.append(h('<div class="grid">{}{}</div>', _unpriced(page, f), _blocks(page, f)))
    return "Overview", join(body)


def _range_form(p: Params) -> Html:
    since = p.get("since") if "since" in {k for k, _ in p.pairs} else DEFAULT_SINCE
    return h('<form class="filters" method="get" action="/ui"><label>since <input name="since" value="{}" '
             'placeholder="7d, 24h or 2026-11-01"></label><label>until <input name="until" value="{}" '
             'placeholder="now"></label><button type="submit">Show</button>'
             '<span class="hint">durations (24h, 7d) or ISO dates, UTC; empty since = from the start</span></form>',
             since or "", p.get("until") or "")


def _totals(page: Page, rows: list[dict], a: str) -> Html:
    if not rows:
        return panel("Totals", a, page, h('<p class="empty">No steps in this range.</p>'))
    first = rows[0]
    cards = [h('<div class="card"><span class="k">steps</span><span class="v">{}</span></div>', fig(a, fmt.count(first["step_count"]))),
             h('<div class="card"><span class="k">errors</span><span class="v">{}</span></div>', fig(a, fmt.count(first["error_count"]))),
             h('<div class="card {}"><span class="k">unpriced steps</span><span class="v">{}</span></div>',
               "warn" if first["unpriced_steps"] else "", fig(a, fmt.count(first["unpriced_steps"]))),
             h('<div class="card"><span class="k">tokens</span><span class="v">{}</span></div>', fig(a, fmt.count(first["total_tokens"])))]
    for r in rows:
        if r["currency"] is None:
            continue
        ccy, cost, revenue, margin = money_cells(a, r)
        cards += [h('<div class="card money"><span class="k">{} {}</span><span class="v">{}</span></div>', ccy, k, v)
                  for k, v in (("cost", cost), ("revenue", revenue), ("known margin", margin))]
    return panel("Totals", a, page, h('<div class="cards">{}</div>', join(cards)),
                 note="Amounts in different currencies are never added; a margin marked ≤ has unpriced steps under it.")


def _chart(page: Page, rows: list[dict], a: str) -> Html:
    found = sorted({r["day"] for r in rows})
    # every day from the first to the last (a day without steps moved no money: 0)
    days = [found[0] + timedelta(days=i) for i in range(min((found[-1] - found[0]).days + 1, 1000))] if found else []
    charts = []
    for ccy in sorted({r["currency"] for r in rows if r["currency"] is not None}):
        by_day = {r["day"]: r for r in rows if r["currency"] == ccy}
        series = {k: [by_day[d][k] if d in by_day else 0 for d in days] for k in ("cost", "revenue", "margin")}
        charts.append(h('<figure><figcaption>{}</figcaption>{}</figure>', ccy,
                        line_chart([d.isoformat() for d in days], series, ccy)))
    body = join(charts) if charts else h('<p class="empty">No money moved in this range.</p>')
    return panel("Cost, revenue and known margin per day", a, page, body)


def _top(page: Page, lists: dict, a: str, name: str, title: str, key: str) -> Html:
    out = []
    for r in lists.get(name, []):
        k = r[key]
        if name == "models":
            label = h("{} {}", r["provider"] or "", k or "(no model)")
        elif k is None:
            label = h('<span class="none">(none)</span>')
        elif name == "sessions":
            label = link("/ui/session", k, id=k)
        elif name in ("agents", "endpoints"):
            label = link(f"/ui/{name}", k, id=k)
        else:
            label = h("{}", k)
        out.append([label, fig(a, fmt.count(r["step_count"])), *money_cells(a, r), fig(a, fmt.count(r["unpriced_steps"]))])
    cols = [key, ("steps", "num"), *MONEY_COLS,
            ("unpriced", "num")]
    return panel(title, a, page, table(cols, out, "No steps in this range."))


def _unpriced(page: Page, f: Q.Filters) -> Html:
    rows, a = page.run(Q.unpriced(f))
    out = [[r["step_kind"], r["what"], r["unpriced_reason"] or "-", fig(a, fmt.count(r["steps"])),
            link("/ui/run", r["latest_run"], id=r["latest_run"])] for r in rows]
    return panel("Unpriced steps", a, page, table(["kind", "model / tool / host", "why", ("steps", "num"), "latest run"],
                                                   out, "Every step in this range is priced."),
                 note="Their cost is unknown, so the cost of every group above them is a lower bound.",
                 cls="callout" if rows else "")


def _blocks(page: Page, f: Q.Filters) -> Html:
    rows, a = page.run(Q.policy_blocks(f))
    out = [[r["agent_id"] or "-", r["policy_id"] or "-", r["policy_decision"], fig(a, fmt.count(r["decisions"])),
            fig(a, fmt.count(r["run_count"])), link("/ui/run", r["latest_run"], id=r["latest_run"])] for r in rows]
    return panel("Policy blocks and escalations", a, page,
                 table(["agent", "policy", "decision", ("decisions", "num"), ("runs", "num"), "latest run"], out,
                       "No policy blocked or escalated anything in this range."),
                 cls="callout" if rows else "")
