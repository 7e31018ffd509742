"""The same agent writing its runs into a local DuckDB file in-process: no server, no network.

    python examples/agent_in_process.py agent.duckdb
    alephant-otel cost --by run --db agent.duckdb
"""
from __future__ import annotations

import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from alephant_otel.sdk import AlephantSpanExporter, AlephantSpanProcessor, alephant_context
from demo_agent import run_task

db = sys.argv[1] if len(sys.argv) > 1 else "agent.duckdb"
exporter = AlephantSpanExporter(db)
provider = TracerProvider()
provider.add_span_processor(AlephantSpanProcessor())  # copies alephant_context onto each span
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("weather-bot")
with alephant_context(agent_id="weather-bot", session_id="sess-1", workspace_id="acme", tier="gold"):
    for i, city in enumerate(["Paris", "Oslo"]):
        with alephant_context(run_id=f"run-{i + 1}"):
            print(run_task(tracer, f"What is the weather in {city}?"))
provider.shutdown()  # flushes, then closes the file

import duckdb  # noqa: E402  (read what was written)

with duckdb.connect(db, read_only=True) as con:
    for run_id, steps, cost in con.execute("SELECT run_id, step_count, cost FROM runs ORDER BY run_id").fetchall():
        print(f"{run_id}: {steps} steps, ${cost:.6f}")
