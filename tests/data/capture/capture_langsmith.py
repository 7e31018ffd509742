"""Capture LangSmith's OpenTelemetry export of a small OpenAI tool-calling agent, offline.

Writes tests/data/langsmith_openai.pb and tests/data/langsmith_openai.json.

Versions used for the committed files (Python 3.11.7; all pinned in requirements.txt here):
  langsmith 0.15.0 (with its [otel] extra), openai 1.109.1,
  opentelemetry-api / -sdk / -proto / -exporter-otlp-proto-grpc 1.45.1, protobuf 7.36.2

Regenerate from the repository root (offline: only 127.0.0.1 is contacted; any other DNS lookup
or connect is blocked and reported at the end):
  python3 -m venv /tmp/venv-capture
  /tmp/venv-capture/bin/pip install -r tests/data/capture/requirements.txt
  /tmp/venv-capture/bin/python tests/data/capture/capture_langsmith.py

How LangSmith is switched to OTel-only (langsmith/client.py `_resolve_tracing_mode`):
  LANGSMITH_TRACING=true and LANGSMITH_TRACING_MODE=otel ("otel" = OTel export only, "hybrid" =
  OTel + LangSmith API, "langsmith" = API only). The older spelling LANGSMITH_OTEL_ENABLED=true +
  LANGSMITH_OTEL_ONLY=true means the same ("otel") and is what older langsmith releases read.
  In OTel mode the client uses the global TracerProvider if one is set (we set ours, with an
  in-memory exporter); otherwise it builds its own OTLP/HTTP provider pointed at LangSmith.

Scenario: a @traceable chain `agent_turn` (metadata thread_id/user_id/tier and tags passed via
langsmith_extra) makes a chat call, a call that returns a tool call, runs the @traceable tool
`get_weather(city)`, then a final chat call. The chat calls go through
`langsmith.wrappers.wrap_openai` around `openai.OpenAI` pointed at a fake server on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.update({
    "LANGSMITH_TRACING": "true",
    "LANGSMITH_TRACING_MODE": "otel",
    "LANGSMITH_API_KEY": "lsv2_fake_not_used",
    "LANGSMITH_PROJECT": "alephant-fixture",
})
for var in ("LANGSMITH_OTEL_ENABLED", "LANGSMITH_OTEL_ONLY", "LANGSMITH_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    os.environ.pop(var, None)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

_common.guard_network()

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

memory = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "fixture-langsmith"}))
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)  # before langsmith creates its client

import openai  # noqa: E402
from langsmith import traceable  # noqa: E402
from langsmith.run_trees import get_cached_client  # noqa: E402
from langsmith.wrappers import wrap_openai  # noqa: E402

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
    with _common.FakeProviders() as fake:
        client = wrap_openai(
            openai.OpenAI(base_url=f"{fake.base}/v1", api_key="sk-fake", max_retries=0),
            tracing_extra={"tags": ["openai-wrapper"], "metadata": {"wrapper_note": "wrapped"}},
        )

        @traceable(run_type="tool", name="get_weather")
        def get_weather(city: str) -> dict:
            return {"city": city, "forecast": "sunny", "temp_c": 22}

        @traceable(run_type="chain", name="agent_turn", tags=["fixture"],
                   metadata={"agent_name": "support-bot"})
        def agent_turn(question: str) -> str:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
            messages = [{"role": "user", "content": question}]
            second = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS)
            call = second.choices[0].message.tool_calls[0]
            result = get_weather(**json.loads(call.function.arguments),
                                 langsmith_extra={"metadata": {"tool_call_id": call.id}})
            messages += [second.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}]
            final = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS)
            return final.choices[0].message.content

        answer = agent_turn(
            "What's the weather in Paris?",
            langsmith_extra={
                "metadata": {"thread_id": "sess-fixture-1", "user_id": "user-42", "tier": "gold"},
                "tags": ["gold-tier"],
            },
        )
        get_cached_client().flush()
        provider.force_flush()

    spans = memory.get_finished_spans()
    print(f"answer: {answer!r}; {len(spans)} spans; fake server saw {len(fake.requests)} requests")
    print(_common.summarize(spans))
    pb = _common.write_capture("langsmith_openai", spans)
    print(f"wrote {pb} and {pb.with_suffix('.json')}")
    print("blocked non-loopback network attempts:", _common.BLOCKED or "none")
    if len(spans) != 5:
        raise SystemExit(f"expected 5 spans (chain, 3 llm, tool), got {len(spans)}")


if __name__ == "__main__":
    main()
