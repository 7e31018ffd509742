"""The official OpenTelemetry openai-v2 instrumentation (opentelemetry-instrumentation-openai-v2)
around the openai client, against the fake server.

openai-v2 makes only the chat spans; the agent and tool spans come from the same family's
opentelemetry-util-genai TelemetryHandler (invoke_agent, execute_tool). openai-v2 has no context
mechanism for session, user or properties: the session is the agent invocation's
conversation_id (gen_ai.conversation.id), user and tier are alephant.* attributes on it.
"""
import json
import os

os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")

from _common import (PROPERTIES, QUESTION, GREETING, REQUEST_MODEL, SESSION_ID, USER_ID, WEATHER_TOOL,
                     argv, get_weather, provider)

import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.util.genai.handler import TelemetryHandler

endpoint, base_url = argv()
tp = provider(endpoint, "openai-v2-agent")
OpenAIInstrumentor().instrument(tracer_provider=tp)
handler = TelemetryHandler(tracer_provider=tp)
client = openai.OpenAI(base_url=base_url, api_key="sk-fake-key", max_retries=0)

agent = handler.invoke_local_agent(agent_name="weather_agent", request_model=REQUEST_MODEL)
agent.conversation_id = SESSION_ID
agent.attributes.update({"alephant.user.id": USER_ID,
                         **{f"alephant.property.{k}": v for k, v in PROPERTIES.items()}})
with agent:
    client.chat.completions.create(model=REQUEST_MODEL, messages=[{"role": "user", "content": GREETING}])
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model=REQUEST_MODEL, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    with handler.tool(call.function.name, tool_call_id=call.id, tool_type="function") as tool:
        result = get_weather(**json.loads(call.function.arguments))
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": result}]
    final = client.chat.completions.create(model=REQUEST_MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert "Sunny" in final.choices[0].message.content
tp.shutdown()
