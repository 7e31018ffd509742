"""Sessions: a filtered, paginated list (run count, cost, margin, duration per session)."""
from __future__ import annotations

from .. import format as fmt
from .. import queries as Q
from ..html import Html, h, join
from ..layout import MONEY_COLS, Page, fig, link, money_cells, pager, panel, sql_block, table
from ..params import Params

ACCEPTS = {"agent", "since", "until", "errors", "prop", "page"}


def render(page: Page, query) -> tuple[str, Html]:
    p = Params(query, ACCEPTS, prefixes=("property.",))
    f = Q.Filters(workspace=page.viewer.workspace, since=p.time("since"), until=p.time("until"),
                  agent=p.get("agent"), properties=p.properties())
    errors, number = p.flag("errors"), p.page()
    ids_rows, a_ids = page.run(Q.session_page(f, errors, number))
    has_next = len(ids_rows) > Q.PAGE_SIZE
    ids = [r["session_id"] for r in ids_rows[:Q.PAGE_SIZE]]
    body = [h("<h1>Sessions</h1>"), _form(p, f, errors)]
    if not ids:
        empty = h('<p class="empty">No session matches.</p>') + pager("/ui/sessions", p.pairs, number, False)
        body.append(panel("Sessions", a_ids, page, empty))
        return "Sessions", join(body)
    rows, a = page.run(Q.sessions(ids, page.viewer.workspace))
    order = {s: i for i, s in enumerate(ids)}
    rows.sort(key=lambda r: (order.get(r["session_id"], len(order)), r["currency"] or ""))
    out = []
    for r in rows:
        out.append([link("/ui/session", r["session_id"], id=r["session_id"]), r["session_name"] or "",
                    r["agent_id"] or "", fmt.when(r["start_time"]), fig(a, fmt.ms(r["duration_ms"])),
                    fig(a, fmt.count(r["run_count"])), fig(a, fmt.count(r["step_count"])),
                    fig(a, fmt.count(r["error_count"])), *money_cells(a, r)])
    cols = ["session", "name", "agent", "start (UTC)", ("duration", "num"), ("runs", "num"), ("steps", "num"),
            ("errors", "num"), *MONEY_COLS]
    note = ("Sessions with steps that pass the filters, latest first; their figures cover all their steps "
            "(one row per currency).")
    body.append(panel("Sessions", a, page, table(cols, out) + pager("/ui/sessions", p.pairs, number, has_next)
                      + _which(page, a_ids), note=note, label="SQL: their figures"))
    return "Sessions", join(body)


def _which(page: Page, anchor: str) -> Html:
    return sql_block(anchor, dict(page.queries)[anchor], "SQL: which sessions are on this page")


def _form(p: Params, f: Q.Filters, errors: bool) -> Html:
    props = [f"{n}={v}" for n, v in f.properties]
    prop_inputs = join(h('<label>property <input name="prop" value="{}" placeholder="tier=gold"></label>', v)
                       for v in (props or [""]))
    return h('<form class="filters" method="get" action="/ui/sessions">'
             '<label>agent <input name="agent" value="{}"></label>'
             '<label>since <input name="since" value="{}" placeholder="7d or 2026-11-01"></label>'
             '<label>until <input name="until" value="{}" placeholder="now"></label>{}'
             '<label class="check"><input type="checkbox" name="errors" value="1"{}> has errors</label>'
             '<button type="submit">Filter</button></form>',
             f.agent or "", p.get("since") or "", p.get("until") or "", prop_inputs,
             Html(" checked") if errors else Html(""))
