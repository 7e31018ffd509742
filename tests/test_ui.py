"""The web view over plain HTTP (no browser): status codes, headers, escaping, bad input,
pagination, filters, the SQL behind the figures, and virtual-key login with tenancy. The
store is filled through the real receiver by the official OTel SDK exporter."""
from __future__ import annotations

import html
import logging
import re
from decimal import Decimal
from urllib.parse import quote, unquote_plus

import duckdb
import pytest

import test_money
from conftest import Running, shutdown
from ui_scenario import XSS_NAME, XSS_PROPERTY, XSS_RUN, XSS_SESSION, Client, fill, sql_texts

from alephant_otel.ui import queries as Q


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    r = Running(tmp_path_factory.mktemp("ui") / "ui.duckdb", http_port=0, prices=test_money.PRICES).start()
    fill(r, bulk=60)
    yield r
    r.stop()


def get(r: Running, path: str, cookie: str | None = None):
    return Client(r.server.http.port).get(path, cookie)


def text(body: str) -> str:
    """The page as a reader sees it: tags out, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def session_links(body: str) -> list[str]:
    return [unquote_plus(html.unescape(m)) for m in re.findall(r'href="/ui/session\?id=([^"&]*)"', body)]


PAGES = ["/ui", "/ui/", "/ui?since=", "/ui/sessions", "/ui/session?id=demo-1", "/ui/run?id=run-a", "/ui/agents",
         "/ui/agents?id=support-bot", "/ui/endpoints", "/ui/endpoints?id=ep-translate", "/ui/prompts",
         "/ui/prompts?id=refund-answer&version=3"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_strict_headers_and_no_script(ui, path):
    status, headers, body = get(ui, path)
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "script" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in body.lower()


def test_stylesheet_is_served_and_nothing_else(ui):
    status, headers, body = get(ui, "/ui/static/ui.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and "--cost" in body
    assert get(ui, "/ui/static/secret.txt")[0] == 404
    assert get(ui, "/ui/static/..%2F..%2Freceiver%2Fauth.py")[0] == 404


@pytest.mark.parametrize("path,status,message", [
    ("/ui/run?id=nope", 404, "no run 'nope'"),
    ("/ui/session?id=nope", 404, "no session 'nope'"),
    ("/ui/agents?id=nobody", 404, "no agent 'nobody'"),
    ("/ui/run", 400, "parameter 'id' is required"),
    ("/ui/run?id=run-a&trace=abc", 400, "both trace and span"),
    ("/ui/run?id=run-a&trace=abc&span=def", 404, "no step abc/def in run 'run-a'"),
    ("/ui/sessions?since=yesterday", 400, "since 'yesterday': use a duration like 24h"),
    ("/ui?until=soon", 400, "until 'soon'"),
    ("/ui/sessions?color=red", 400, "unknown parameter 'color'"),
    ("/ui/sessions?page=0", 400, "page '0': use a page number"),
    ("/ui/sessions?page=x", 400, "page 'x'"),
    ("/ui/sessions?prop=gold", 400, "<name>=<value>"),
    ("/ui/sessions?property.=gold", 400, "needs a property name"),
    ("/ui/sessions?errors=maybe", 400, "errors=1"),
    ("/ui/sessions?agent=a&agent=b", 400, "given 2 times"),
    ("/ui/agents?version=1", 400, "unknown parameter 'version'"),
    ("/ui/nothing/here", 404, "No page '/ui/nothing/here'"),
])
def test_bad_input_gets_a_clear_status_and_message(ui, path, status, message):
    got, headers, body = get(ui, path)
    assert got == status
    assert message in text(body)
    assert headers["Content-Security-Policy"]


def test_attacker_text_is_escaped_everywhere(ui):
    pages = [get(ui, "/ui/run?id=" + quote(XSS_RUN))[2], get(ui, "/ui/session?id=" + quote(XSS_SESSION))[2],
             get(ui, "/ui/sessions?page=2")[2], get(ui, "/ui")[2], get(ui, "/ui/agents")[2]]
    for body in pages:
        assert "<script" not in body.lower() and "<img" not in body.lower()
    assert html.escape(XSS_NAME) in pages[0] and XSS_NAME in text(pages[0])
    assert XSS_SESSION in text(pages[2])
    step = ui.rows("SELECT trace_id, span_id FROM steps WHERE name = ?", [XSS_NAME])[0]
    status, _, body = get(ui, f"/ui/run?id={quote(XSS_RUN)}&trace={step['trace_id']}&span={step['span_id']}")
    assert status == 200 and "<script" not in body.lower()
    detail = text(body)
    assert "<script>alert(5)</script>" in detail and XSS_PROPERTY in detail  # the attribute and property, as text
    status, _, body = get(ui, "/ui/sessions?property.tier=" + quote(XSS_PROPERTY))
    assert status == 200 and session_links(body) == [XSS_SESSION]


def test_run_page_shows_the_runs_view_and_the_step_tree(ui):
    run = ui.rows("SELECT * FROM runs WHERE run_id = 'run-b' AND currency = 'USD'")[0]
    body = text(get(ui, "/ui/run?id=run-b")[2])
    assert f"{run['cost']:.6f}" in body and f"{run['revenue']:.6f}" in body and f"{run['margin']:.6f}" in body
    assert re.search(rf"retries\s+{run['retries']}\b", body) and re.search(r"errors\s+1\b", body)
    assert "allowed pol-refund" in body and "ERROR (timeout)" in body
    names = re.findall(r'class="tree d(\d+) [^"]*" href="[^"]+">([^<]+)<', get(ui, "/ui/run?id=run-b")[2])
    assert names == [("0", "issue refund"), ("1", "refund policy"), ("1", "POST payments"), ("1", "POST payments")]


def test_session_page_path_tree_latency_and_cost(ui):
    body = get(ui, "/ui/session?id=demo-1")[2]
    rows = re.findall(r'<span class="tree d(\d+)">([^<]+)</span></td><td class="num">.*?>([\d,]+)<.*?>([\d,.]+ m?s)<', body)
    tree = {(int(d), seg): (steps, latency) for d, seg, steps, latency in rows}
    assert tree[(0, "/ (session)")] == ("8", "4,000.0 ms")
    assert tree[(1, "triage")] == ("4", "2,400.0 ms")  # with its children lookup and answer
    assert tree[(2, "lookup")] == ("1", "400.0 ms") and tree[(2, "answer")] == ("1", "950.0 ms")
    assert tree[(1, "refund")] == ("4", "1,400.0 ms")
    session = ui.rows("SELECT * FROM sessions WHERE session_id = 'demo-1' AND currency = 'USD'")[0]
    page = text(body)
    assert f"{session['cost']:.6f}" in page and re.search(rf"runs\s+{session['run_count']}\b", page)
    assert 'href="/ui/run?id=run-a"' in body and 'class="waterfall"' in body


def test_sessions_list_paginates_over_every_session(ui):
    seen, page = [], 1
    while True:
        status, _, body = get(ui, f"/ui/sessions?page={page}")
        assert status == 200
        ids = list(dict.fromkeys(session_links(body)))
        assert len(ids) <= Q.PAGE_SIZE
        seen += ids
        if f"page={page + 1}" not in body:
            break
        page += 1
    assert page == 2
    expected = {r["session_id"] for r in ui.rows("SELECT DISTINCT session_id FROM sessions")}
    assert len(seen) == len(set(seen)) and set(seen) == expected
    status, _, body = get(ui, "/ui/sessions?page=9")
    assert status == 200 and "No session matches" in body


@pytest.mark.parametrize("query,expected", [
    ("agent=support-bot", ["demo-1"]),
    ("prop=tier%3Dgold", ["demo-1"]),
    ("property.tier=free", ["demo-2"]),
    ("errors=1", ["demo-2", "demo-1"]),
    ("agent=research-bot&errors=1", ["demo-2"]),
    ("since=2099-01-01", []),
    ("until=2000-01-01", []),
])
def test_session_filters(ui, query, expected):
    status, _, body = get(ui, "/ui/sessions?" + query)
    assert status == 200
    assert list(dict.fromkeys(session_links(body))) == expected


def test_errors_filter_agrees_with_the_view(ui):
    with_errors = {r["session_id"] for r in ui.rows("SELECT session_id FROM sessions WHERE error_count > 0")}
    assert set(session_links(get(ui, "/ui/sessions?errors=1")[2])) == with_errors


def test_groups_pages_show_error_rate_by_tool_and_decision_point(ui):
    body = text(get(ui, "/ui/agents?id=support-bot")[2])
    agent = ui.rows("SELECT * FROM agents WHERE agent_id = 'support-bot' AND currency = 'USD'")[0]
    assert f"{agent['cost']:.6f}" in body and f"{agent['margin']:.6f}" in body
    assert f"{100 * agent['error_count'] / agent['step_count']:.1f}%" in body
    assert re.search(r"pay\.example\s+2\s+1\s+50\.0%", body)  # 2 calls, 1 error
    assert re.search(r"model_call\s+chat gpt-4o-mini\s+2\s+0\s+0\.0%", body)
    body = text(get(ui, "/ui/endpoints")[2])
    ep = ui.rows("SELECT * FROM endpoints WHERE endpoint_id = 'ep-translate' AND currency = 'USD'")[0]
    assert "ep-translate" in body and f"{ep['cost']:.6f}" in body and "100.0%" in body
    body = text(get(ui, "/ui/prompts")[2])
    assert re.search(r"refund-answer 3\s+1", body)


def test_overview_calls_out_unpriced_steps_and_policy_blocks(ui):
    body = get(ui, "/ui")[2]
    page = text(body)
    assert "mystery_tool" in page and "no price for tool 'mystery_tool'" in page
    assert re.search(r"translator\s+pol-pii\s+blocked\s+1\s+1\s+r1", page)
    assert body.count('<svg class="chart"') == 2  # USD and USDC, never added
    totals = ui.rows("SELECT currency, sum(cost) AS cost FROM workspaces WHERE currency IS NOT NULL GROUP BY ALL")
    for t in totals:
        assert f"{t['cost']:.6f}" in page


def test_every_figure_links_to_sql_on_its_page(ui):
    body = get(ui, "/ui/run?id=run-a")[2]
    anchors = set(re.findall(r'class="fig" href="#(q\d+)"', body))
    assert anchors and anchors <= set(sql_texts(body))


def test_the_sql_shown_runs_in_plain_duckdb_and_gives_the_pages_rows(ui):
    pages = ["/ui/run?id=run-a", "/ui/session?id=demo-1", "/ui", "/ui/sessions?agent=support-bot&prop=tier%3Dgold",
             "/ui/agents?id=support-bot", "/ui/prompts?id=refund-answer&version=3"]
    shown = {(p, a): sql for p in pages for a, sql in sql_texts(get(ui, p)[2]).items()}
    assert len(shown) >= 18
    # the page's own statement with parameters, as the server ran it
    expected = {"run": ui.rows(*_bound(Q.run("run-a", None))), "session": ui.rows(*_bound(Q.session("demo-1", None)))}
    ui.stop()
    try:
        con = duckdb.connect(str(ui.db), read_only=True)
        results = {k: con.execute(sql).fetchall() for k, sql in shown.items()}
        con.close()
    finally:
        ui.start()
    assert all(rows is not None for rows in results.values())
    assert [tuple(r.values()) for r in expected["run"]] == results[("/ui/run?id=run-a", "q1")]
    assert [tuple(r.values()) for r in expected["session"]] == results[("/ui/session?id=demo-1", "q1")]


def _bound(q):
    return q.sql, q.bound


# -- virtual keys ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    r = Running(tmp_path_factory.mktemp("uikeys") / "keys.duckdb", http_port=0).start()
    vk_a, key_a = r.server.create_key("ws-a")
    vk_b, key_b = r.server.create_key("ws-b")
    for key, session, run, cost in [(key_a, "shared", "run-a1", 1.0), (key_b, "shared", "run-b1", 5.0),
                                    (key_b, "only-b", "run-b2", 2.0)]:
        with shutdown(r.provider(headers={"authorization": f"Bearer {key}"})) as tracer:
            with tracer.start_as_current_span("work", attributes={
                    "alephant.session.id": session, "alephant.run.id": run, "alephant.agent.id": "bot",
                    "alephant.cost.amount": cost}):
                pass
    r.keys = {"a": key_a, "b": key_b, "vk_b": vk_b.key_id}
    yield r
    r.stop()


def login(r: Running, key: str, target: str = "/ui", origin: str | None = None):
    c = Client(r.server.http.port)
    return c.request("POST", "/ui/login", form={"key": key, "next": target},
                     headers={"Origin": origin or f"http://127.0.0.1:{c.port}"})


def cookie_of(headers) -> str:
    return headers["Set-Cookie"].split(";", 1)[0]


def test_without_keys_there_is_no_login(ui):
    status, headers, _ = get(ui, "/ui/login")
    assert status == 303 and headers["Location"] == "/ui"


def test_with_keys_every_page_asks_for_a_key(keyed):
    for path in ["/ui", "/ui/sessions", "/ui/run?id=run-a1", "/ui/agents"]:
        status, headers, _ = get(keyed, path)
        assert status == 303 and headers["Location"] == "/ui/login?next=" + quote(path, safe="")
    status, _, body = get(keyed, "/ui/login?next=/ui/sessions")
    assert status == 200 and 'type="password"' in body and 'value="/ui/sessions"' in body


def test_a_wrong_key_or_a_foreign_form_is_refused(keyed):
    status, headers, body = login(keyed, "avk_not-a-key")
    assert status == 401 and "not valid" in body and "Set-Cookie" not in headers
    status, headers, _ = login(keyed, keyed.keys["a"], origin="http://evil.example")
    assert status == 403 and "Set-Cookie" not in headers


def test_a_key_sees_only_its_workspace(keyed, caplog):
    caplog.set_level(logging.DEBUG)
    status, headers, _ = login(keyed, keyed.keys["a"], "/ui/sessions")
    assert status == 303 and headers["Location"] == "/ui/sessions"
    set_cookie = headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/ui" in set_cookie
    cookie = cookie_of(headers)
    assert keyed.keys["a"] not in set_cookie
    pages = {p: get(keyed, p, cookie) for p in ["/ui", "/ui/sessions", "/ui/session?id=shared", "/ui/agents?id=bot",
                                                "/ui/run?id=run-a1"]}
    assert all(status == 200 for status, _, _ in pages.values())
    assert session_links(pages["/ui/sessions"][2]) == ["shared"]
    for path in ["/ui/session?id=shared", "/ui/agents?id=bot", "/ui"]:
        page = text(pages[path][2])
        assert "1.000000" in page and "5.000000" not in page and "6.000000" not in page, path  # ws-b's cost is not in it
        assert "workspace ws-a" in page
    assert get(keyed, "/ui/run?id=run-b1", cookie)[0] == 404
    assert get(keyed, "/ui/session?id=only-b", cookie)[0] == 404
    for _, _, body in pages.values():
        assert keyed.keys["a"] not in body
    assert keyed.keys["a"] not in caplog.text


def test_the_admin_token_sees_every_workspace_and_logout_ends_it(keyed):
    status, headers, _ = login(keyed, keyed.server.admin_token)
    cookie = cookie_of(headers)
    page = text(get(keyed, "/ui/session?id=shared", cookie)[2])
    assert "6.000000" in page  # both workspaces' steps of session "shared"
    assert set(session_links(get(keyed, "/ui/sessions", cookie)[2])) == {"shared", "only-b"}
    c = Client(keyed.server.http.port)
    status, headers, _ = c.request("POST", "/ui/logout", cookie=cookie, headers={"Origin": f"http://127.0.0.1:{c.port}"})
    assert status == 303 and headers["Location"] == "/ui/login"
    assert get(keyed, "/ui", cookie)[0] == 303


def test_revoking_a_key_ends_its_sessions(keyed):
    cookie = cookie_of(login(keyed, keyed.keys["b"])[1])
    assert get(keyed, "/ui/session?id=only-b", cookie)[0] == 200
    keyed.server.revoke_key(keyed.keys["vk_b"])
    assert get(keyed, "/ui/session?id=only-b", cookie)[0] == 303
    assert login(keyed, keyed.keys["b"])[0] == 401


def test_sessions_figures_are_the_views_rows(ui):
    body = get(ui, "/ui/sessions?agent=support-bot")[2]
    view = ui.rows("SELECT * FROM sessions WHERE session_id = 'demo-1' AND currency = 'USD'")[0]
    page = text(body)
    assert f"{view['cost']:.6f}" in page and f"{view['revenue']:.6f}" in page
    assert re.search(rf"demo-1\s+Refund request\s+support-bot\s+\S+ \S+\s+{view['duration_ms']:,.1f} ms\s+2\s+8\s+1\s+USD", page)
    assert isinstance(view["cost"], Decimal)


MONEY = ["step_count", "error_count", "unpriced_steps", "model_cost", "tool_cost", "payment_spend", "fees", "revenue",
         "cost", "margin", "margin_complete"]


@pytest.mark.parametrize("name,view,keys", [
    ("agents", "agents", ["agent_id"]), ("workflows", "workflows", ["workflow_name"]),
    ("endpoints", "endpoints", ["endpoint_id"]), ("sessions", "sessions", ["session_id"])])
def test_overview_in_one_pass_gives_the_views_rows(ui, name, view, keys):
    """The overview's grouping-sets statement (multi.py) against the views, row by row."""
    got = [r for r in ui.rows(*_bound(Q.overview(Q.Filters()))) if r["list"] == name]
    assert got
    for r in got:
        cond = " AND ".join(f"{k} IS NOT DISTINCT FROM ?" for k in keys + ["currency"])
        (v,) = ui.rows(f"SELECT * FROM {view} WHERE {cond}", [r[k] for k in keys] + [r["currency"]])
        assert {c: r[c] for c in MONEY} == {c: v[c] for c in MONEY}, (name, r)


def test_overview_totals_days_and_models_add_up_to_the_steps(ui):
    rows = ui.rows(*_bound(Q.overview(Q.Filters())))
    money = {r["currency"]: r["cost"] for r in ui.rows(
        "SELECT currency, sum(amount) FILTER (WHERE component <> 'revenue') AS cost FROM money GROUP BY ALL")}
    totals = [r for r in rows if r["list"] == "totals"]
    assert {r["currency"]: r["cost"] for r in totals} == money
    assert {r["step_count"] for r in totals} == {ui.rows("SELECT count(*) AS n FROM steps")[0]["n"]}
    days = ui.rows("SELECT day, currency, sum(cost) AS cost FROM daily_costs WHERE currency IS NOT NULL GROUP BY ALL")
    assert {(r["day"], r["currency"]): r["cost"] for r in rows if r["list"] == "days" and r["currency"]} == \
        {(d["day"], d["currency"]): d["cost"] for d in days}
    models = ui.rows("SELECT provider, model, currency, sum(model_cost) AS c FROM steps WHERE model IS NOT NULL"
                     " AND model_cost IS NOT NULL GROUP BY ALL")
    assert {(r["provider"], r["model"], r["currency"]): r["model_cost"] for r in rows if r["list"] == "models"} == \
        {(m["provider"], m["model"], m["currency"]): m["c"] for m in models}
