"""An agent that exports to alephant-otel with environment variables only: no Alephant code.

    alephant-otel serve &                                   # or: make run
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 \
    OTEL_EXPORTER_OTLP_HEADERS="alephant-agent-id=weather-bot,alephant-session-id=sess-1" \
    OTEL_RESOURCE_ATTRIBUTES="service.name=weather-bot,alephant.workspace.id=acme" \
    python examples/agent_env_only.py
    alephant-otel cost --by session

The standard OTLP/gRPC exporter reads the endpoint, the export headers (Alephant context for
every span) and the resource from the environment.
"""
from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from demo_agent import run_task

provider = TracerProvider(resource=Resource.create())
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
print(run_task(provider.get_tracer("weather-bot"), "What is the weather in Paris?"))
provider.shutdown()  # flushes: every span is acknowledged (stored) before this returns
