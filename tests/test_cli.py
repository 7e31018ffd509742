"""The command line: query commands on a file, and on a file held by a running `serve`."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from alephant_otel.cli import main
from conftest import Running, shutdown

CLI = str(Path(sys.executable).parent / "alephant-otel")


def populate(receiver):
    with shutdown(receiver.provider(headers={"alephant-agent-id": "cli-agent"})) as tracer:
        for session, run in [("s1", "r1"), ("s1", "r2"), ("s2", "r3")]:
            with tracer.start_as_current_span(f"run {run}", attributes={"alephant.session.id": session,
                                                                        "alephant.run.id": run,
                                                                        "alephant.prompt.id": "p1"}):
                with tracer.start_as_current_span("chat", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000,
                        "gen_ai.usage.output_tokens": 100}):
                    pass


@pytest.fixture
def stored(tmp_path):
    r = Running(tmp_path / "cli.duckdb").start()
    populate(r)
    r.stop()
    return str(r.db)


def invoke(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.mark.parametrize("by,key", [("run", "run_id"), ("session", "session_id"), ("agent", "agent_id"),
                                    ("model", "model"), ("prompt", "prompt_id")])
def test_cost_by_each_grouping_as_json(stored, by, key):
    res = invoke("cost", "--by", by, "--db", stored, "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    assert all(key in r and "cost" in r for r in rows)
    total = sum(r["cost"] for r in rows)
    assert total == pytest.approx(3 * (1000 * 0.15 + 100 * 0.6) / 1e6)


def test_cost_by_session_values_and_since(stored):
    rows = json.loads(invoke("cost", "--by", "session", "--db", stored, "--format", "json").output)
    by = {r["session_id"]: r for r in rows}
    assert by["s1"]["run_count"] == 2 and by["s2"]["run_count"] == 1
    assert by["s1"]["cost"] == pytest.approx(2 * by["s2"]["cost"])
    future = json.loads(invoke("cost", "--by", "session", "--since", "2999-01-01", "--db", stored, "--format", "json").output)
    assert future == []
    assert len(json.loads(invoke("cost", "--by", "session", "--since", "1h", "--db", stored, "--format", "json").output)) == 2


def test_runs_csv_and_session_filter(stored):
    res = invoke("runs", "--session", "s1", "--db", stored, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert sorted(r["run_id"] for r in rows) == ["r1", "r2"]
    assert all(r["model_calls"] == "1" and r["step_count"] == "2" for r in rows)


def test_table_output_and_sql(stored):
    res = invoke("sql", "SELECT session_id, run_count FROM sessions ORDER BY session_id", "--db", stored)
    assert res.exit_code == 0
    assert "s1" in res.output and "s2" in res.output and "2 rows" in res.output


def test_errors_are_one_line_messages(stored, tmp_path):
    res = CliRunner().invoke(main, ["sql", "SELEC nonsense", "--db", stored])
    assert res.exit_code == 1 and res.output.startswith("Error:") and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["runs", "--db", str(tmp_path / "missing.duckdb")])
    assert res.exit_code == 1 and "no store at" in res.output
    res = CliRunner().invoke(main, ["cost", "--by", "session", "--since", "last tuesday", "--db", stored])
    assert res.exit_code == 1 and "--since" in res.output


def test_every_command_has_help_with_an_example():
    for name, cmd in main.commands.items():
        res = invoke(name, "--help")
        assert res.exit_code == 0 and "Example" in res.output, name


def test_serve_default_sizes():
    from alephant_otel.cli.serve import default_sizes

    assert default_sizes(2, None, None) == (2, 1)  # this machine: two mappers, one DuckDB thread
    assert default_sizes(8, None, None) == (7, 1)
    assert default_sizes(8, 2, None) == (2, 6)  # DuckDB gets the cores the workers leave
    assert default_sizes(8, 0, None) == (0, 8)
    assert default_sizes(1, None, None) == (1, 1)
    assert default_sizes(3, None, None) == (2, 1)
    assert default_sizes(8, None, 4) == (7, 4)  # as given


def test_queries_go_through_a_running_serve(tmp_path):
    db = tmp_path / "live.duckdb"
    proc = subprocess.Popen([CLI, "serve", "--db", str(db), "--grpc-port", "0", "--http-port", "0", "--duckdb-threads", "2",
                             "--checkpoint-mb", "32"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Stop with"):
            lines.append(proc.stdout.readline())
            assert lines[-1], "serve exited"
        printed = "".join(lines)
        m = re.search(r"OTLP/gRPC listening on 127\.0\.0\.1:(\d+)", printed)
        assert m, printed
        port = int(m.group(1))
        assert re.search(r"OTLP/HTTP listening on http://127\.0\.0\.1:\d+/v1/traces", printed)
        ui = re.search(r"Web view \(read-only\): (http://127\.0\.0\.1:\d+/ui)", printed)
        assert ui, printed
        with urllib.request.urlopen(ui.group(1), timeout=30) as page:  # the printed address works
            assert page.status == 200 and "<h1>Overview</h1>" in page.read().decode()
        assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{port}" in printed
        assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in printed
        populate(Running(db, address=f"127.0.0.1:{port}"))
        out = subprocess.run([CLI, "cost", "--by", "session", "--db", str(db), "--format", "json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert {row["session_id"] for row in json.loads(out.stdout)} == {"s1", "s2"}
        prices = tmp_path / "p.yaml"
        prices.write_text("version: live-2\nmodels:\n  - {provider: openai, input: 1, output: 1}\n")
        repriced = subprocess.run([CLI, "reprice", "--prices", str(prices), "--db", str(db)],
                                  capture_output=True, text=True, timeout=60)
        assert repriced.returncode == 0 and "repriced 3 steps with price list live-2" in repriced.stdout
        sources = subprocess.run([CLI, "sql", "SELECT DISTINCT price_source FROM steps WHERE step_kind = 'model_call'",
                                  "--db", str(db), "--format", "json"], capture_output=True, text=True, timeout=60)
        assert json.loads(sources.stdout) == [{"price_source": "price list live-2"}]
        threads = subprocess.run([CLI, "sql", "SELECT current_setting('threads') AS t,"
                                  " current_setting('checkpoint_threshold') AS c", "--db", str(db), "--format", "json"],
                                 capture_output=True, text=True, timeout=60)
        # --duckdb-threads and --checkpoint-mb reached the server's DuckDB (32 MB = 30.5 MiB)
        assert json.loads(threads.stdout) == [{"t": 2, "c": "30.5 MiB"}]
        denied = subprocess.run([CLI, "sql", "DELETE FROM _spans", "--db", str(db)],
                                capture_output=True, text=True, timeout=60)
        assert denied.returncode == 1 and "only SELECT" in denied.stderr
        assert os.stat(str(db) + ".server.json").st_mode & 0o077 == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not Path(str(db) + ".server.json").exists()
    # after a clean stop, everything acknowledged is in the file
    rows = json.loads(invoke("runs", "--db", str(db), "--format", "json").output)
    assert len(rows) == 3


def test_session_path_tree(tmp_path):
    r = Running(tmp_path / "paths.duckdb").start()
    with shutdown(r.provider()) as tracer:
        for path, tokens in [("/classify", 1000), ("/classify/intent", 2000), ("/execute-tool", 0)]:
            attrs = {"alephant.session.id": "s-p", "alephant.session.path": path}
            if tokens:
                attrs.update({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                              "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": tokens,
                              "gen_ai.usage.output_tokens": 0})
            with tracer.start_as_current_span(path, attributes=attrs):
                pass
    costs = {s["session_path"]: s["model_cost"] for s in r.rows("SELECT session_path, model_cost FROM steps")}
    r.stop()
    out = json.loads(invoke("session", "s-p", "--db", str(r.db), "--format", "json").output)
    root = out["paths"]
    assert root["steps"] == 3 and [c["segment"] for c in root["children"]] == ["classify", "execute-tool"]
    classify = root["children"][0]
    assert classify["steps"] == 2 and classify["children"][0]["path"] == "/classify/intent"
    assert classify["cost"]["USD"] == pytest.approx(float(costs["/classify"] + costs["/classify/intent"]))
    assert classify["latency_ms"] >= classify["children"][0]["latency_ms"]
    assert len(out["runs"]) == 3
    text = invoke("session", "s-p", "--db", str(r.db)).output
    assert "/classify/intent" in text and "session s-p" in text
