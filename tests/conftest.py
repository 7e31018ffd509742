"""Shared test helpers: a real receiver on a loopback port with a real DuckDB file, and real
OTel SDK tracer providers exporting to it with the official OTLP/gRPC exporter."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from alephant_otel.receiver.server import Server

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"


class Running:
    """A receiver running in this process, on a free port, over a real DuckDB file."""

    def __init__(self, db: Path, address: str | None = None, **options):
        self.db = db
        self.address = address  # host:port of the receiver (set by start, or given for another process's)
        self.options = options  # Server keyword arguments (http_port, rules, prices, ...)
        self.server: Server | None = None

    def start(self) -> "Running":
        self.server = Server(str(self.db), "127.0.0.1", 0, **self.options).start()
        self.address = self.server.grpc.address
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self) -> "Running":
        self.stop()
        return self.start()

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    def exporter(self, headers: dict | None = None) -> OTLPSpanExporter:
        return OTLPSpanExporter(endpoint=self.endpoint, insecure=True, headers=headers, timeout=30)

    def provider(self, resource: dict | Resource | None = None, headers: dict | None = None,
                 processors=()) -> TracerProvider:
        """A TracerProvider that exports each span as soon as it ends (one request per span)."""
        if not isinstance(resource, Resource):
            resource = Resource.create({"service.name": "test-agent", **(resource or {})})
        tp = TracerProvider(resource=resource)
        for p in processors:
            tp.add_span_processor(p)
        tp.add_span_processor(SimpleSpanProcessor(self.exporter(headers)))
        return tp

    def rows(self, sql: str, params=None) -> list[dict]:
        return self.server.store.query(sql, params).to_pylist()

    def step(self, name: str) -> dict:
        rows = self.rows("SELECT * FROM steps WHERE name = ?", [name])
        assert len(rows) == 1, f"expected one step named {name!r}, got {len(rows)}"
        return rows[0]


@pytest.fixture
def receiver(tmp_path):
    r = Running(tmp_path / "test.duckdb").start()
    yield r
    r.stop()


@contextlib.contextmanager
def shutdown(tp: TracerProvider):
    try:
        yield tp.get_tracer("tests")
    finally:
        tp.shutdown()
