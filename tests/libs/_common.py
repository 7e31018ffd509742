"""Shared by the run_<library>.py scripts: argv, the scenario's context values, the local tool,
and an OTel SDK tracer provider exporting with the official OTLP/gRPC exporter.

Each script runs in its own process (instrumentors patch the openai module globally):

    python tests/libs/run_<library>.py RECEIVER_ENDPOINT OPENAI_BASE_URL
"""
from __future__ import annotations

import os
import sys

SESSION_ID = "sess-real-1"
USER_ID = "user-42"
PROPERTIES = {"tier": "gold"}
REQUEST_MODEL = "gpt-4o-mini"
GREETING = "Hello!"
QUESTION = "What is the weather in Paris?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}

# never reach a real service, whatever the environment says
os.environ["OPENAI_API_KEY"] = "sk-fake-key"
for _name in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
    os.environ.pop(_name, None)


def argv() -> tuple[str, str]:
    """(receiver endpoint, OpenAI base URL)"""
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} RECEIVER_ENDPOINT OPENAI_BASE_URL")
    return sys.argv[1], sys.argv[2]


def get_weather(city: str) -> str:
    """The local tool every scenario runs."""
    return f"Sunny, 21 C in {city}"


def exporter(endpoint: str):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=30)


def provider(endpoint: str, service_name: str):
    """A global TracerProvider exporting each span to the receiver as it ends."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    tp = TracerProvider(resource=Resource.create({"service.name": service_name}))
    tp.add_span_processor(SimpleSpanProcessor(exporter(endpoint)))
    trace.set_tracer_provider(tp)
    return tp
