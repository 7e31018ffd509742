"""Shared helpers for the capture scripts in this folder (not a test module).

- `guard_network()`: any connection or DNS lookup to a host other than loopback fails at once
  and is recorded, so a library that tries to phone home neither hangs nor succeeds, and the
  script can report it.
- `FakeProviders`: one loopback HTTP server that answers the OpenAI Chat Completions API
  (POST /v1/chat/completions) and the Anthropic Messages API (POST /v1/messages) with fixed
  usage, following the fixture scenario (chat, tool call, final chat).
- `write_capture()`: encodes finished SDK spans as an OTLP ExportTraceServiceRequest and writes
  `<name>.pb` (protobuf) and `<name>.json` (OTLP/JSON: hex trace/span ids, integer enums,
  int64 as strings) next to this folder, in tests/data/.
"""
from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Network guard
# ---------------------------------------------------------------------------------------------

BLOCKED: list[str] = []
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    return host in _LOCAL_NAMES or (isinstance(host, str) and host.startswith("127."))


def guard_network() -> None:
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            BLOCKED.append(f"dns {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"capture: non-loopback lookup blocked: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def _check(addr):
        if isinstance(addr, tuple) and not _is_local(addr[0]):
            BLOCKED.append(f"connect {addr}")
            raise ConnectionRefusedError(f"capture: non-loopback connect blocked: {addr}")

    def connect(self, addr):
        _check(addr)
        return real_connect(self, addr)

    def connect_ex(self, addr):
        _check(addr)
        return real_connect_ex(self, addr)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


# ---------------------------------------------------------------------------------------------
# Fake providers
# ---------------------------------------------------------------------------------------------

# Usage per OpenAI call: prompt / completion / cached / reasoning.
OPENAI_USAGE = [(21, 9, 4, 3), (57, 17, 32, 5), (88, 24, 48, 7)]
OPENAI_RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_RESPONSE_MODEL = "claude-sonnet-4-5-20250929"
# Anthropic usage as the Messages API reports it: input_tokens is the uncached part only.
ANTHROPIC_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 800,
    "cache_creation_input_tokens": 200,
    "output_tokens": 50,
}


class FakeProviders:
    """Loopback HTTP server faking OpenAI Chat Completions and Anthropic Messages."""

    def __init__(self):
        self.requests: list[tuple[str, dict, dict]] = []  # (path, headers, body)
        self._openai_calls = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append((self.path, dict(self.headers), body))
                if self.path.rstrip("/").endswith("/chat/completions"):
                    payload = outer._openai(body)
                elif self.path.rstrip("/").endswith("/messages"):
                    payload = outer._anthropic(body)
                else:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if "/messages" in self.path:
                    self.send_header("request-id", "req_fake_anthropic_1")
                else:
                    self.send_header("x-request-id", f"req_fake_openai_{outer._openai_calls}")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- OpenAI ----------------------------------------------------------------------------
    def _openai(self, body: dict) -> dict:
        with self._lock:
            n = self._openai_calls
            self._openai_calls += 1
        prompt, completion, cached, reasoning = OPENAI_USAGE[min(n, len(OPENAI_USAGE) - 1)]
        messages = body.get("messages") or []
        if any(m.get("role") == "tool" for m in messages):
            message = {"role": "assistant", "content": "It is sunny and 22 C in Paris.",
                       "refusal": None}
            finish = "stop"
        elif body.get("tools"):
            message = {
                "role": "assistant", "content": None, "refusal": None,
                "tool_calls": [{
                    "id": "call_fixture_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
                }],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": "Hello! How can I help you today?",
                       "refusal": None}
            finish = "stop"
        return {
            "id": f"chatcmpl-fixture-{n + 1}",
            "object": "chat.completion",
            "created": 1767225600 + n,
            "model": OPENAI_RESPONSE_MODEL,
            "system_fingerprint": "fp_fixture",
            "service_tier": "default",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0},
            },
        }

    # -- Anthropic -------------------------------------------------------------------------
    def _anthropic(self, body: dict) -> dict:
        return {
            "id": "msg_fixture_1",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_RESPONSE_MODEL,
            "content": [{"type": "text", "text": "It is sunny and 22 C in Paris."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": dict(ANTHROPIC_USAGE, service_tier="standard"),
        }


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids(node):
    if isinstance(node, dict):
        return {k: (base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hex_ids(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def to_otlp_json(request) -> str:
    from google.protobuf.json_format import MessageToJson

    raw = json.loads(MessageToJson(request, use_integers_for_enums=True))
    return json.dumps(_hex_ids(raw), indent=2) + "\n"


def write_capture(name: str, spans) -> Path:
    """Write tests/data/<name>.pb and <name>.json from finished SDK spans; return the .pb path."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = encode_spans(list(spans))
    pb = DATA_DIR / f"{name}.pb"
    pb.write_bytes(request.SerializeToString())
    (DATA_DIR / f"{name}.json").write_text(to_otlp_json(request))
    return pb


def summarize(spans) -> str:
    """A short human-readable dump of spans (name, kind, scope, attributes) for the console."""
    out = []
    for s in sorted(spans, key=lambda s: s.start_time):
        parent = format(s.parent.span_id, "016x") if s.parent else "-"
        out.append(f"* {s.name}  kind={s.kind.name}  scope={s.instrumentation_scope.name}  "
                   f"span={format(s.context.span_id, '016x')} parent={parent}")
        for k, v in sorted((s.attributes or {}).items()):
            text = repr(v)
            out.append(f"    {k} = {text if len(text) <= 160 else text[:157] + '...'}")
        for e in s.events:
            out.append(f"    event {e.name}: {sorted((e.attributes or {}).keys())}")
    return "\n".join(out)
