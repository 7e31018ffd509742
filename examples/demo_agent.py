"""A tiny stand-in agent used by the examples: one task = an agent invocation with two model
calls and a tool call, instrumented with the OTel GenAI conventions (no real LLM is called)."""
from __future__ import annotations

from opentelemetry import trace


def run_task(tracer: trace.Tracer, question: str) -> str:
    with tracer.start_as_current_span("invoke_agent weather", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"}):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 420,
                "gen_ai.usage.cache_read.input_tokens": 128, "gen_ai.usage.output_tokens": 38}):
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}):
            answer = f"Sunny in {question.split()[-1].strip('?')}"
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 512,
                "gen_ai.usage.output_tokens": 60}):
            pass
    return answer
