"""One run: its figures and its step tree (kind, duration bar, tokens, cost, revenue, policy,
status, retries); a step's attributes when one is picked (`trace` and `span`)."""
from __future__ import annotations

from decimal import Decimal

import orjson

from .. import format as fmt
from .. import queries as Q
from ..charts import duration_bar
from ..html import Html, h, join, url
from ..layout import BadRequest, NotFound, Page, fig, kv, link, money_pairs, panel, sql_block, table
from ..params import Params
from ...query.queries import tree

ACCEPTS = {"id", "trace", "span"}


def render(page: Page, query) -> tuple[str, Html]:
    p = Params(query, ACCEPTS)
    run_id, ws = p.required("id"), page.viewer.workspace
    trace, span = p.get("trace"), p.get("span")
    if (trace is None) != (span is None):
        raise BadRequest("a step is picked with both trace and span")
    rows, a = page.run(Q.run(run_id, ws))
    if not rows:
        raise NotFound(f"no run {run_id!r}" + (f" in workspace {ws!r}" if ws else ""))
    body = [h('<h1>Run <span class="id">{}</span></h1>', run_id), _summary(page, rows, a)]
    picked = _step(page, run_id, trace, span) if trace else None
    body.append(_tree(page, run_id, (trace, span)))
    if picked is not None:
        body.append(picked)
    return f"Run {run_id}", join(body)


def _summary(page: Page, rows: list[dict], a: str) -> Html:
    r = rows[0]
    session = link("/ui/session", r["session_id"], id=r["session_id"]) if r["session_id"] else "-"
    pairs = [("session", session), ("agent", link("/ui/agents", r["agent_id"], id=r["agent_id"]) if r["agent_id"] else "-"),
             ("workflow", r["workflow_name"] or "-"),
             ("endpoint", link("/ui/endpoints", r["endpoint_id"], id=r["endpoint_id"]) if r["endpoint_id"] else "-"),
             ("user", r["user_id"] or "-"), ("start (UTC)", fmt.when(r["start_time"])),
             ("duration", fig(a, fmt.ms(r["duration_ms"]))), ("traces", fig(a, fmt.count(r["trace_count"]))),
             ("steps", fig(a, fmt.count(r["step_count"]))), ("errors", fig(a, fmt.count(r["error_count"]))),
             ("retries", fig(a, fmt.count(r["retries"]))), ("tokens", fig(a, fmt.count(r["total_tokens"]))),
             ("unpriced steps", fig(a, fmt.count(r["unpriced_steps"])))]
    pairs += money_pairs(a, rows)
    pairs += [(f"{row['currency']}: retried cost", fig(a, fmt.money(row["retried_cost"])))
              for row in rows if row["currency"] is not None and row["retried_cost"]]
    return panel("Run", a, page, kv(pairs))


def _amounts(s: dict) -> str:
    if s["total_cost"] is not None and s["money_currency"]:
        return fmt.money(s["total_cost"], s["money_currency"])
    parts = [(s["model_cost"], s["currency"]), (s["tool_cost"], s["tool_cost_currency"]),
             (s["payment_spend"], s["payment_currency"]), (s["fees"], s["fee_currency"])]
    shown = [fmt.money(v, c) for v, c in parts if v is not None]
    return " + ".join(shown) if shown else ("unpriced" if s["cost_source"] == "unpriced" else "-")


def _tree(page: Page, run_id: str, picked) -> Html:
    rows, a = page.run(Q.run_steps(run_id, page.viewer.workspace))
    cut = len(rows) > Q.MAX_RUN_STEPS
    rows = rows[:Q.MAX_RUN_STEPS]
    t0 = min(r["start_time"] for r in rows)
    t1 = max((r["end_time"] or r["start_time"]) for r in rows)
    total = (t1 - t0).total_seconds() * 1000
    out = []

    def walk(s, depth):
        href = url("/ui/run", id=run_id, trace=s["trace_id"], span=s["span_id"]) + "#step"
        cls = "error" if s["status"] == "ERROR" else (s["step_kind"] or "unmapped")
        name = h('<a class="tree d{} {}" href="{}">{}</a>', min(depth, 12),
                 "picked" if (s["trace_id"], s["span_id"]) == picked else "", href, s["name"] or "(no name)")
        offset = (s["start_time"] - t0).total_seconds() * 1000
        policy = h("{} {}", s["policy_decision"], s["policy_id"] or "") if s["policy_decision"] else ""
        status = s["status"] + (f" ({s['error_type']})" if s["error_type"] else "")
        revenue = fmt.money(s["revenue"], s["revenue_currency"]) if s["revenue"] is not None else "-"
        out.append([name, h('<span class="kind {}">{}</span>', s["step_kind"] or "unmapped", s["step_kind"] or "unmapped"),
                    duration_bar(offset, s["duration_ms"] or 0, total, cls), fig(a, fmt.ms(s["duration_ms"])),
                    fig(a, fmt.count(s["total_tokens"])) if s["total_tokens"] is not None else "-",
                    fig(a, _amounts(s)), fig(a, revenue) if s["revenue"] is not None else "-", policy,
                    h('<span class="status {}">{}</span>', s["status"], status),
                    fig(a, s["retry_attempt"]) if s["retry_attempt"] else ""])
        for child in s["children"]:
            walk(child, depth + 1)
    for root in tree(rows):
        walk(root, 0)
    cols = ["step", "kind", "timeline", ("duration", "num"), ("tokens", "num"), ("cost", "num"), ("revenue", "num"), "policy",
            "status", ("retry", "num")]
    note = f"The first {Q.MAX_RUN_STEPS} steps only." if cut else "Click a step for its attributes."
    return panel("Steps", a, page, table(cols, out), note=note)


def _step(page: Page, run_id: str, trace: str, span: str) -> Html:
    rows, a = page.run(Q.step(run_id, trace, span, page.viewer.workspace))
    if not rows:
        raise NotFound(f"no step {trace}/{span} in run {run_id!r}")
    step = rows[0]
    pairs = [(k, fig(a, v) if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) else _value(v))
             for k, v in step.items() if v is not None and k not in ("properties", "anomalies")]
    for k in ("properties", "anomalies"):
        if step[k] is not None:
            pairs.append((k, _value(step[k])))
    spans, a2 = page.run(Q.span(trace, span))
    raw = spans[0] if spans else {}
    detail = [h('<h3>Step (the <code>steps</code> view)</h3>'), kv([(k, v if isinstance(v, Html) else h("{}", v))
                                                                    for k, v in pairs])]
    for k in ("attributes", "resource", "events", "links"):
        if raw.get(k) not in (None, "{}", "[]"):
            detail.append(h("<h3>{}</h3>{}", k, _json_block(raw[k])))
    body = join(detail) + h('<p class="hint">Message content appears only when the server stores it '
                            '(<code>serve --store-content</code>); otherwise it reads '
                            '<code>{{"omitted_content_bytes": N}}</code>.</p>')
    return h('<section class="panel step" id="step"><div class="panel-head"><h2>Step {}</h2></div>{}{}{}</section>',
             step["name"] or span, body, sql_block(a, dict(page.queries)[a], "SQL: the step"),
             sql_block(a2, dict(page.queries)[a2], "SQL: the span as sent"))


def _value(v) -> Html:
    if isinstance(v, (dict, list)):
        return h("<code>{}</code>", orjson.dumps(v).decode())
    if isinstance(v, str) and v[:1] in ("{", "["):
        return _json_block(v)
    return h("{}", fmt.when(v) if hasattr(v, "strftime") else v)


def _json_block(text) -> Html:
    try:
        data = orjson.loads(text) if isinstance(text, (str, bytes)) else text
    except orjson.JSONDecodeError:
        return h("<pre>{}</pre>", text)
    if isinstance(data, dict) and data and all(not isinstance(v, (dict, list)) for v in data.values()):
        return kv([(k, h("{}", v if isinstance(v, str) else orjson.dumps(v).decode())) for k, v in sorted(data.items())])
    return h("<pre>{}</pre>", orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
