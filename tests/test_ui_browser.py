"""The web view in a real browser: headless Chromium (Debian's /usr/bin/chromium, installed by
`make browser` and .ci/run) driven by Playwright, against a store filled through the real
receiver. Clicks from the overview to a session, a run and a step, and checks that every
figure on the way is the one the views return; that attacker-controlled text stays text (no
dialog ever opens); that the Content-Security-Policy is never violated; and key login.
Screenshots of every page go to tests/output/ui/ (or $ALEPHANT_UI_SHOTS)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest

import test_money
from conftest import Running, shutdown
from ui_scenario import XSS_NAME, XSS_PROPERTY, XSS_RUN, XSS_SESSION, fill

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("ALEPHANT_UI_SHOTS") or Path(__file__).parent / "output" / "ui")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium and chromium-driver")
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    r = Running(tmp_path_factory.mktemp("uibrowser") / "ui.duckdb", http_port=0, prices=test_money.PRICES).start()
    fill(r)
    yield r
    r.stop()


class Tab:
    """A browser page that records dialogs and console errors (a CSP violation is one)."""

    def __init__(self, browser, base: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def go(self, path: str):
        resp = self.page.goto(self.base + path)
        assert resp is not None
        return resp

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert not [e for e in self.errors if "Content Security Policy" in e or "Refused" in e], self.errors


@pytest.fixture
def tab(browser, store):
    t = Tab(browser, f"http://127.0.0.1:{store.server.http.port}")
    yield t
    t.close()


def money(v) -> str:
    return f"{v:.6f}"


def margin(row) -> str:
    return ("" if row["margin_complete"] else "≤ ") + money(row["margin"])


def cells(row_locator) -> list[str]:
    return [c.strip() for c in row_locator.locator("td").all_inner_texts()]


def panel(page, title: str):
    return page.locator("section.panel", has=page.locator("h2", has_text=re.compile(f"^{re.escape(title)}$")))


def kv_value(section, key: str) -> str:
    return section.locator("tr", has=section.page.locator("th", has_text=re.compile(f"^{re.escape(key)}$"))) \
        .locator("td").inner_text().strip()


def test_overview_to_session_to_run_to_step_with_the_views_figures(tab, store):
    from playwright.sync_api import expect
    page = tab.page
    assert tab.go("/ui").status == 200
    tab.shot("overview")
    usd = store.rows("SELECT sum(cost) AS cost, sum(revenue) AS revenue FROM workspaces WHERE currency = 'USD'")[0]
    totals = panel(page, "Totals")
    expect(totals.locator(".card", has_text="USD cost").locator(".v")).to_have_text(money(usd["cost"]))
    expect(totals.locator(".card", has_text="USD revenue").locator(".v")).to_have_text(money(usd["revenue"]))
    agent = store.rows("SELECT * FROM agents WHERE agent_id = 'support-bot' AND currency = 'USD'")[0]
    row = panel(page, "Top agents by cost").locator("tr", has_text="support-bot")
    assert cells(row)[1:5] == [str(agent["step_count"]), "USD", money(agent["cost"]), money(agent["revenue"])]
    expect(page.locator("svg.chart")).to_have_count(2)

    panel(page, "Most expensive sessions").get_by_role("link", name="demo-1", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/session\?id=demo-1$"))
    tab.shot("session")
    session = store.rows("SELECT * FROM sessions WHERE session_id = 'demo-1' AND currency = 'USD'")[0]
    summary = panel(page, "Session")
    assert kv_value(summary, "runs") == str(session["run_count"])
    assert kv_value(summary, "steps") == str(session["step_count"])
    assert kv_value(summary, "USD: cost · revenue · known margin") == \
        f"{money(session['cost'])} · {money(session['revenue'])} · {margin(session)}"
    run = store.rows("SELECT * FROM runs WHERE run_id = 'run-a' AND currency = 'USD'")[0]
    run_row = panel(page, "Runs").locator("tr", has=page.get_by_role("link", name="run-a", exact=True))
    assert cells(run_row)[4:] == [str(run["step_count"]), "0", "0", f"{run['total_tokens']:,}", "USD",
                                  money(run["cost"]), money(run["revenue"]), margin(run)]
    expect(page.locator("svg.waterfall")).to_be_visible()

    run_row.get_by_role("link", name="run-a").click()
    expect(page).to_have_url(re.compile(r"/ui/run\?id=run-a$"))
    tab.shot("run")
    summary = panel(page, "Run")
    assert kv_value(summary, "steps") == str(run["step_count"])
    assert kv_value(summary, "USD: cost · revenue · known margin") == \
        f"{money(run['cost'])} · {money(run['revenue'])} · {margin(run)}"
    search = store.rows("SELECT * FROM steps WHERE run_id = 'run-a' AND name = 'search_orders'")[0]
    step_row = panel(page, "Steps").locator("tr", has=page.get_by_role("link", name="search_orders"))
    c = cells(step_row)
    assert c[1] == "tool_call" and c[3] == f"{search['duration_ms']:,.1f} ms"
    assert c[5] == f"{money(search['total_cost'])} {search['money_currency']}"

    step_row.get_by_role("link", name="search_orders").click()
    expect(page).to_have_url(re.compile(r"#step$"))
    detail = page.locator("#step")
    expect(detail).to_be_visible()
    assert kv_value(detail, "step_kind") == "tool_call" and kv_value(detail, "tool_name") == "search_orders"
    tab.shot("step")

    # a figure opens the SQL that produced it, and that SQL gives the figure
    step_row = panel(page, "Steps").locator("tr", has=page.get_by_role("link", name="search_orders"))
    fig = step_row.locator("a.fig").first
    anchor = fig.get_attribute("href")
    fig.click()
    sql = page.locator(anchor)
    expect(sql).to_be_visible()
    rows = store.rows(sql.inner_text())
    assert [r["duration_ms"] for r in rows if r["name"] == "search_orders"] == [search["duration_ms"]]


def test_a_hostile_span_renders_as_text(tab, store):
    from playwright.sync_api import expect
    page = tab.page
    assert tab.go("/ui/run?id=" + quote(XSS_RUN)).status == 200
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    expect(page.locator("h1")).to_have_text(f"Run {XSS_RUN}")
    page.get_by_role("link", name=XSS_NAME).click()
    detail = page.locator("#step")
    expect(detail).to_contain_text("<script>alert(5)</script>")
    expect(detail).to_contain_text(XSS_PROPERTY)
    tab.shot("hostile-step")
    assert page.evaluate("document.querySelectorAll('script, img').length") == 0
    tab.go("/ui/session?id=" + quote(XSS_SESSION))
    expect(page.locator("h1")).to_have_text(f"Session {XSS_SESSION}")
    tab.go("/ui/sessions")
    page.locator("input[name=prop]").fill("tier=" + XSS_PROPERTY)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name=XSS_SESSION)).to_be_visible()
    assert page.evaluate("document.querySelectorAll('script, img').length") == 0
    # tab.close() asserts no dialog opened


def test_sessions_filters_from_the_form(tab, store):
    from playwright.sync_api import expect
    page = tab.page
    tab.go("/ui/sessions")
    tab.shot("sessions")
    page.locator("input[name=agent]").fill("support-bot")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"agent=support-bot"))
    links = page.locator("table tbody a[href^='/ui/session?']")
    expect(links).to_have_count(1)
    expect(links).to_have_text("demo-1")
    page.locator("input[name=agent]").fill("")
    page.locator("input[name=errors]").check()
    page.get_by_role("button", name="Filter").click()
    expected = {r["session_id"] for r in store.rows("SELECT session_id FROM sessions WHERE error_count > 0")}
    assert set(links.all_inner_texts()) == expected
    tab.go("/ui/sessions?since=someday")
    expect(page.locator(".error")).to_contain_text("since 'someday'")


@pytest.mark.parametrize("path,shot", [("/ui/agents", "agents"), ("/ui/agents?id=support-bot", "agent"),
                                       ("/ui/endpoints", "endpoints"), ("/ui/endpoints?id=ep-translate", "endpoint"),
                                       ("/ui/prompts", "prompts")])
def test_group_pages(tab, store, path, shot):
    from playwright.sync_api import expect
    assert tab.go(path).status == 200
    expect(tab.page.locator("h1")).to_be_visible()
    tab.shot(shot)


def test_agent_page_error_rate_by_tool(tab, store):
    page = tab.page
    tab.go("/ui/agents")
    panel(page, "Agents").get_by_role("link", name="support-bot").click()
    agent = store.rows("SELECT * FROM agents WHERE agent_id = 'support-bot' AND currency = 'USD'")[0]
    summary = panel(page, "Agent")
    assert kv_value(summary, "error rate") == f"{100 * agent['error_count'] / agent['step_count']:.1f}%"
    assert kv_value(summary, "runs") == str(agent["run_count"])
    tool = cells(panel(page, "By tool").locator("tr", has_text="pay.example"))
    assert tool[:4] == ["pay.example", "2", "1", "50.0%"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    r = Running(tmp_path_factory.mktemp("uibrowserkeys") / "keys.duckdb", http_port=0).start()
    _, key_a = r.server.create_key("ws-a")
    _, key_b = r.server.create_key("ws-b")
    for key, session in [(key_a, "mine"), (key_b, "theirs")]:
        with shutdown(r.provider(headers={"authorization": f"Bearer {key}"})) as tracer:
            with tracer.start_as_current_span("work", attributes={"alephant.session.id": session,
                                                                  "alephant.cost.amount": 0.5}):
                pass
    r.key = key_a
    yield r
    r.stop()


def test_login_with_a_key_shows_only_its_workspace(browser, keyed):
    from playwright.sync_api import expect
    t = Tab(browser, f"http://127.0.0.1:{keyed.server.http.port}")
    try:
        page = t.page
        t.go("/ui/sessions")
        expect(page).to_have_url(re.compile(r"/ui/login\?next="))
        t.shot("login")
        page.locator("input[name=key]").fill("avk_wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".error")).to_contain_text("not valid")
        page.locator("input[name=key]").fill(keyed.key)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/ui/sessions$"))
        expect(page.locator(".who")).to_contain_text("workspace ws-a")
        expect(page.get_by_role("link", name="mine")).to_be_visible()
        expect(page.get_by_role("link", name="theirs")).to_have_count(0)
        (cookie,) = t.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and keyed.key not in cookie["value"]
        assert page.evaluate("document.cookie") == ""
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/ui/login$"))
        t.go("/ui")
        expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    finally:
        t.close()
