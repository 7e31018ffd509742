"""Capture OpenLIT's spans for the OpenAI and Anthropic clients, offline.

Writes tests/data/openlit_openai.{pb,json} and tests/data/openlit_anthropic.{pb,json}.

Versions used for the committed files (Python 3.11.7; all pinned in requirements.txt here):
  openlit 1.45.0, openai 1.109.1, anthropic 0.125.0, httpx 0.28.1,
  opentelemetry-api / -sdk / -proto / -exporter-otlp-proto-grpc 1.45.1,
  opentelemetry-instrumentation and -instrumentation-httpx 0.66b1, protobuf 7.36.2, grpcio 1.85.1

Regenerate from the repository root (offline: only 127.0.0.1 is contacted; any other DNS lookup
or connect is blocked and reported at the end):
  python3 -m venv /tmp/venv-capture
  /tmp/venv-capture/bin/pip install -r tests/data/capture/requirements.txt
  /tmp/venv-capture/bin/python tests/data/capture/capture_openlit.py

How it is wired: openlit.init() builds its own TracerProvider (resource telemetry.sdk.name=openlit,
service.name=<application_name>, deployment.environment=<environment>) and, because
OTEL_EXPORTER_OTLP_PROTOCOL=grpc and otlp_endpoint are given, OTLP/gRPC exporters for traces,
metrics and logs. They point at a throw-away OTLP/gRPC collector on 127.0.0.1 started here (so
nothing prints to the console and nothing leaves the machine); an InMemorySpanExporter added to
the same provider supplies the spans written to the files, and the script checks that the
collector received the same span ids. `pricing_json` is a local file path
(openlit_pricing.json beside this script; env OPENLIT_PRICING_JSON does the same): without it
openlit.init downloads https://raw.githubusercontent.com/openlit/openlit/main/assets/pricing.json
(requests.get, 20 s timeout; on failure it logs an error and prices everything at 0).
openlit 1.45.0 also turns on the contrib HTTP-client instrumentations (httpx here), so each model
call span has a child `POST` span from opentelemetry.instrumentation.httpx; we keep that default
(disabled_instrumentors=["httpx"] would drop them).

Scenario (OpenAI): openlit.start_trace("agent_turn") root (metadata thread_id/user_id/tier set with
TracedSpan.set_metadata, OpenLIT's only generic mechanism), a chat call, a call that returns a tool
call, the tool get_weather(city) decorated with @openlit.trace, then a final chat call. Chat calls
pass user="user-42" (the OpenAI request field). Scenario (Anthropic): one messages.create call on
claude-sonnet-4-5 with a cached system prompt; the fake server reports input_tokens=100 (uncached),
cache_read_input_tokens=800, cache_creation_input_tokens=200, output_tokens=50.
"""
from __future__ import annotations

import json
import os
import sys
from concurrent import futures
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"  # read by openlit at import time
for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"):
    os.environ.pop(var, None)

sys.path.insert(0, str(HERE))
import _common  # noqa: E402

_common.guard_network()

import grpc  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402


class Collector(trace_service_pb2_grpc.TraceServiceServicer,
                metrics_service_pb2_grpc.MetricsServiceServicer,
                logs_service_pb2_grpc.LogsServiceServicer):
    """A minimal OTLP/gRPC collector on a loopback port that keeps what it receives."""

    def __init__(self):
        self.traces, self.metrics, self.logs = [], [], []
        self.metadata = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def Export(self, request, context):  # one name for the three services
        self.metadata.append(dict(context.invocation_metadata()))
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            self.traces.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()
        if isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
            self.metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()
        self.logs.append(request)
        return logs_service_pb2.ExportLogsServiceResponse()

    def span_ids(self) -> set[str]:
        return {s.span_id.hex() for r in self.traces for rs in r.resource_spans
                for ss in rs.scope_spans for s in ss.spans}


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}]


def main() -> None:
    collector = Collector()
    collector.server.start()

    import openlit
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    openlit.init(
        application_name="fixture-openlit",
        environment="fixture",
        otlp_endpoint=f"http://127.0.0.1:{collector.port}",
        disable_batch=True,
        pricing_json=str(HERE / "openlit_pricing.json"),
        capture_message_content=True,
    )
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))

    import anthropic
    import openai

    with _common.FakeProviders() as fake:
        # ---- OpenAI -----------------------------------------------------------------------
        client = openai.OpenAI(base_url=f"{fake.base}/v1", api_key="sk-fake", max_retries=0)

        @openlit.trace
        def get_weather(city: str) -> str:
            return json.dumps({"city": city, "forecast": "sunny", "temp_c": 22})

        with openlit.start_trace("agent_turn") as root:
            root.set_metadata({"thread_id": "sess-fixture-1", "user_id": "user-42", "tier": "gold"})
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], user="user-42")
            messages = [{"role": "user", "content": "What's the weather in Paris?"}]
            second = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS, user="user-42")
            call = second.choices[0].message.tool_calls[0]
            result = get_weather(**json.loads(call.function.arguments))
            messages += [second.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": result}]
            final = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS, user="user-42")
            root.set_result(final.choices[0].message.content)
        provider.force_flush()
        openai_spans = memory.get_finished_spans()
        memory.clear()

        # ---- Anthropic --------------------------------------------------------------------
        aclient = anthropic.Anthropic(base_url=fake.base, api_key="sk-ant-fake", max_retries=0)
        aclient.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            system=[{"type": "text", "text": "You are a weather assistant. " * 50,
                     "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        )
        provider.force_flush()
        anthropic_spans = memory.get_finished_spans()

    metrics.get_meter_provider().shutdown()  # flush OpenLIT's metrics to the collector
    _logs.get_logger_provider().shutdown()
    provider.shutdown()

    for name, spans in (("openlit_openai", openai_spans), ("openlit_anthropic", anthropic_spans)):
        print(f"== {name}: {len(spans)} spans")
        print(_common.summarize(spans))
        pb = _common.write_capture(name, spans)
        print(f"wrote {pb} and {pb.with_suffix('.json')}")

    memory_ids = {format(s.context.span_id, "016x") for s in (*openai_spans, *anthropic_spans)}
    print(f"collector: {len(collector.traces)} trace requests ({len(collector.span_ids())} spans), "
          f"{len(collector.metrics)} metrics requests, {len(collector.logs)} logs requests "
          f"({sum(len(sl.log_records) for r in collector.logs for rl in r.resource_logs for sl in rl.scope_logs)} log records)")
    for r in collector.logs:
        for rl in r.resource_logs:
            for sl in rl.scope_logs:
                for lr in sl.log_records:
                    print(f"log record: scope={sl.scope.name} event_name={lr.event_name!r} "
                          f"span={lr.span_id.hex()} attributes={sorted(a.key for a in lr.attributes)}")
    if collector.metrics:
        names = sorted({m.name for r in collector.metrics for rm in r.resource_metrics
                        for sm in rm.scope_metrics for m in sm.metrics})
        print("metric names:", names)
    print("blocked non-loopback network attempts:", _common.BLOCKED or "none")
    collector.server.stop(None)
    if collector.span_ids() != memory_ids:
        raise SystemExit("collector and in-memory exporter saw different spans")
    # root + 3 chat + 3 httpx POST + tool; chat + httpx POST
    if len(openai_spans) != 8 or len(anthropic_spans) != 2:
        raise SystemExit(f"expected 8 OpenAI-scenario spans and 2 Anthropic spans, got "
                         f"{len(openai_spans)} and {len(anthropic_spans)}")


if __name__ == "__main__":
    main()
