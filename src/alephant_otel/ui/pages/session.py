"""One session: its figures, its runs, its path tree (latency and cost per node) and a
waterfall of its runs and steps."""
from __future__ import annotations

from .. import format as fmt
from .. import queries as Q
from ..charts import waterfall
from ..html import Html, h, join, url
from ..layout import MONEY_COLS, NotFound, Page, fig, kv, link, money_cells, money_pairs, pager, panel, table
from ..params import Params

ACCEPTS = {"id", "page"}


def render(page: Page, query) -> tuple[str, Html]:
    p = Params(query, ACCEPTS)
    sid, number, ws = p.required("id"), p.page(), page.viewer.workspace
    rows, a = page.run(Q.session(sid, ws))
    if not rows:
        raise NotFound(f"no session {sid!r}" + (f" in workspace {ws!r}" if ws else ""))
    body = [h('<h1>Session <span class="id">{}</span></h1>', sid), _summary(page, rows, a),
            _runs(page, sid, number), _paths(page, sid), _timeline(page, sid)]
    return f"Session {sid}", join(body)


def _summary(page: Page, rows: list[dict], a: str) -> Html:
    r = rows[0]
    pairs = [("name", r["session_name"] or "-"), ("workspace", r["workspace_id"] or "-"),
             ("agent", link("/ui/agents", r["agent_id"], id=r["agent_id"]) if r["agent_id"] else "-"),
             ("start (UTC)", fmt.when(r["start_time"])), ("duration", fig(a, fmt.ms(r["duration_ms"]))),
             ("runs", fig(a, fmt.count(r["run_count"]))), ("steps", fig(a, fmt.count(r["step_count"]))),
             ("errors", fig(a, fmt.count(r["error_count"]))), ("tokens", fig(a, fmt.count(r["total_tokens"]))),
             ("unpriced steps", fig(a, fmt.count(r["unpriced_steps"])))]
    pairs += money_pairs(a, rows)
    return panel("Session", a, page, kv(pairs))


def _runs(page: Page, sid: str, number: int) -> Html:
    rows, a = page.run(Q.session_runs(sid, page.viewer.workspace, number))
    has_next = len(rows) > Q.PAGE_SIZE
    out = [[link("/ui/run", r["run_id"], id=r["run_id"]), r["agent_id"] or "", fmt.when(r["start_time"]),
            fig(a, fmt.ms(r["duration_ms"])), fig(a, fmt.count(r["step_count"])), fig(a, fmt.count(r["error_count"])),
            fig(a, fmt.count(r["retries"])), fig(a, fmt.count(r["total_tokens"])), *money_cells(a, r)]
           for r in rows[:Q.PAGE_SIZE]]
    cols = ["run", "agent", "start (UTC)", ("duration", "num"), ("steps", "num"), ("errors", "num"),
            ("retries", "num"), ("tokens", "num"), *MONEY_COLS]
    return panel("Runs", a, page, table(cols, out) + pager("/ui/session", [("id", sid)], number, has_next),
                 note="Each run's steps in this session, one row per currency.")


def path_tree(rows: list[dict]) -> dict:
    """Nodes per session-path segment; each holds its descendants' steps, first start, last end
    and cost per currency."""
    def node(seg, path):
        return {"segment": seg, "path": path, "children": {}, "steps": 0, "first": None, "last": None, "cost": {}}
    root = node("/", "/")
    for r in rows:
        segs = [s for s in (r["session_path"] or "").split("/") if s]
        chain, n = [root], root
        for i, seg in enumerate(segs):
            n = n["children"].setdefault(seg, node(seg, "/" + "/".join(segs[:i + 1])))
            chain.append(n)
        for n in chain:
            n["steps"] += r["steps"]
            n["first"] = r["first_start"] if n["first"] is None else min(n["first"], r["first_start"])
            n["last"] = r["last_end"] if n["last"] is None else max(n["last"], r["last_end"])
            if r["currency"] is not None and r["cost"] is not None:
                n["cost"][r["currency"]] = n["cost"].get(r["currency"], 0) + r["cost"]
    return root


def _paths(page: Page, sid: str) -> Html:
    rows, a = page.run(Q.session_paths(sid, page.viewer.workspace))
    out = []

    def walk(n, depth):
        latency = (n["last"] - n["first"]).total_seconds() * 1000 if n["first"] and n["last"] else None
        cost = join((fig(a, fmt.money(v, c)) for c, v in sorted(n["cost"].items())), ", ") or "-"
        out.append([h('<span class="tree d{}">{}</span>', min(depth, 12), n["segment"] if depth else "/ (session)"),
                    fig(a, fmt.count(n["steps"])), fig(a, fmt.ms(latency)), cost])
        for child in n["children"].values():
            walk(child, depth + 1)
    walk(path_tree(rows), 0)
    return panel("Path tree", a, page, table(["path segment", ("steps", "num"), ("latency", "num"), ("cost", "num")], out),
                 note="Segments of alephant.session.path; latency = last end - first start of the node's steps; "
                      "cost sums steps whose amounts share one currency.")


def _timeline(page: Page, sid: str) -> Html:
    rows, a = page.run(Q.session_timeline(sid, page.viewer.workspace))
    cut = len(rows) > Q.MAX_TIMELINE_STEPS
    rows = rows[:Q.MAX_TIMELINE_STEPS]
    if not rows:
        return panel("Timeline", a, page, h('<p class="empty">No steps.</p>'))
    t0 = min(r["start_time"] for r in rows)
    t1 = max((r["end_time"] or r["start_time"]) for r in rows)
    total = (t1 - t0).total_seconds() * 1000

    def off(t):
        return (t - t0).total_seconds() * 1000
    runs: dict[str, list[dict]] = {}
    for r in rows:
        runs.setdefault(r["run_id"], []).append(r)
    items = []
    for run_id, steps in runs.items():
        start = min(s["start_time"] for s in steps)
        end = max((s["end_time"] or s["start_time"]) for s in steps)
        items.append({"label": f"run {run_id}", "href": url("/ui/run", id=run_id), "start_ms": off(start),
                      "duration_ms": (end - start).total_seconds() * 1000, "cls": "run", "depth": 0,
                      "tip": f"run {run_id}: {fmt.ms((end - start).total_seconds() * 1000)}"})
        ids = {(s["trace_id"], s["span_id"]): s for s in steps}
        for s in steps:
            depth, parent = 1, ids.get((s["trace_id"], s["parent_span_id"]))
            while parent is not None and depth < 8:
                depth, parent = depth + 1, ids.get((parent["trace_id"], parent["parent_span_id"]))
            items.append({"label": s["name"] or s["step_kind"] or "?", "start_ms": off(s["start_time"]),
                          "duration_ms": s["duration_ms"], "depth": depth,
                          "cls": ("error " if s["status"] == "ERROR" else "") + (s["step_kind"] or "unmapped"),
                          "href": url("/ui/run", id=run_id, trace=s["trace_id"], span=s["span_id"]) + "#step",
                          "tip": f"{s['name']} ({s['step_kind']}): {fmt.ms(s['duration_ms'])}"})
    note = (f"The first {Q.MAX_TIMELINE_STEPS} steps only." if cut else None)
    return panel("Timeline", a, page, h('<div class="scroll">{}</div>', waterfall(items, total)), note=note)
