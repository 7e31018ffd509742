"""Real instrumentation libraries, end to end.

Each library runs the same scenario in its own process (tests/libs/run_<library>.py; the
instrumentors patch the openai module globally): a chat call, a call that returns a tool call,
the local tool get_weather(city), and a final chat call with the tool result, against the fake
OpenAI-compatible server in tests/fake_openai.py. Spans go through the official OTLP/gRPC
exporter to a real receiver over a real DuckDB file. Session sess-real-1, user user-42 and
property tier=gold are set through each library's own context mechanism where it has one.

The tests assert the intended mapping: one model_call per HTTP request (3), the tool execution
as a tool_call, agent/workflow/task spans as workflow_action, tokens in non-overlapping buckets
that add up to the fake server's totals exactly once, cost from genai-prices, the context, the
runs (one per scenario; one per agent run for pydantic-ai), and the convention family.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from conftest import Running
from fake_openai import REQUEST_MODEL, RESPONSE_MODEL, SCENARIO, TURNS, FakeOpenAI

LIBS_DIR = Path(__file__).parent / "libs"
SESSION_ID = "sess-real-1"
USER_ID = "user-42"
COST_PLACES = Decimal("0.000000000001")  # DECIMAL(18, 12)


@dataclass(frozen=True)
class Lib:
    script: str
    modules: tuple[str, ...]     # what must be installed (else the library's tests are skipped)
    service: str                 # service.name the script's spans carry
    family: str                  # the convention name `convention` must contain
    model_span: str              # span name of a model call
    tool_span: str               # span name of the tool execution
    workflow_spans: tuple[str, ...]  # agent/workflow/task spans the library makes
    own_spans: tuple[str, ...] = ()  # spans the script adds itself (not the library's)
    reports_details: bool = True     # reports cached and reasoning tokens
    records_request_model: bool = True
    runs: int = 1                    # runs among the library's steps (pydantic-ai: one per agent run)


LIBS = {
    # pydantic-ai: two agent runs ("Hello!", then the weather question with that history) under
    # one script span so that the scenario is one trace
    "pydantic_ai": Lib(
        "run_pydantic_ai.py", ("pydantic_ai", "openai"), "pydantic-ai-agent", "pydantic_ai",
        "chat gpt-4o-mini", "execute_tool get_weather",
        ("invoke_agent weather_agent", "invoke_agent weather_agent"), own_spans=("scenario",), runs=2),
    # openai-v2 reports only prompt/completion totals (no cached or reasoning details)
    "openai_v2": Lib(
        "run_openai_v2.py", ("opentelemetry.instrumentation.openai_v2", "opentelemetry.util.genai",
                             "openai"),
        "openai-v2-agent", "gen_ai", "chat gpt-4o-mini", "execute_tool get_weather",
        ("invoke_agent weather_agent",), reports_details=False),
    # OpenInference records only the response model (llm.model_name)
    "openinference": Lib(
        "run_openinference.py", ("openinference.instrumentation.openai", "openai"),
        "openinference-agent", "openinference", "ChatCompletion", "get_weather",
        ("weather_agent",), records_request_model=False),
    "traceloop": Lib(
        "run_traceloop.py", ("traceloop.sdk", "openai"), "traceloop-agent", "traceloop",
        "openai.chat", "get_weather.tool",
        ("weather_workflow.workflow", "greeting.task", "weather_agent.agent")),
}


@dataclass
class Scenario:
    name: str
    lib: Lib
    receiver: Running
    calls: list          # (kind, request body) the fake server answered
    steps: list[dict]    # the library's steps, by start time

    def named(self, name: str) -> list[dict]:
        return [s for s in self.steps if s["name"] == name]

    @property
    def model_calls(self) -> list[dict]:
        return [s for s in self.steps if s["step_kind"] == "model_call"]

    def expected(self, kind: str) -> dict:
        """The token buckets a model call answering `kind` should have."""
        t = TURNS[kind]
        if self.lib.reports_details:
            return {"input_tokens": t.prompt - t.cached, "cache_read_tokens": t.cached,
                    "output_tokens": t.completion - t.reasoning, "reasoning_tokens": t.reasoning}
        return {"input_tokens": t.prompt, "cache_read_tokens": 0,
                "output_tokens": t.completion, "reasoning_tokens": 0}

    def expected_cost(self, kind: str) -> Decimal:
        t = TURNS[kind]
        cached = t.cached if self.lib.reports_details else 0
        usage = Usage(input_tokens=t.prompt, cache_read_tokens=cached or None, output_tokens=t.completion)
        price = calc_price(usage, model_ref=RESPONSE_MODEL, provider_id="openai")
        return price.total_price.quantize(COST_PLACES)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _clean_env() -> dict:
    """This environment without exporter, SDK, OpenAI or Traceloop settings that could send the
    scenario elsewhere."""
    drop = ("OTEL_", "OPENAI_", "TRACELOOP_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    receiver = Running(tmp_path_factory.mktemp("real-libraries") / "libs.duckdb").start()
    fake = FakeOpenAI().start()
    yield receiver, fake
    fake.stop()
    receiver.stop()


@pytest.fixture(scope="module", params=list(LIBS))
def scenario(request, stack) -> Scenario:
    name, lib = request.param, LIBS[request.param]
    missing = [m for m in lib.modules if not _installed(m)]
    if missing:
        pytest.skip(f"{name}: {', '.join(missing)} not installed (make test installs '.[test,libs]')")
    receiver, fake = stack
    proc = subprocess.run(
        [sys.executable, str(LIBS_DIR / lib.script), receiver.endpoint, fake.base_url(name)],
        cwd=LIBS_DIR, env=_clean_env(), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"{lib.script} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    steps = receiver.rows("SELECT * FROM steps WHERE service_name = ? ORDER BY start_time, span_id",
                          [lib.service])
    return Scenario(name, lib, receiver, fake.calls(name), steps)


def _props(step: dict) -> dict:
    p = step.get("properties")
    return json.loads(p) if isinstance(p, str) else (p or {})


def _conventions(step: dict) -> set[str]:
    return set(re.findall(r"[a-z][a-z0-9_]*", step.get("convention") or ""))


def _runs(sc: Scenario) -> dict[str, list[dict]]:
    """The runs view's rows (one per currency) for each run the library's steps are in."""
    rows = sc.receiver.rows(
        "SELECT * FROM runs WHERE run_id IN (SELECT run_id FROM steps WHERE service_name = ?)",
        [sc.lib.service])
    runs: dict[str, list[dict]] = {}
    for r in rows:
        runs.setdefault(r["run_id"], []).append(r)
    return runs


def _run_stats(sc: Scenario) -> list[dict]:
    """One row per run (step statistics repeat on a run's currency rows)."""
    return [rows[0] for rows in _runs(sc).values()]


def _usd_rows(sc: Scenario) -> list[dict]:
    return [r for rows in _runs(sc).values() for r in rows if r["currency"] == "USD"]


# --- the scenario itself (no mapping involved) ---------------------------------------------------

def test_scenario_made_three_requests(scenario):
    assert [kind for kind, _ in scenario.calls] == list(SCENARIO)
    assert {body["model"] for _, body in scenario.calls} == {REQUEST_MODEL}
    names = {s["name"] for s in scenario.steps}
    lib = scenario.lib
    assert {lib.model_span, lib.tool_span, *lib.workflow_spans} <= names, names


# --- steps ---------------------------------------------------------------------------------------

def test_one_model_call_per_request(scenario):
    """Exactly one model_call per HTTP request: no outer/inner double counting."""
    got = [(s["name"], s["step_kind"]) for s in scenario.steps]
    assert len(scenario.model_calls) == len(scenario.calls) == 3, got
    assert {s["name"] for s in scenario.model_calls} == {scenario.lib.model_span}, got


def test_tool_execution_is_a_tool_call(scenario):
    tools = [s for s in scenario.steps if s["step_kind"] == "tool_call"]
    assert [s["name"] for s in tools] == [scenario.lib.tool_span], \
        [(s["name"], s["step_kind"]) for s in scenario.steps]
    assert tools[0]["tool_name"] == "get_weather"


def test_agent_and_workflow_spans_are_workflow_actions(scenario):
    lib = scenario.lib
    for name in dict.fromkeys(lib.workflow_spans + lib.own_spans):
        kinds = [s["step_kind"] for s in scenario.named(name)]
        assert kinds and set(kinds) == {"workflow_action"}, (name, kinds)
    assert len(scenario.steps) == 3 + 1 + len(lib.workflow_spans) + len(lib.own_spans), \
        [(s["name"], s["step_kind"]) for s in scenario.steps]


# --- tokens and cost ------------------------------------------------------------------------------

BUCKETS = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")


def test_model_call_tokens_in_non_overlapping_buckets(scenario):
    calls = scenario.model_calls
    assert len(calls) == 3
    for step, kind in zip(calls, SCENARIO):
        got = {b: step[b] or 0 for b in BUCKETS}  # NULL: the library did not report that bucket
        assert got == scenario.expected(kind), (kind, step["name"], got)
        assert (step["cache_write_tokens"] or 0) == 0
        turn = TURNS[kind]
        assert step["total_tokens"] == turn.prompt + turn.completion


def test_run_totals_count_every_token_once(scenario):
    """Summed over the scenario's runs (and over its steps), every token counts exactly once."""
    runs = _run_stats(scenario)
    prompt = sum(t.prompt for t in TURNS.values())
    completion = sum(t.completion for t in TURNS.values())
    total = lambda col: sum(r[col] or 0 for r in runs)  # noqa: E731
    assert total("total_tokens") == prompt + completion
    assert total("input_tokens") + total("cache_read_tokens") == prompt
    assert total("output_tokens") + total("reasoning_tokens") == completion
    want = [scenario.expected(kind) for kind in SCENARIO]
    for b in BUCKETS:
        assert total(b) == sum(e[b] for e in want), b
    # usage repeated on agent/workflow spans (pydantic-ai's aggregated usage) is not counted
    assert sum(s["total_tokens"] or 0 for s in scenario.steps) == prompt + completion


def test_model_provider_and_request_model(scenario):
    for s in scenario.model_calls:
        assert (s["model"], s["provider"]) == (RESPONSE_MODEL, "openai"), s["name"]
        assert s["response_model"] == RESPONSE_MODEL
        if scenario.lib.records_request_model:
            assert s["request_model"] == REQUEST_MODEL


def test_model_cost(scenario):
    calls = scenario.model_calls
    assert len(calls) == 3
    for step, kind in zip(calls, SCENARIO):
        assert step["cost_source"] in ("computed", "provided"), (step["name"], step["unpriced_reason"])
        assert step["model_cost"] == scenario.expected_cost(kind), kind
        assert step["currency"] == "USD"
    for s in scenario.steps:
        if s["step_kind"] != "model_call":
            assert s["model_cost"] is None, s["name"]  # tools may be unpriced: that is tool cost
    total = sum(scenario.expected_cost(kind) for kind in SCENARIO)
    usd = _usd_rows(scenario)
    assert sum(r["model_cost"] or 0 for r in usd) == total
    assert sum(r["cost"] or 0 for r in usd) == total


# --- context --------------------------------------------------------------------------------------

def test_runs_of_the_scenario(scenario):
    """All spans of the scenario (one trace) are one run, except that pydantic-ai names each
    agent run (`gen_ai.agent.call.id`, our run-id candidate): one run per `agent.run_sync`."""
    assert len({s["trace_id"] for s in scenario.steps}) == 1
    library_runs = {s["run_id"] for s in _library_steps(scenario)}
    assert len(library_runs) == scenario.lib.runs, {
        rid: [s["name"] for s in scenario.steps if s["run_id"] == rid] for rid in library_runs}
    runs = _runs(scenario)
    rows = [r for rid in library_runs for r in runs[rid]]
    assert len(rows) == scenario.lib.runs  # one currency each
    assert all(r["trace_count"] == 1 for r in rows)
    assert sum(r["step_count"] for r in rows) == len(_library_steps(scenario))
    assert (sum(r["model_calls"] for r in rows), sum(r["tool_calls"] for r in rows)) == (3, 1)
    if scenario.lib.runs > 1:  # each agent run holds exactly one invoke_agent span
        for rid in library_runs:
            agents = [s for s in scenario.steps if s["run_id"] == rid and s["name"].startswith("invoke_agent")]
            assert len(agents) == 1


def _library_steps(sc: Scenario) -> list[dict]:
    """The library's model, tool and agent/workflow steps (not the script's own spans)."""
    return [s for s in sc.steps if s["name"] not in sc.lib.own_spans]


def test_session(scenario):
    got = {(s["name"], s["session_id"]) for s in _library_steps(scenario)}
    assert {sid for _, sid in got} == {SESSION_ID}, got
    library_runs = {s["run_id"] for s in _library_steps(scenario)}
    assert {r["session_id"] for r in _run_stats(scenario) if r["run_id"] in library_runs} == {SESSION_ID}


def test_user(scenario):
    steps = _library_steps(scenario)
    assert "user_id" in steps[0], "steps has no user_id column"
    got = {(s["name"], s["user_id"]) for s in steps}
    assert {uid for _, uid in got} == {USER_ID}, got


def test_custom_property(scenario):
    got = [(s["name"], _props(s)) for s in _library_steps(scenario)]
    assert all(p.get("tier") == "gold" for _, p in got), got


def test_convention_names_the_library(scenario):
    got = [(s["name"], s["convention"]) for s in _library_steps(scenario)]
    assert all(scenario.lib.family in _conventions(s) for s in _library_steps(scenario)), got
