"""Traceloop's SDK (traceloop-sdk, OpenLLMetry) with its OpenAI instrumentation, against the fake
server. Traceloop.init is given our OTLP/gRPC exporter (no Traceloop endpoint, no API key, no
metrics, logs or telemetry); workflow/task/agent/tool spans come from its decorators; session,
user and tier are association properties.
"""
import json
import os

for _name in ("TRACELOOP_API_KEY", "TRACELOOP_BASE_URL", "TRACELOOP_HEADERS"):
    os.environ.pop(_name, None)
os.environ.update({"TRACELOOP_TELEMETRY": "false", "TRACELOOP_METRICS_ENABLED": "false",
                   "TRACELOOP_LOGGING_ENABLED": "false", "TRACELOOP_TRACE_CONTENT": "true",
                   "TRACELOOP_SUPPRESS_WARNINGS": "true"})

from _common import (PROPERTIES, QUESTION, GREETING, REQUEST_MODEL, SESSION_ID, USER_ID, WEATHER_TOOL,
                     argv, exporter, get_weather)

import openai
from opentelemetry import trace
from traceloop.sdk import Instruments, Traceloop
from traceloop.sdk.decorators import agent, task, tool, workflow

endpoint, base_url = argv()
Traceloop.init(app_name="traceloop-agent", api_endpoint=endpoint, exporter=exporter(endpoint),
               disable_batch=True, telemetry_enabled=False, should_enrich_metrics=False,
               instruments={Instruments.OPENAI})
client = openai.OpenAI(base_url=base_url, api_key="sk-fake-key", max_retries=0)


@tool(name="get_weather")
def weather(city: str) -> str:
    return get_weather(city)


@task(name="greeting")
def greeting() -> None:
    client.chat.completions.create(model=REQUEST_MODEL, messages=[{"role": "user", "content": GREETING}])


@agent(name="weather_agent")
def weather_agent() -> str:
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model=REQUEST_MODEL, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    result = weather(**json.loads(call.function.arguments))
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": result}]
    final = client.chat.completions.create(model=REQUEST_MODEL, messages=messages, tools=[WEATHER_TOOL])
    return final.choices[0].message.content


@workflow(name="weather_workflow")
def scenario() -> str:
    greeting()
    return weather_agent()


Traceloop.set_association_properties({"session_id": SESSION_ID, "user_id": USER_ID, **PROPERTIES})
assert "Sunny" in scenario()
trace.get_tracer_provider().shutdown()
