"""The table-driven reading every convention module shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from ...semconv import CONVENTIONS

_HEADS: dict[tuple, frozenset] = {}
MAX_SHAPES = 4096  # distinct attribute-key shapes remembered (a shape is ~20 short strings)
_FIELDS = ("kind", "operation", "provider", "request_model", "response_model", "tool_name")


@dataclass
class SpanInfo:
    """What a convention may look at: the span's attributes, its scope name, its resource."""

    attrs: dict[str, Any]
    scope_name: str | None
    resource: dict[str, Any]
    _heads: frozenset | None = None
    _shape: tuple | None = None

    @property
    def shape(self) -> tuple:
        """The attribute keys in order: what a convention's reading plan depends on."""
        if self._shape is None:
            self._shape = tuple(self.attrs)
        return self._shape

    @property
    def heads(self) -> frozenset:
        """The first dotted segment of every attribute key (`gen_ai`, `ai`, `traceloop`, ...):
        a convention whose key families are absent is skipped without scanning keys."""
        if self._heads is None:
            heads = _HEADS.get(self.shape)
            if heads is None:
                if len(_HEADS) >= MAX_SHAPES:
                    _HEADS.clear()
                heads = _HEADS[self.shape] = frozenset(k.partition(".")[0] for k in self.attrs)
            self._heads = heads
        return self._heads


@dataclass
class Extract:
    names: list[str]
    kind: str | None = None
    operation: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    tool_name: str | None = None
    context: dict = field(default_factory=dict)  # foreign context fields + "properties"
    usage: dict = field(default_factory=dict)  # concept -> (key, raw value)
    provided_cost: tuple[str, Any] | None = None
    input_excludes_cache: bool | None = None
    sources: dict = field(default_factory=dict)  # field -> attribute key it was read from

    def empty(self) -> bool:  # spelled out: called for every convention on every span
        return (self.kind is None and self.operation is None and self.provider is None
                and self.request_model is None and self.response_model is None and self.tool_name is None
                and not self.context and not self.usage and self.provided_cost is None
                and self.input_excludes_cache is None)


def merge(extracts: list[Extract]) -> Extract:
    """Combine extracts in priority order: the first one with a value wins, per concept."""
    out = Extract([n for e in extracts for n in e.names])
    for e in reversed(extracts):
        for f in _FIELDS:
            v = getattr(e, f)
            if v is not None:
                setattr(out, f, v)
        props = {**out.context.get("properties", {}), **e.context.get("properties", {})}
        out.context.update(e.context)
        if props:
            out.context["properties"] = props
        out.usage.update(e.usage)
        out.sources.update(e.sources)
        if e.provided_cost is not None:
            out.provided_cost = e.provided_cost
        if e.input_excludes_cache is not None:
            out.input_excludes_cache = e.input_excludes_cache
    return out


def _text(v: Any) -> str | None:
    if isinstance(v, (list, tuple)):
        v = next((x for x in v if x not in (None, "")), None)
    if v is None or v == "":
        return None
    return str(v)


def first(attrs: dict, keys, consumed: set[str], sources: dict | None = None, name: str = "") -> str | None:
    for key in keys:
        v = _text(attrs.get(key))
        if v is not None:
            consumed.add(key)
            if sources is not None:
                sources[name] = key
            return v
    return None


def applies(table: dict, info: SpanInfo) -> bool:
    """Whether a convention that names how to recognise it is present on the span."""
    keys, scopes, resource = _detector(table)
    if keys is None:
        return True
    if not keys.isdisjoint(info.attrs):
        return True
    if scopes and _scope_in(info.scope_name, scopes):
        return True
    for k, v in resource:
        raw = info.resource.get(k, info.attrs.get(k, ""))
        if str(raw).lower() == v:
            return True
    return False


@lru_cache(maxsize=1024)
def _scope_in(scope_name: str | None, prefixes: tuple) -> bool:
    return (scope_name or "").lower().startswith(prefixes)


_DETECTORS: dict[int, tuple] = {}


def _detector(table: dict) -> tuple:
    """(detect keys or None when the table names no detection, scope prefixes, resource pairs)."""
    d = _DETECTORS.get(id(table))
    if d is None:
        if not any(k in table for k in ("detect_keys", "detect_scopes", "detect_resource")):
            d = (None, (), ())
        else:
            d = (frozenset(table.get("detect_keys", ())), tuple(table.get("detect_scopes", ())),
                 tuple(table.get("detect_resource", {}).items()))
        _DETECTORS[id(table)] = d
    return d


def normalise_provider(value: str | None, aliases: dict[str, str]) -> str | None:
    if value is None:
        return None
    v = value.lower()
    return aliases.get(v, v)


def _triggers(t: dict) -> tuple[frozenset, tuple, frozenset]:
    """Every key a convention can read, and the prefixes of the key families it reads."""
    keys = set()
    for section in ("fields", "context", "usage"):
        for ks in t.get(section, {}).values():
            keys.update(ks)
    for k in ("kind_key", "request_type_key", "operation_key"):
        if k in t:
            keys.add(t[k])
    if "operations" in t and "operation_key" not in t:
        keys.add("gen_ai.operation.name")
    for k in ("provided_cost", "detect_keys", "tags", "tags_csv"):
        keys.update(t.get(k, ()))
    keys.update(m["key"] for m in t.get("metadata_json", ()))
    if "usage_json" in t:
        keys.add(t["usage_json"]["key"])
    prefixes = tuple(m["prefix"] for m in t.get("metadata", ()))
    return frozenset(keys), prefixes, frozenset(p.partition(".")[0] for p in prefixes)


TRIGGERS = {name: _triggers(t) for name, t in CONVENTIONS.items()}


@dataclass(frozen=True)
class _Plan:
    """What one convention's table reads on spans whose attribute keys are exactly a given
    sequence: only the keys present, in the order they are consulted. Everything here depends on
    the keys alone, so a plan is made once per key shape and reused for every such span (agents
    send the same shape again and again); values are still read and checked per span."""

    kind_key: str | None
    request_type_key: str | None
    op_key: str | None
    fields: tuple  # (field, (present keys...)), in table order
    context: tuple  # (field, (present keys...))
    metadata: tuple  # (key, sub, named field or None) in table order, then by key
    metadata_json: tuple  # (present key, spec)
    tags: tuple
    tags_csv: tuple
    usage: tuple  # (concept, first present key)
    usage_json: bool
    provided_cost: str | None


def _make_plan(name: str, shape: tuple, heads: frozenset) -> _Plan | None:
    keys, prefixes, trigger_heads = TRIGGERS[name]
    present = set(shape)
    if keys.isdisjoint(present) and (trigger_heads.isdisjoint(heads) or not any(k.startswith(prefixes) for k in shape)):
        return None  # nothing of this convention on such spans: the common case
    t = CONVENTIONS[name]

    def only(ks):
        return tuple(k for k in ks if k in present)

    metadata = []
    for m in t.get("metadata", ()):
        prefix, named, ignore = m["prefix"], m["fields"], tuple(m.get("ignore", ()))
        rank = {sub: i for i, sub in enumerate(named)}
        found = []
        for key in shape:
            if key.startswith(prefix) and len(key) > len(prefix):
                sub = key[len(prefix):]
                if not (ignore and sub.startswith(ignore)):
                    found.append((rank.get(sub, len(rank)), key, sub, named.get(sub)))
        # two aliases of one field (threadId, sessionId): the table's first wins, whatever
        # the order the attributes came in
        metadata += [(key, sub, field) for _, key, sub, field in sorted(found)]
    op_key = t.get("operation_key", "gen_ai.operation.name") if "operations" in t else None
    return _Plan(
        kind_key=t["kind_key"] if t.get("kind_key") in present else None,
        request_type_key=t["request_type_key"] if t.get("request_type_key") in present else None,
        op_key=op_key if op_key in present else None,
        fields=tuple((f, only(ks)) for f, ks in t.get("fields", {}).items() if only(ks)),
        context=tuple((f, only(ks)) for f, ks in t.get("context", {}).items() if only(ks)),
        metadata=tuple(metadata),
        metadata_json=tuple((m["key"], m) for m in t.get("metadata_json", ()) if m["key"] in present),
        tags=only(t.get("tags", ())),
        tags_csv=only(t.get("tags_csv", ())),
        usage=tuple((c, next(k for k in ks if k in present)) for c, ks in t.get("usage", {}).items() if only(ks)),
        usage_json="usage_json" in t and t["usage_json"]["key"] in present,
        provided_cost=next(iter(only(t.get("provided_cost", ()))), None),
    )


_PLANS: dict[tuple, dict[str, _Plan | None]] = {}
# operation name -> step kind, per convention (the first kind that lists it)
_OPERATION_KINDS = {name: {op: kind for kind, ops in reversed(t.get("operations", {}).items()) for op in ops}
                    for name, t in CONVENTIONS.items()}


def plan(name: str, info: SpanInfo) -> _Plan | None:
    plans = _PLANS.get(info.shape)
    if plans is None:
        if len(_PLANS) >= MAX_SHAPES:
            _PLANS.clear()  # pathological key churn: start over rather than grow without bound
        plans = _PLANS[info.shape] = {}
    if name not in plans:
        plans[name] = _make_plan(name, info.shape, info.heads)
    return plans[name]


def from_table(name: str, info: SpanInfo, consumed: set[str]) -> Extract:
    """Read everything a convention's table describes."""
    e = Extract([name])
    p = plan(name, info)
    if p is None:
        return e
    t = CONVENTIONS[name]
    attrs = info.attrs
    if p.kind_key is not None:
        v = _text(attrs[p.kind_key])
        if v is not None:
            consumed.add(p.kind_key)
            e.kind = t["kinds"].get(v) or t["kinds"].get(v.upper()) or t["kinds"].get(v.lower())
    if e.kind is None and p.request_type_key is not None:
        v = _text(attrs[p.request_type_key])
        if v is not None:
            e.kind = t["request_types"].get(v.lower())
    if p.op_key is not None:
        op = _text(attrs[p.op_key])
        if op is not None:
            consumed.add(p.op_key)
            e.operation = op
            kind = _OPERATION_KINDS[name].get(op)
            if kind is not None:
                e.kind = kind
    for f, keys in p.fields:
        v = first(attrs, keys, consumed, e.sources, f)
        if v is not None:
            setattr(e, f, v)
    if e.provider is not None:
        e.provider = normalise_provider(e.provider, t.get("provider_aliases", CONVENTIONS["gen_ai"]["provider_aliases"]))
    for f, keys in p.context:
        v = first(attrs, keys, consumed)
        if v is not None:
            e.context[f] = v
    props: dict[str, str] = {}
    for key, sub, named in p.metadata:
        v = _text(attrs[key])
        if v is None:
            continue
        consumed.add(key)
        if named is not None:
            e.context.setdefault(named, v)
        else:
            props[sub] = v
    for key, m in p.metadata_json:
        raw = attrs[key]
        if not (isinstance(raw, str) and raw.startswith("{")):
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # not JSON after all: it stays in the raw attributes
        if isinstance(obj, dict):
            consumed.add(key)
            for k, v in obj.items():
                if v is None:
                    continue
                v = v if isinstance(v, str) else orjson.dumps(v).decode()
                if k in m["fields"]:
                    e.context.setdefault(m["fields"][k], v)
                else:
                    props[str(k)] = v
    for key in p.tags:
        raw = attrs[key]
        if isinstance(raw, (list, tuple)) and raw:
            consumed.add(key)
            props["tags"] = ",".join(str(x) for x in raw)
    for key in p.tags_csv:
        raw = _text(attrs[key])
        if raw:
            consumed.add(key)
            props["tags"] = raw
    if props:
        e.context["properties"] = props
    for concept, key in p.usage:
        e.usage[concept] = (key, attrs[key])
    if p.usage_json:
        _usage_from_json(attrs, t["usage_json"], e)
    if p.provided_cost is not None:
        e.provided_cost = (p.provided_cost, attrs[p.provided_cost])
    return e


def _usage_from_json(attrs: dict, spec: dict, e: Extract) -> None:
    """Usage concepts from a JSON object attribute, by dotted paths; concepts already read from
    plain keys are kept."""
    raw = attrs.get(spec["key"])
    if not isinstance(raw, str) or not raw.startswith("{"):
        return
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    for concept, paths in spec["usage"].items():
        if concept in e.usage:
            continue
        for path in paths:
            v: Any = obj
            for part in path.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            if v is not None:
                e.usage[concept] = (f"{spec['key']}.{path}", v)
                break
