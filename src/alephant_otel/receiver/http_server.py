"""OTLP/HTTP receiver: `POST /v1/traces` (aiohttp), sharing the pipeline with gRPC.

A straight line: content type -> read body (size limit) -> gunzip (size limit) -> auth ->
decode -> export -> encode the response in the request's content type. Errors are
`google.rpc.Status` bodies (protobuf or JSON). Retryable refusals (503) carry Retry-After.
The blocking export runs in a thread pool so the event loop keeps accepting.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import grpc
import orjson
from aiohttp import web
from google.protobuf import json_format
from google.rpc import status_pb2

from ..errors import DecodeError
from ..otlp import ExportTraceServiceResponse
from .auth import Authenticator
from .errors import Refusal, TooLarge, classify
from .pipeline import Overloaded, Pipeline, StoreUnavailable

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes: a gzip bomb is refused, never expanded."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"body is not valid gzip: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise TooLarge(f"decompressed body is over the {limit}-byte limit")
    if not d.eof:
        raise DecodeError("gzip body is truncated (no end of stream)")
    return out


def _error(refusal: Refusal, content_type: str) -> web.Response:
    status = status_pb2.Status(code=refusal.grpc_code.value[0], message=refusal.message)
    headers = {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(refusal.retry_after)))
    if content_type == JSON:
        body = orjson.dumps({"code": status.code, "message": status.message})
    else:
        body, content_type = status.SerializeToString(), PROTOBUF
    return web.Response(status=refusal.http_status, body=body, content_type=content_type, headers=headers)


async def _cancel_pending() -> None:
    """Cancel what is left on the loop (connections of clients that never finished)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class HttpReceiver:
    def __init__(self, pipeline: Pipeline, host: str = "127.0.0.1", port: int = 4318,
                 auth: Authenticator | None = None, max_request_bytes: int = MAX_REQUEST_BYTES,
                 workers: int = 8):
        self.pipeline = pipeline
        self.auth = auth or Authenticator()
        self.host = host
        self.port = port
        self.max_request_bytes = max_request_bytes
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="otlp-http")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="otlp-http-loop", daemon=True)
        self._runner: web.AppRunner | None = None
        self.extra_routes = []  # (method, path, handler) added by other parts (the web UI)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> "HttpReceiver":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        return self

    async def _start(self) -> None:
        # the body limit is ours (413 as a google.rpc.Status); aiohttp must not gunzip for us
        app = web.Application(client_max_size=self.max_request_bytes, handler_args={"auto_decompress": False})
        app.router.add_post("/v1/traces", self._traces)
        for method, path, handler in self.extra_routes:
            app.router.add_route(method, path, handler)
        # on stop, requests still uploading get a few seconds, not aiohttp's default minute
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=3.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop accepting; requests still uploading are cut after a few seconds (their clients
        were never acknowledged, so they retry); exports being written finish."""
        if self._runner is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=15)
            except Exception:  # a client that never finishes its body must not hold shutdown up
                log.warning("HTTP receiver: stopped with requests still open")
            try:
                asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(timeout=5)
            except Exception:
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    async def _traces(self, request: web.Request) -> web.Response:
        ctype = request.content_type
        if ctype not in (PROTOBUF, JSON):
            return _error(Refusal(grpc.StatusCode.INVALID_ARGUMENT, 415,
                                  f"unsupported content type {ctype!r}: use {PROTOBUF} or {JSON}"), PROTOBUF)
        try:
            if (request.content_length or 0) > self.max_request_bytes:
                raise TooLarge(f"body of {request.content_length} bytes is over the {self.max_request_bytes}-byte limit")
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise TooLarge(f"body is over the {self.max_request_bytes}-byte limit") from None
            except (ConnectionError, asyncio.IncompleteReadError, aiohttp.ClientPayloadError) as exc:
                # the client went away mid-body: nothing to store, no one to answer, not our error
                log.info("HTTP client disconnected before sending its whole body: %s", exc)
                return web.Response(status=400)
            if request.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gunzip(body, self.max_request_bytes)
            metadata = list(request.headers.items())
            attribution = self.auth.attribution(metadata)
            codec = "json" if ctype == JSON else "protobuf"
            result = await asyncio.get_running_loop().run_in_executor(
                self._pool, lambda: self.pipeline.export(body, metadata, codec, attribution))
        except Exception as exc:
            refusal = classify(exc)
            if refusal.http_status == 503 and not isinstance(exc, (Overloaded, StoreUnavailable)):
                log.exception("export failed")
            return _error(refusal, ctype)
        resp = ExportTraceServiceResponse()
        if result.rejected:
            resp.partial_success.rejected_spans = result.rejected
            resp.partial_success.error_message = result.error_message
        if ctype == JSON:
            body = json_format.MessageToJson(resp, indent=None).encode() if result.rejected else b"{}"
            return web.Response(body=body, content_type=JSON)
        return web.Response(body=resp.SerializeToString(), content_type=PROTOBUF)
