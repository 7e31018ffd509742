"""OpenInference's OpenAI instrumentation (openinference-instrumentation-openai) around the
openai client, against the fake server. The agent and tool spans come from OpenInference's own
OITracer decorators; session, user and tier from using_session / using_user / using_metadata.
"""
import json

from _common import (PROPERTIES, QUESTION, GREETING, REQUEST_MODEL, SESSION_ID, USER_ID, WEATHER_TOOL,
                     argv, get_weather, provider)

import openai
from openinference.instrumentation import OITracer, TraceConfig, using_metadata, using_session, using_user
from openinference.instrumentation.openai import OpenAIInstrumentor

endpoint, base_url = argv()
tp = provider(endpoint, "openinference-agent")
OpenAIInstrumentor().instrument(tracer_provider=tp)
tracer = OITracer(tp.get_tracer("weather-app"), config=TraceConfig())
client = openai.OpenAI(base_url=base_url, api_key="sk-fake-key", max_retries=0)


@tracer.tool(name="get_weather", description="Current weather in a city.")
def weather(city: str) -> str:
    return get_weather(city)


@tracer.agent(name="weather_agent")
def run_agent() -> str:
    client.chat.completions.create(model=REQUEST_MODEL, messages=[{"role": "user", "content": GREETING}])
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model=REQUEST_MODEL, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    result = weather(**json.loads(call.function.arguments))
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": result}]
    final = client.chat.completions.create(model=REQUEST_MODEL, messages=messages, tools=[WEATHER_TOOL])
    return final.choices[0].message.content


with using_session(SESSION_ID), using_user(USER_ID), using_metadata(dict(PROPERTIES)):
    assert "Sunny" in run_agent()
tp.shutdown()
