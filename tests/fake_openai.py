"""A fake OpenAI-compatible Chat Completions server on 127.0.0.1, for driving real
instrumentation libraries without a real LLM.

The answer depends only on the request, never on call order:

- the last message is a tool result           -> the final answer   (TURNS["final"])
- the last user message asks about the weather -> a get_weather call (TURNS["tool_call"])
- anything else                               -> a greeting         (TURNS["greeting"])

Each answer carries usage with ``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens``. Requests are recorded per *tag*: the first path
segment when the base URL is ``<url>/<tag>/v1``, so one server can serve several clients.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUEST_MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
WEATHER = "Sunny, 21 C"


@dataclass(frozen=True)
class Turn:
    prompt: int      # prompt_tokens (includes cached)
    completion: int  # completion_tokens (includes reasoning)
    cached: int      # prompt_tokens_details.cached_tokens
    reasoning: int   # completion_tokens_details.reasoning_tokens


TURNS = {
    "greeting": Turn(21, 9, 4, 3),
    "tool_call": Turn(57, 17, 32, 5),
    "final": Turn(88, 24, 48, 7),
}
SCENARIO = ("greeting", "tool_call", "final")  # the order a scenario makes its calls in


def _last_user_text(messages: list) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def choose(body: dict) -> str:
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return "final"
    if "weather" in _last_user_text(messages).lower():
        return "tool_call"
    return "greeting"


def completion(kind: str, n: int) -> dict:
    turn = TURNS[kind]
    if kind == "tool_call":
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
            "id": f"call_weather_{n}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
        }]}
        finish = "tool_calls"
    elif kind == "final":
        message = {"role": "assistant", "content": f"It is {WEATHER} in Paris.", "refusal": None}
        finish = "stop"
    else:
        message = {"role": "assistant", "content": "Hello! How can I help?", "refusal": None}
        finish = "stop"
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": RESPONSE_MODEL,
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": turn.prompt,
            "completion_tokens": turn.completion,
            "total_tokens": turn.prompt + turn.completion,
            "prompt_tokens_details": {"cached_tokens": turn.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": turn.reasoning, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
        },
    }


class FakeOpenAI:
    """``with FakeOpenAI() as fake: ... fake.base_url("tag") ... fake.calls("tag")``"""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: list[tuple[str, str, dict]] = []  # (tag, kind, request body)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if not parts or parts[-2:] != ["chat", "completions"]:
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self._send(400, {"error": {"message": "invalid JSON"}})
                if body.get("stream"):
                    return self._send(400, {"error": {"message": "streaming is not faked"}})
                tag = parts[0] if len(parts) > 3 else ""
                kind = choose(body)
                with fake._lock:
                    fake._calls.append((tag, kind, body))
                    n = len(fake._calls)
                self._send(200, completion(kind, n))

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, tag: str = "") -> str:
        """The OpenAI base URL (ending in /v1) for a client whose requests are recorded under tag."""
        return f"{self.url}/{tag}/v1" if tag else f"{self.url}/v1"

    def calls(self, tag: str | None = None) -> list[tuple[str, dict]]:
        """(kind, request body) of each call, in arrival order."""
        with self._lock:
            return [(k, b) for t, k, b in self._calls if tag is None or t == tag]

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
