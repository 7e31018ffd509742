"""The mapper: OTLP spans -> Alephant steps. Pure functions, no I/O; embeddable anywhere.

`map_request(request, metadata)` maps a whole ExportTraceServiceRequest; spans it cannot key are
returned as rejected (with their raw bytes) and spans it fails to map are kept raw and counted.
`map_protobuf(data, metadata)` does the same from the serialized request, read in C when it can.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

from ..errors import DecodeError
from .. import wire
from ..otlp import attributes
from . import context
from .span import InvalidSpan, Outer, map_fields, raw_fields, read_events, read_links, span_ids, unmapped_row


@dataclass
class Attribution:
    """What the export call itself imposes on every span of the request (not inherited):
    `forced` values beat anything a span claims (a virtual key's workspace, department and
    key id: a span cannot write into another tenant); `defaults` apply only where nothing
    else gives a value (the key's agent; the `default` workspace without keys)."""

    forced: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)


@dataclass
class Rejected:
    reason: str
    trace_id: str | None
    span_id: str | None
    span_bytes: bytes


@dataclass
class MappedBatch:
    steps: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    unmapped: int = 0
    # rows resolved before the writer (store.rows.ReadyRows, see store/rows.py prepare), which
    # `steps` no longer holds; None when there are none
    ready: Any = None

    @property
    def size(self) -> int:
        """Steps to write: in `steps` and in `ready`."""
        return len(self.steps) + (len(self.ready) if self.ready is not None else 0)

    @property
    def rejected_count(self) -> int:
        """Spans reported to the client as rejected (OTLP partial success)."""
        return len(self.rejected) + self.unmapped

    def error_message(self) -> str:
        reasons = [r.reason for r in self.rejected[:3]]
        reasons += [s["mapping_error"] for s in self.steps if s.get("mapping_error")][:3]
        msg = f"{self.rejected_count} span(s) rejected"
        if self.unmapped:
            msg += f" ({self.unmapped} stored raw but not mapped)"
        return msg + (": " + "; ".join(reasons) if reasons else "")

    # Batches cross process boundaries (receiver/workers.py). Pickled as dicts, a thousand
    # steps take ~25 ms to load in the receiver: each row repeats its keys. Here each key
    # shape is sent once with its rows as tuples of values (pickle builds those tuples as it
    # loads, faster than rebuilding them from columns), and each dict is a copy of the shape's
    # template updated in place (no resizing as it fills).
    def __getstate__(self):
        shapes: dict[tuple, tuple[list[int], list[tuple]]] = {}  # keys -> (positions, rows)
        for i, s in enumerate(self.steps):
            positions, rows = shapes.setdefault(tuple(s), ([], []))
            positions.append(i)
            rows.append(tuple(s.values()))
        return {"shapes": [(keys, rows, positions) for keys, (positions, rows) in shapes.items()],
                "rejected": self.rejected, "unmapped": self.unmapped, "ready": self.ready}

    def __setstate__(self, state):
        steps: list = [None] * sum(len(pos) for _, _, pos in state["shapes"])
        for keys, rows, positions in state["shapes"]:
            template = dict.fromkeys(keys)
            for i, values in zip(positions, rows):
                step = template.copy()
                step.update(zip(keys, values))
                steps[i] = step
        self.steps = steps
        self.rejected = state["rejected"]
        self.unmapped = state["unmapped"]
        self.ready = state["ready"]


def _same(message):
    return message


def map_request(request, metadata: Iterable[tuple[str, Any]] | None = None, rules=None,
                attribution: Attribution | None = None, store_content: bool = True) -> MappedBatch:
    """Map every span of an ExportTraceServiceRequest: the official message, or one read by
    `wire.parse` (faster). Raises DecodeError for a value the official parse would refuse.

    `metadata` is the export call's headers as (name, value) pairs; they apply to every span of
    the request (the zero-code way to tag an agent). `rules` is an optional RuleSet
    (mapping/rules.py) applied before the built-in conventions. `attribution` is what the call
    imposes (a virtual key's tenant). Without `store_content`, message content attributes are
    replaced by their size.
    """
    batch = MappedBatch()
    request_ctx = context.request_context(metadata)
    as_read = wire.is_wire(request)
    checked = wire.official if as_read else _same
    checked_span = wire.official_span if as_read else _same
    for rs in request.resource_spans:
        outer = Outer(attributes(checked(rs.resource).attributes), request_ctx, attribution, store_content)
        for ss in rs.scope_spans:
            scope = checked(ss.scope)
            if as_read and scope.attributes:  # not mapped, but refused as the official parse refuses them
                attributes(scope.attributes)
            for span in ss.spans:
                _map_message(batch, checked_span(span), scope, outer, rules)
    return batch


def _map_message(batch: MappedBatch, span, scope, outer: Outer, rules) -> None:
    """Map one span message into `batch`: its steps, or rejected (unusable ids), or kept raw
    and counted (the mapper failed on it)."""
    try:
        ids = span_ids(span)
    except InvalidSpan as exc:
        # kept as bytes, but its values are read first: one the official parse refuses (text
        # that is not UTF-8) refuses the request, as it does there (wire.py reads values lazily)
        attributes(span.attributes)
        read_events(span)
        read_links(span)
        batch.rejected.append(Rejected(
            str(exc), span.trace_id.hex() or None, span.span_id.hex() or None, span.SerializeToString()))
        return
    try:
        batch.steps.extend(map_fields(raw_fields(span, ids, scope), attributes(span.attributes), span.kind,
                                      read_events(span), read_links(span), outer, rules))
    except DecodeError:  # a value the official parse refuses (wire.py): refuse it all
        raise
    except Exception as exc:  # a mapper bug must not lose the span
        batch.unmapped += 1
        batch.steps.append(unmapped_row(span, ids, scope, outer, f"{type(exc).__name__}: {exc}"))


def map_protobuf(data: bytes, metadata: Iterable[tuple[str, Any]] | None = None, rules=None,
                 attribution: Attribution | None = None, store_content: bool = True) -> MappedBatch:
    """`map_request` of a serialized ExportTraceServiceRequest. The common span (scalar
    attributes, events, no links) is read in C (wire.decode_native); any other span is
    parsed alone, and a request whose resources or scopes are unusual is parsed whole
    (wire.parse). The steps are the same either way (tests/test_wire_native.py)."""
    decoded = wire.decode_native(data)
    batch = _map_native(decoded, data, metadata, rules, attribution, store_content) if decoded is not None else None
    if batch is None:  # parsed whole: refused here, as wire.parse refuses it, when it is malformed
        batch = map_request(wire.parse(data), metadata, rules, attribution, store_content)
    return batch


def _span_message(data: bytes, offset: int, length: int):
    """The span at data[offset:offset + length] as `map_request` reads it; None when it does
    not parse (then the request is parsed whole, to be refused as a whole)."""
    try:
        return wire.official_span(wire.parse_span(data[offset:offset + length]))
    except DecodeError:
        return None


def _map_native(decoded, data: bytes, metadata, rules, attribution, store_content: bool) -> MappedBatch | None:
    batch = MappedBatch()
    request_ctx = context.request_context(metadata)
    for resource_attrs, scopes in decoded:
        outer = Outer(resource_attrs, request_ctx, attribution, store_content)
        for scope_name, scope_version, spans in scopes:
            scope = InstrumentationScope(name=scope_name or "", version=scope_version or "")
            for row, attrs, kind, events, offset, length in spans:
                if row is None:  # left to the message classes (links, bad ids, unusual values, ...)
                    span = _span_message(data, offset, length)
                    if span is None:
                        return None
                    _map_message(batch, span, scope, outer, rules)
                    continue
                try:
                    batch.steps.extend(map_fields(row, attrs, kind, events, [], outer, rules))
                except DecodeError:  # (values read in C are decoded already: not expected here)
                    raise
                except Exception as exc:  # a mapper bug must not lose the span: kept raw, as above
                    span = _span_message(data, offset, length)
                    if span is None:
                        return None
                    batch.unmapped += 1
                    batch.steps.append(unmapped_row(span, span_ids(span), scope, outer,
                                                    f"{type(exc).__name__}: {exc}"))
    return batch


__all__ = ["map_request", "map_protobuf", "MappedBatch", "Rejected", "Attribution"]
