"""Error classification for the transports, in one place: what the client is told, and
whether it may retry (OTLP: gRPC status codes and HTTP status codes)."""
from __future__ import annotations

from dataclasses import dataclass

import grpc

from ..errors import DecodeError
from .auth import Unauthenticated
from .pipeline import Overloaded, StoreUnavailable


class TooLarge(Exception):
    """The request body is over the configured limit."""


@dataclass
class Refusal:
    grpc_code: grpc.StatusCode
    http_status: int
    message: str
    retry_after: float | None = None  # seconds; set for retryable refusals


def classify(exc: BaseException) -> Refusal:
    if isinstance(exc, DecodeError):
        return Refusal(grpc.StatusCode.INVALID_ARGUMENT, 400, str(exc))
    if isinstance(exc, Unauthenticated):
        return Refusal(grpc.StatusCode.UNAUTHENTICATED, 401, str(exc))
    if isinstance(exc, TooLarge):
        return Refusal(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, str(exc))
    if isinstance(exc, Overloaded):
        return Refusal(grpc.StatusCode.UNAVAILABLE, 503, f"overloaded: {exc}; retry later", exc.retry_after)
    if isinstance(exc, StoreUnavailable):
        return Refusal(grpc.StatusCode.UNAVAILABLE, 503, str(exc), 1.0)
    if isinstance(exc, TimeoutError):
        return Refusal(grpc.StatusCode.UNAVAILABLE, 503, "the write did not finish in time; retry", 1.0)
    return Refusal(grpc.StatusCode.UNAVAILABLE, 503, "internal error while storing; retry", 1.0)
