"""In-process use with the OpenTelemetry Python SDK: no server, no network.

    from opentelemetry.sdk.trace import TracerProvider
    from alephant_otel.sdk import AlephantSpanExporter, AlephantSpanProcessor, alephant_context

    provider = TracerProvider()
    provider.add_span_processor(AlephantSpanProcessor())                  # alephant.* from context
    provider.add_span_processor(BatchSpanProcessor(AlephantSpanExporter("agent.duckdb")))
    with alephant_context(run_id="run-1", session_id="sess-1", agent_id="support-bot", tier="gold"):
        ...  # spans started here carry alephant.run.id, ... and alephant.property.tier

`AlephantSpanExporter` encodes finished spans exactly as the OTLP exporter would and sends them
through the same map -> price -> store pipeline as the receiver, into a local DuckDB file.
Requires the `sdk` extra (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-common).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator, Sequence

from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .receiver.pipeline import Pipeline
from .semconv import CONTEXT_ATTRIBUTES, PROPERTY_PREFIX
from .store import Store

log = logging.getLogger(__name__)
_KEY = otel_context.create_key("alephant-context")
_ATTR_FOR_FIELD = {field: attr for attr, field in CONTEXT_ATTRIBUTES.items()}


@contextlib.contextmanager
def alephant_context(**values) -> Iterator[dict]:
    """Set Alephant context for the spans started inside (with AlephantSpanProcessor).

    Keyword names are our context fields (run_id, session_id, session_path, session_name,
    agent_id, agent_name, user_id, workspace_id, department_id, prompt_id, prompt_version,
    workflow_name, endpoint_id, request_id, ...); any other name is a custom property. Nested
    blocks add to (and override) the outer ones. None values are ignored."""
    current = dict(otel_context.get_value(_KEY) or {})
    for name, value in values.items():
        if value is None:
            continue
        key = _ATTR_FOR_FIELD.get(name, PROPERTY_PREFIX + name)
        current[key] = str(value)
    token = otel_context.attach(otel_context.set_value(_KEY, current))
    try:
        yield current
    finally:
        otel_context.detach(token)


class AlephantSpanProcessor(SpanProcessor):
    """Puts the `alephant_context` values on every span as it starts (a span's own explicit
    attributes set later still win)."""

    def on_start(self, span: Span, parent_context=None) -> None:
        values = otel_context.get_value(_KEY, parent_context) or otel_context.get_value(_KEY)
        if values:
            for key, value in values.items():
                if span.attributes is None or key not in span.attributes:
                    span.set_attribute(key, value)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class AlephantSpanExporter(SpanExporter):
    """Writes spans as priced steps into a local DuckDB file (the store the receiver uses).

    One exporter per file: the file has one writer. Pass the same options the receiver takes
    (rules, prices, cost_preference, store_content)."""

    def __init__(self, db_path: str, rules=None, prices=None, cost_preference: str = "provided",
                 store_content: bool = False, metadata: Sequence[tuple[str, str]] | None = None):
        self._store = Store(db_path)
        self._pipeline = Pipeline(self._store, rules=rules, prices=prices, cost_preference=cost_preference,
                                  store_content=store_content).start()
        self._metadata = list(metadata or [])
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        try:
            self._pipeline.export_request(encode_spans(spans), self._metadata)
        except Exception:  # the SDK's contract: report, do not raise into the application
            log.exception("alephant-otel: could not store %d spans", len(spans))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    @property
    def store(self) -> Store:
        return self._store

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._pipeline.stop()
            self._store.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export is committed before it returns


__all__ = ["AlephantSpanExporter", "AlephantSpanProcessor", "alephant_context"]
