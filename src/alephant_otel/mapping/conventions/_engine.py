"""The table-driven reading every convention module shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ...semconv import CONVENTIONS

_FIELDS = ("kind", "operation", "provider", "request_model", "response_model", "tool_name")


@dataclass
class SpanInfo:
    """What a convention may look at: the span's attributes, its scope name, its resource."""

    attrs: dict[str, Any]
    scope_name: str | None
    resource: dict[str, Any]
    _heads: frozenset | None = None

    @property
    def heads(self) -> frozenset:
        """The first dotted segment of every attribute key (`gen_ai`, `ai`, `traceloop`, ...):
        a convention whose key families are absent is skipped without scanning keys."""
        if self._heads is None:
            self._heads = frozenset(k.partition(".")[0] for k in self.attrs)
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

    def empty(self) -> bool:
        return not (any(getattr(self, f) is not None for f in _FIELDS) or self.context or self.usage
                    or self.provided_cost is not None or self.input_excludes_cache is not None)


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
    if not any(k in table for k in ("detect_keys", "detect_scopes", "detect_resource")):
        return True
    if not info.attrs.keys().isdisjoint(table.get("detect_keys", ())):
        return True
    scope = (info.scope_name or "").lower()
    if any(scope.startswith(s) for s in table.get("detect_scopes", ())):
        return True
    return any(str(info.resource.get(k, info.attrs.get(k, ""))).lower() == v
               for k, v in table.get("detect_resource", {}).items())


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


_TRIGGERS = {name: _triggers(t) for name, t in CONVENTIONS.items()}


def from_table(name: str, info: SpanInfo, consumed: set[str]) -> Extract:
    """Read everything a convention's table describes."""
    e = Extract([name])
    attrs = info.attrs
    keys, prefixes, heads = _TRIGGERS[name]
    if keys.isdisjoint(attrs) and (heads.isdisjoint(info.heads) or not any(k.startswith(prefixes) for k in attrs)):
        return e  # nothing of this convention on the span: the common case, kept cheap
    t = CONVENTIONS[name]
    if "kind_key" in t:
        v = _text(attrs.get(t["kind_key"]))
        if v is not None:
            consumed.add(t["kind_key"])
            e.kind = t["kinds"].get(v) or t["kinds"].get(v.upper()) or t["kinds"].get(v.lower())
    if e.kind is None and "request_type_key" in t:
        v = _text(attrs.get(t["request_type_key"]))
        if v is not None:
            e.kind = t["request_types"].get(v.lower())
    if "operations" in t:
        op_key = t.get("operation_key", "gen_ai.operation.name")
        op = _text(attrs.get(op_key))
        if op is not None:
            consumed.add(op_key)
            e.operation = op
            for kind, ops in t["operations"].items():
                if op in ops:
                    e.kind = kind
                    break
    for f, keys in t.get("fields", {}).items():
        v = first(attrs, keys, consumed, e.sources, f)
        if v is not None:
            setattr(e, f, v)
    if e.provider is not None:
        e.provider = normalise_provider(e.provider, t.get("provider_aliases", CONVENTIONS["gen_ai"]["provider_aliases"]))
    for f, keys in t.get("context", {}).items():
        v = first(attrs, keys, consumed)
        if v is not None:
            e.context[f] = v
    props: dict[str, str] = {}
    for m in t.get("metadata", ()):
        prefix, named, ignore = m["prefix"], m["fields"], tuple(m.get("ignore", ()))
        for key, value in attrs.items():
            if key.startswith(prefix) and len(key) > len(prefix):
                v = _text(value)
                sub = key[len(prefix):]
                if v is None or (ignore and sub.startswith(ignore)):
                    continue
                consumed.add(key)
                if sub in named:
                    e.context.setdefault(named[sub], v)
                else:
                    props[sub] = v
    for m in t.get("metadata_json", ()):
        raw = attrs.get(m["key"])
        if not (isinstance(raw, str) and raw.startswith("{")):
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # not JSON after all: it stays in the raw attributes
        if isinstance(obj, dict):
            consumed.add(m["key"])
            for k, v in obj.items():
                if v is None:
                    continue
                v = v if isinstance(v, str) else orjson.dumps(v).decode()
                if k in m["fields"]:
                    e.context.setdefault(m["fields"][k], v)
                else:
                    props[str(k)] = v
    for key in t.get("tags", ()):
        raw = attrs.get(key)
        if isinstance(raw, (list, tuple)) and raw:
            consumed.add(key)
            props["tags"] = ",".join(str(x) for x in raw)
    for key in t.get("tags_csv", ()):
        raw = _text(attrs.get(key))
        if raw:
            consumed.add(key)
            props["tags"] = raw
    if props:
        e.context["properties"] = props
    for concept, keys in t.get("usage", {}).items():
        for key in keys:
            if key in attrs:
                e.usage[concept] = (key, attrs[key])
                break
    if "usage_json" in t:
        _usage_from_json(attrs, t["usage_json"], e)
    for key in t.get("provided_cost", ()):
        if key in attrs:
            e.provided_cost = (key, attrs[key])
            break
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
