"""The mapper, pricing and store as a Python library, the in-process SDK exporter, and the
examples (run for real)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from alephant_otel.api import Store, map_protobuf, map_request, map_span, price_steps, resolve_steps
from alephant_otel.otlp import decode_request
from alephant_otel.sdk import AlephantSpanExporter, AlephantSpanProcessor, alephant_context
from conftest import FIXTURES
from test_mapping import make_span

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_round_trip_request_to_steps_to_store(tmp_path):
    req = decode_request((FIXTURES / "traceloop_openai.pb").read_bytes())
    steps = price_steps(resolve_steps(map_request(req).steps))
    calls = [s for s in steps if s["step_kind"] == "model_call"]
    assert len(calls) == 3 and all(s["cost_source"] == "computed" for s in calls)
    assert {s["session_id"] for s in steps} == {"sess-fixture-1"}
    with Store(tmp_path / "lib.duckdb") as store:
        result = store.write(steps)
        assert (result.inserted, result.duplicates) == (7, 0)
        assert store.write(steps).duplicates == 7
        runs = store.query("SELECT step_count, model_calls, cost FROM runs").to_pylist()
    assert runs == [{"step_count": 7, "model_calls": 3, "cost": sum(s["model_cost"] for s in calls)}]


def test_map_serialized_bytes_as_the_receiver_does():
    data = (FIXTURES / "traceloop_openai.pb").read_bytes()
    assert map_protobuf(data, [("alephant-agent-id", "lib")]).steps == \
        map_request(decode_request(data), [("alephant-agent-id", "lib")]).steps


def test_map_one_span():
    (step,) = map_span(make_span("chat", attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                                                "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}),
                       resource_attributes={"alephant.agent.id": "a1"})
    assert (step["step_kind"], step["input_tokens"], step["tiers"][1]["agent_id"]) == ("model_call", 10, "a1")


def test_in_process_exporter_with_context_manager(tmp_path):
    db = tmp_path / "inproc.duckdb"
    exporter = AlephantSpanExporter(str(db))
    tp = TracerProvider(resource=Resource.create({"service.name": "inproc"}))
    tp.add_span_processor(AlephantSpanProcessor())
    tp.add_span_processor(BatchSpanProcessor(exporter))
    tracer = tp.get_tracer("t")
    with alephant_context(session_id="s1", agent_id="bot", tier="gold"):
        with alephant_context(run_id="r1", tier="platinum"):
            with tracer.start_as_current_span("chat", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100, "alephant.agent.id": "explicit"}):
                pass
        with tracer.start_as_current_span("outside-run"):
            pass
    with tracer.start_as_current_span("no-context"):
        pass
    tp.shutdown()
    con = duckdb.connect(str(db), read_only=True)
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT name, run_id, session_id, agent_id, properties, model_cost FROM steps").fetchall()}
    con.close()
    assert rows["chat"][:3] == ("r1", "s1", "explicit")  # the span's own attribute wins
    assert json.loads(rows["chat"][3]) == {"tier": "platinum"}
    assert rows["chat"][4] == Decimal("0.000210000000")
    assert rows["outside-run"][1:3] == ("s1", "bot") and json.loads(rows["outside-run"][3]) == {"tier": "gold"}
    assert rows["no-context"][1] is None and rows["no-context"][3] is None
    assert exporter.export([]).name == "FAILURE"  # after shutdown


def _run_example(name: str, *args, env=None) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                         timeout=120, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_example_agent_exporting_with_env_vars_only(receiver):
    out = _run_example("agent_env_only.py", env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_EXPORTER_OTLP_HEADERS": "alephant-agent-id=weather-bot,alephant-session-id=sess-env",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=weather-bot,alephant.workspace.id=acme"})
    assert "Sunny in Paris" in out
    rows = receiver.rows("SELECT agent_id, session_id, workspace_id, service_name, step_kind FROM steps")
    assert len(rows) == 4
    assert {(r["agent_id"], r["session_id"], r["workspace_id"], r["service_name"]) for r in rows} == \
        {("weather-bot", "sess-env", "acme", "weather-bot")}
    assert sorted(r["step_kind"] for r in rows) == ["model_call", "model_call", "tool_call", "workflow_action"]


def test_example_agent_writing_in_process(tmp_path):
    out = _run_example("agent_in_process.py", str(tmp_path / "agent.duckdb"))
    costs = re.findall(r"^run-(\d): 4 steps, \$(0\.\d{6})$", out, re.M)
    assert [c[0] for c in costs] == ["1", "2"] and costs[0][1] == costs[1][1] and float(costs[0][1]) > 0
