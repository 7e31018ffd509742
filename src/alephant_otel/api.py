"""The library API: everything the receiver does, without a server.

    from alephant_otel.api import map_request, map_span, price_steps, resolve_steps, Store

    batch = map_request(request)                    # an ExportTraceServiceRequest -> MappedBatch
    batch = map_protobuf(data)                      # the same from its serialized bytes (faster)
    steps = price_steps(resolve_steps(batch.steps)) # inheritance within the batch, then cost
    with Store("agent.duckdb") as store:            # the store resolves inheritance across batches
        store.write(batch.steps)
        store.query("SELECT * FROM runs")           # -> a pyarrow Table

Steps are plain dicts whose keys are the store's columns (see README, "Views"), plus `tiers`
(the span's own context by precedence tier).
"""
from __future__ import annotations

from .inherit import resolve_steps
from .mapping import Attribution, MappedBatch, map_protobuf, map_request
from .mapping.rules import RuleSet
from .otlp import ExportTraceServiceRequest, decode_json, decode_request
from .price_list import PriceList
from .pricing import price_step, price_steps
from .store import Store


def map_span(span, resource_attributes: dict | None = None, scope=None, metadata=None, rules=None,
             store_content: bool = True) -> list[dict]:
    """Map one OTLP `Span` protobuf (with its resource's attributes and scope) to its steps:
    the span's own step, then one per span event that records a payment or policy decision."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    def kv(k, v):
        return KeyValue(key=k, value=AnyValue(string_value=str(v)) if not isinstance(v, (bool, int, float))
                        else AnyValue(bool_value=v) if isinstance(v, bool)
                        else AnyValue(int_value=v) if isinstance(v, int) else AnyValue(double_value=v))
    rs = ResourceSpans(resource=Resource(attributes=[kv(k, v) for k, v in (resource_attributes or {}).items()]),
                       scope_spans=[ScopeSpans(scope=scope or InstrumentationScope(), spans=[span])])
    batch = map_request(ExportTraceServiceRequest(resource_spans=[rs]), metadata, rules, store_content=store_content)
    if batch.rejected:
        raise ValueError(batch.rejected[0].reason)
    return batch.steps


__all__ = ["map_request", "map_protobuf", "map_span", "price_step", "price_steps", "resolve_steps", "Store", "RuleSet",
           "PriceList", "Attribution", "MappedBatch", "ExportTraceServiceRequest", "decode_request", "decode_json"]
