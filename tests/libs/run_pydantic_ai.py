"""pydantic-ai (OpenAIChatModel against the fake server), instrumented with Agent.instrument_all().

Two agent runs under one scenario span (one trace): "Hello!" (one model call), then the weather
question with the first run's history (a tool call, get_weather, the final answer). Session via
conversation_id (gen_ai.conversation.id); user and tier via run metadata.
"""
from _common import PROPERTIES, QUESTION, GREETING, REQUEST_MODEL, SESSION_ID, USER_ID, argv, get_weather, provider

from pydantic_ai import Agent
from pydantic_ai.models.instrumented import InstrumentationSettings
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

endpoint, base_url = argv()
tp = provider(endpoint, "pydantic-ai-agent")
Agent.instrument_all(InstrumentationSettings(tracer_provider=tp))

model = OpenAIChatModel(REQUEST_MODEL, provider=OpenAIProvider(base_url=base_url, api_key="sk-fake-key"))
agent = Agent(model, name="weather_agent", instructions="You tell the weather.")


@agent.tool_plain(name="get_weather")
def weather(city: str) -> str:
    """Current weather in a city."""
    return get_weather(city)


metadata = {"user_id": USER_ID, **PROPERTIES}
with tp.get_tracer("scenario").start_as_current_span("scenario"):
    first = agent.run_sync(GREETING, conversation_id=SESSION_ID, metadata=metadata)
    second = agent.run_sync(QUESTION, conversation_id=SESSION_ID, metadata=metadata,
                            message_history=first.all_messages())
    assert "Sunny" in second.output, second.output
tp.shutdown()
