"""Page chrome and the pieces every page uses: panels with their SQL, figure links, tables,
pagers, error pages. Everything returns `Html`; values are escaped by `h`."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import format as fmt
from .html import Html, esc, h, join, url
from .sql import Query

NAV = [("/ui", "Overview"), ("/ui/sessions", "Sessions"), ("/ui/agents", "Agents"),
       ("/ui/endpoints", "Endpoints"), ("/ui/prompts", "Prompts")]


@dataclass
class Viewer:
    """Who is looking: `workspace` None sees every workspace."""

    workspace: str | None = None
    label: str | None = None
    logged_in: bool = False
    key_id: str | None = None


@dataclass
class Page:
    """One page being built: runs its queries and remembers them, so each figure can link to
    the statement that produced it (`#q1`, `#q2`, ... open that statement's SQL)."""

    store: object
    viewer: Viewer
    queries: list[tuple[str, Query]] = field(default_factory=list)
    shown: set[str] = field(default_factory=set)  # anchors whose SQL is on the page already

    def run(self, query: Query) -> tuple[list[dict], str]:
        rows = self.store.query(query.sql, query.bound).to_pylist()
        anchor = f"q{len(self.queries) + 1}"
        self.queries.append((anchor, query))
        return rows, anchor


class BadRequest(Exception):
    """A parameter the page cannot use (400)."""


class NotFound(Exception):
    """Nothing with that id (in the viewer's workspace) (404)."""


def fig(anchor: str, text, tip: str | None = None) -> Html:
    """A figure: a link to the SQL that produced it."""
    return h('<a class="fig" href="#{}" title="{}">{}</a>', anchor, tip or "the SQL behind this figure", text)


def sql_block(anchor: str, query: Query, label: str = "SQL") -> Html:
    # the anchor is inside <details>: following a figure's link to it opens the SQL (the
    # browser reveals a fragment's closed <details> ancestors), no script needed
    return h('<details class="sql"><summary>{}</summary><pre id="{}"><code>{}</code></pre>'
             '<p class="hint">Runs as is in <code>duckdb</code> on the store file '
             '(or with <code>alephant-otel sql</code> while the server runs).</p></details>', label, anchor, query.text)


def panel(title, anchor: str | None, page: Page | None, body, note=None, cls: str = "", label: str = "SQL") -> Html:
    sql = Html("")
    if anchor and page and anchor in page.shown:  # one statement behind several panels
        sql = h('<p class="hint"><a href="#{}">SQL</a>: the statement shown above</p>', anchor)
    elif anchor and page:
        page.shown.add(anchor)
        sql = sql_block(anchor, dict(page.queries)[anchor], label)
    note_html = h('<p class="note">{}</p>', note) if note else Html("")
    return h('<section class="panel {}"><div class="panel-head"><h2>{}</h2></div>{}{}{}</section>',
             cls, title, note_html, body, sql)


def table(columns: list[str | tuple[str, str]], rows: list[list], empty: str = "Nothing here yet.") -> Html:
    """`columns` are names, or (name, css class) such as ("cost", "num")."""
    cols = [(c, "") if isinstance(c, str) else c for c in columns]
    if not rows:
        return h('<p class="empty">{}</p>', empty)
    head = join(h('<th class="{}">{}</th>', cls, name) for name, cls in cols)
    body = join(h("<tr>{}</tr>", join(h('<td class="{}">{}</td>', cls, cell) for (_, cls), cell in zip(cols, row)))
                for row in rows)
    return h('<div class="scroll"><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>', head, body)


def kv(pairs: list[tuple[str, object]]) -> Html:
    rows = join(h('<tr><th>{}</th><td>{}</td></tr>', k, v) for k, v in pairs)
    return h('<table class="kv"><tbody>{}</tbody></table>', rows)


def link(path: str, text, params=(), **query) -> Html:
    return h('<a href="{}">{}</a>', url(path, params, **query), text)


def pager(path: str, params: list[tuple[str, str]], page: int, has_next: bool) -> Html:
    keep = [(k, v) for k, v in params if k != "page"]
    prev = link(path, "« previous", keep + [("page", str(page - 1))]) if page > 1 else Html("")
    nxt = link(path, "next »", keep + [("page", str(page + 1))]) if has_next else Html("")
    return h('<nav class="pager">{} <span>page {}</span> {}</nav>', prev, page, nxt)


def document(title, body, viewer: Viewer | None, active: str = "") -> Html:
    nav = join(h('<a href="{}" class="{}">{}</a>', href, "active" if href == active else "", name) for href, name in NAV)
    who = Html("")
    if viewer is not None and viewer.logged_in:
        who = h('<div class="who"><span>{}</span><form method="post" action="/ui/logout">'
                '<button type="submit">Log out</button></form></div>', viewer.label)
    elif viewer is not None:
        who = h('<div class="who"><span>{}</span></div>', viewer.label or "every workspace (no virtual keys)")
    return h('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             '<title>{} · alephant-otel</title><link rel="stylesheet" href="/ui/static/ui.css"><link rel="icon" href="/ui/static/icon.svg"></head>'
             '<body><header><a class="brand" href="/ui">alephant-otel</a><nav class="main">{}</nav>{}</header>'
             '<main>{}</main></body></html>\n',
             title, nav if viewer is not None else Html(""), who, body)


def error_page(status: int, message: str, viewer: Viewer | None) -> Html:
    titles = {400: "Bad request", 401: "Log in", 403: "Forbidden", 404: "Not found", 500: "Query failed"}
    title = titles.get(status, "Error")
    return document(title, h('<h1>{}</h1><p class="error" role="alert">{}</p><p><a href="/ui">Overview</a></p>',
                             title, message), viewer)


MONEY_COLS = [("currency", ""), ("cost", "num"), ("revenue", "num"), ("margin", "num")]


def money_cells(anchor: str, row: dict) -> list:
    """currency, cost, revenue, known margin of a roll-up row (a margin over unpriced steps is
    an upper bound, marked ≤)."""
    ccy = row.get("currency")
    if ccy is None:
        return ["-", "-", "-", "-"]
    margin, tip = fmt.money(row["margin"]), None
    if not row.get("margin_complete", True):
        margin, tip = "≤ " + margin, "unpriced steps: cost is a lower bound, so margin is an upper bound"
    return [ccy, fig(anchor, fmt.money(row["cost"])), fig(anchor, fmt.money(row["revenue"])), fig(anchor, margin, tip)]


def money_pairs(anchor: str, rows: list[dict]) -> list[tuple[str, Html]]:
    """(label, figures) per currency for a summary: cost, revenue, known margin."""
    out = []
    for row in rows:
        if row.get("currency") is not None:
            ccy, cost, revenue, margin = money_cells(anchor, row)
            out.append((f"{ccy}: cost · revenue · known margin", h("{} · {} · {}", cost, revenue, margin)))
    return out


__all__ = ["BadRequest", "NotFound", "Page", "Viewer", "document", "error_page", "esc", "fig", "kv", "link",
           "MONEY_COLS", "money_cells", "money_pairs", "panel", "pager", "sql_block", "table"]
