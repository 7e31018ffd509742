"""Data and helpers shared by the web view's tests (tests/test_ui.py, tests/test_ui_browser.py):
spans sent through the real receiver with the official OTel SDK exporter, and a tiny HTTP
client that keeps cookies out of the way of redirects."""
from __future__ import annotations

import html
import http.client
import re
import time
from urllib.parse import urlencode

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import test_money
from conftest import shutdown

XSS_NAME = "<script>alert(1)</script>"
XSS_SESSION = "<img src=x onerror=alert(2)>"
XSS_RUN = "r-<script>alert(3)</script>"
XSS_PROPERTY = '"><script>alert(4)</script>'
MS = 1_000_000  # nanoseconds


def _span(tracer, name, start_ms, end_ms, t0, attributes, kind=SpanKind.INTERNAL, error=None):
    span = tracer.start_span(name, kind=kind, start_time=t0 + start_ms * MS, attributes=attributes)
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    return span, t0 + end_ms * MS


def _chat(inp, out):
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out}


def demo(tracer, t0: int) -> None:
    """A support agent's session over two runs, with timings, a session path per step, a tool
    cost, a policy check, a failed and retried API call, and revenue."""
    from opentelemetry import trace
    ctx = {"alephant.workspace.id": "acme", "alephant.agent.id": "support-bot", "alephant.session.id": "demo-1",
           "alephant.workflow.name": "refunds", "alephant.user.id": "u-42", "alephant.property.tier": "gold"}

    def tree(root, children):
        for child, child_end in children:
            child.end(end_time=child_end)
        root[0].end(end_time=root[1])

    root = _span(tracer, "handle ticket", 0, 2400, t0, {**ctx, "alephant.run.id": "run-a", "alephant.session.path": "/triage",
                                                        "alephant.session.name": "Refund request"})
    with trace.use_span(root[0], end_on_exit=False):
        kids = [_span(tracer, "chat gpt-4o-mini", 50, 850, t0, {**_chat(1200, 300), "alephant.session.path": "/triage"}, SpanKind.CLIENT),
                _span(tracer, "search_orders", 900, 1300, t0, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_orders",
                                                               "alephant.cost.amount": 0.002, "alephant.session.path": "/triage/lookup"}),
                _span(tracer, "chat gpt-4o-mini", 1350, 2300, t0, {**_chat(2000, 400), "alephant.session.path": "/triage/answer",
                                                                   "alephant.prompt.id": "refund-answer",
                                                                   "alephant.prompt.version": "3"}, SpanKind.CLIENT)]
    tree(root, kids)
    root = _span(tracer, "issue refund", 2600, 4000, t0, {**ctx, "alephant.run.id": "run-b", "alephant.session.path": "/refund",
                                                          "alephant.revenue.amount": 0.05})
    with trace.use_span(root[0], end_on_exit=False):
        kids = [_span(tracer, "refund policy", 2650, 2700, t0, {"alephant.policy.decision": "allowed", "alephant.policy.id": "pol-refund"}),
                _span(tracer, "POST payments", 2750, 3600, t0, {"http.request.method": "POST", "server.address": "pay.example",
                                                                 "error.type": "timeout"}, SpanKind.CLIENT, error="timeout"),
                _span(tracer, "POST payments", 3650, 3950, t0, {"http.request.method": "POST", "server.address": "pay.example",
                                                                 "http.request.resend_count": 1}, SpanKind.CLIENT)]
    tree(root, kids)
    # a second agent's session with an error and another property value
    span, end = _span(tracer, "research", 5000, 5600, t0, {"alephant.workspace.id": "acme", "alephant.agent.id": "research-bot",
                                                           "alephant.session.id": "demo-2", "alephant.run.id": "run-c",
                                                           "alephant.property.tier": "free", **_chat(500, 50)},
                      error="rate limited")
    span.end(end_time=end)


def history(tracer, now: int) -> None:
    """A sales agent's session on each of the last six days (the overview's chart has days)."""
    for day in range(1, 7):
        t0 = now - day * 86_400_000 * MS
        span, end = _span(tracer, "quote", 0, 1500, t0, {
            "alephant.workspace.id": "acme", "alephant.agent.id": "sales-bot", "alephant.session.id": f"quote-{day}",
            "alephant.workflow.name": "quotes", "alephant.revenue.amount": round(0.004 * (day % 3 + 1), 3),
            **_chat(3000 * day, 500 * day)}, SpanKind.CLIENT)
        span.end(end_time=end)


def hostile(tracer) -> None:
    """Attacker-controlled text everywhere it can be."""
    with tracer.start_as_current_span(XSS_NAME, attributes={
            "alephant.session.id": XSS_SESSION, "alephant.run.id": XSS_RUN, "alephant.agent.id": "<b>agent</b>",
            "alephant.property.tier": XSS_PROPERTY, "note": "<script>alert(5)</script>", "alephant.cost.amount": 0.001}):
        pass


def fill(running, bulk: int = 0) -> None:
    """The money scenario of test_money, the demo sessions, the hostile span, and `bulk`
    one-step sessions (bulk-000, ...) for pagination."""
    with shutdown(running.provider()) as tracer:
        test_money.scenario(tracer)
        demo(tracer, time.time_ns() - 3600 * 1000 * MS)
        history(tracer, time.time_ns())
        hostile(tracer)
    if bulk:
        tp = TracerProvider()
        tp.add_span_processor(BatchSpanProcessor(running.exporter(), max_export_batch_size=500))
        with shutdown(tp) as tracer:
            for i in range(bulk):
                with tracer.start_as_current_span("bulk", attributes={"alephant.session.id": f"bulk-{i:03d}",
                                                                      "alephant.agent.id": "bulk-bot"}):
                    pass


class Client:
    """GET and POST against the receiver's HTTP port; never follows redirects."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, form: dict | None = None, cookie: str | None = None,
                headers: dict | None = None):
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        hdrs = dict(headers or {})
        body = None
        if form is not None:
            body = urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            hdrs["Cookie"] = cookie
        try:
            con.request(method, path, body=body, headers=hdrs)
            resp = con.getresponse()
            return resp.status, resp.headers, resp.read().decode()
        finally:
            con.close()

    def get(self, path: str, cookie: str | None = None):
        return self.request("GET", path, cookie=cookie)


def sql_texts(page_html: str) -> dict[str, str]:
    """The runnable SQL behind each figure of a page, by anchor (q1, q2, ...)."""
    return {m.group(1): html.unescape(m.group(2))
            for m in re.finditer(r'<pre id="(q\d+)"><code>(.*?)</code></pre>', page_html, re.S)}
