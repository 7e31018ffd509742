"""Declarative mapping rules for spans no convention covers (`serve --mapping rules.yaml`).

A rules file is YAML:

    rules:
      - name: stripe charges                    # optional, used in messages
        match:                                  # every condition given must hold
          name: "^stripe\\\\."                    # regex searched in the span name
          scope: "^payments"                    # regex searched in the instrumentation scope name
          kind: client                          # internal, server, client, producer or consumer
          attributes:
            payment.provider: stripe            # equal to (compared as text)
            charge.amount_cents: {exists: true} # present (or {exists: false}: absent)
            http.route: {regex: "^/v1/charges"} # regex searched in the value
        set:                                    # what the step gets
          step_kind: payment
          tool_name: {const: stripe}
          session_id: app.session               # shorthand for {from: app.session}
          run_id: {from: app.job_ids, index: 0} # an element of an array value
          provided_cost: {from: charge.amount_cents, scale: 0.01}
          prompt_id: {from: app.prompt, regex: "^(\\\\w+)@"}  # first capture group (or whole match)
          operation: {from: span.name, regex: "^stripe\\\\.(.+)"}  # `span.name` is the span's name
          property.plan: {from: customer.plan}

The first rule that matches a span applies; rules run before the built-in conventions and what
they set wins over them (context values rank with the span's own `alephant.*` attributes).
Rules are validated when loaded: a bad rule raises RulesError naming the file, the rule's index
and the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AlephantError
from ..yaml_files import parse_yaml, read_yaml
from ..otlp import SPAN_KINDS
from ..semconv import CONTEXT_ATTRIBUTES, STEP_KINDS
from .conventions import Extract, SpanInfo

CONTEXT_TARGETS = set(CONTEXT_ATTRIBUTES.values())
FIELD_TARGETS = {"operation", "provider", "request_model", "response_model", "tool_name"}
USAGE_TARGETS = {"input_tokens": "input_uncached", "cache_read_tokens": "cache_read",
                 "cache_write_tokens": "cache_write", "output_tokens": "output_without_reasoning",
                 "reasoning_tokens": "reasoning"}
COST_TARGETS = {"provided_cost", "provided_cost_currency"}
TARGETS = {"step_kind"} | CONTEXT_TARGETS | FIELD_TARGETS | set(USAGE_TARGETS) | COST_TARGETS
_TRANSFORM_KEYS = {"from", "const", "index", "scale", "regex"}
SPAN_NAME = "span.name"
_MATCH_KEYS = {"name", "scope", "kind", "attributes"}


class RulesError(AlephantError):
    """A rules file that cannot be used; the message names the file, rule and reason."""


@dataclass
class Value:
    source: str | None
    const: Any
    index: int | None
    scale: float | None
    regex: re.Pattern | None

    def get(self, attrs: dict, span_name: str) -> tuple[Any, str | None]:
        """(value, attribute key used) or (None, None) when the rule has nothing to give.
        The source `span.name` reads the span's name (unless an attribute has that key)."""
        if self.source is None:
            return self.const, None
        v = attrs.get(self.source)
        if v is None and self.source == SPAN_NAME:
            v = span_name
        if v is None:
            return None, None
        if self.index is not None:
            if not isinstance(v, (list, tuple)) or not -len(v) <= self.index < len(v):
                return None, None
            v = v[self.index]
        elif isinstance(v, (list, tuple)):
            v = v[0] if v else None
        if self.regex is not None:
            m = self.regex.search(str(v))
            if m is None:
                return None, None
            v = m.group(1) if m.groups() else m.group(0)
        if self.scale is not None:
            try:
                v = float(v) * self.scale
            except (TypeError, ValueError):
                return None, None
        return v, self.source


@dataclass
class Rule:
    index: int
    name: str
    name_re: re.Pattern | None
    scope_re: re.Pattern | None
    kind: int | None
    attrs: list[tuple[str, str, Any]]  # (key, op, operand)
    sets: dict[str, Value]

    def matches(self, span_name: str, scope: str | None, kind: int, attrs: dict) -> bool:
        if self.kind is not None and kind != self.kind:
            return False
        if self.name_re is not None and not self.name_re.search(span_name):
            return False
        if self.scope_re is not None and not self.scope_re.search(scope or ""):
            return False
        for key, op, operand in self.attrs:
            v = attrs.get(key)
            if op == "exists":
                if (v is not None) != operand:
                    return False
            elif v is None:
                return False
            elif op == "eq":
                if str(v) != operand and not (isinstance(v, list) and operand in map(str, v)):
                    return False
            elif not operand.search(str(v)):
                return False
        return True


class RuleSet:
    def __init__(self, rules: list[Rule], source: str = "<rules>"):
        self.rules = rules
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> "RuleSet":
        return cls._build(*read_yaml(path, RulesError))

    @classmethod
    def parse(cls, text: str, source: str = "<rules>") -> "RuleSet":
        return cls._build(parse_yaml(text, source, RulesError), source)

    @classmethod
    def _build(cls, doc, source: str) -> "RuleSet":
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            raise RulesError(f"{source}: expected a mapping with a `rules:` list")
        extra = set(doc) - {"rules"}
        if extra:
            raise RulesError(f"{source}: unknown top-level key(s): {', '.join(sorted(extra))}")
        return cls([_compile(source, i, r) for i, r in enumerate(doc["rules"])], source)

    def apply(self, info: SpanInfo, span_name: str, span_kind: int, consumed: set[str]) -> tuple[Extract | None, dict]:
        """(what the first matching rule says as an Extract, its context values) or (None, {})."""
        for rule in self.rules:
            if rule.matches(span_name, info.scope_name, span_kind, info.attrs):
                return _apply(rule, info.attrs, span_name, consumed)
        return None, {}


def _apply(rule: Rule, attrs: dict, span_name: str, consumed: set[str]) -> tuple[Extract, dict]:
    e = Extract(["rules"])
    ctx: dict = {}
    for target, value in rule.sets.items():
        v, key = value.get(attrs, span_name)
        if key == SPAN_NAME and SPAN_NAME not in attrs:
            key = None
        if v is None:
            continue
        if target in USAGE_TARGETS or target == "provided_cost":
            if target == "provided_cost":
                e.provided_cost = (key or f"rules[{rule.index}].provided_cost", v)
            else:
                e.usage[USAGE_TARGETS[target]] = (key or f"rules[{rule.index}].{target}", v)
            continue  # token and cost keys are consumed once validated
        if key is not None:
            consumed.add(key)
        if target == "step_kind":
            e.kind = str(v)
        elif target in FIELD_TARGETS:
            setattr(e, target, str(v))
        elif target == "provided_cost_currency":
            ctx["_cost_currency"] = str(v)
        elif target.startswith("property."):
            ctx.setdefault("properties", {})[target[len("property."):]] = str(v)
        else:
            ctx[target] = str(v)
    return e, ctx


def _compile(source: str, index: int, raw: Any) -> Rule:
    label = f"{source}: rules[{index}]"
    if not isinstance(raw, dict):
        raise RulesError(f"{label}: a rule must be a mapping with `match` and `set`")
    name = str(raw.get("name", f"rule {index}"))
    label += f" ({name})"

    def fail(reason: str):
        raise RulesError(f"{label}: {reason}")

    extra = set(raw) - {"name", "match", "set"}
    if extra:
        fail(f"unknown key(s): {', '.join(sorted(extra))}")
    match = raw.get("match")
    sets = raw.get("set")
    if not isinstance(match, dict) or not match:
        fail("`match` must be a non-empty mapping (name, scope, kind, attributes)")
    if not isinstance(sets, dict) or not sets:
        fail("`set` must be a non-empty mapping of targets")
    extra = set(match) - _MATCH_KEYS
    if extra:
        fail(f"unknown match key(s): {', '.join(sorted(extra))}; use {', '.join(sorted(_MATCH_KEYS))}")

    def regex(what: str, pattern: Any) -> re.Pattern:
        if not isinstance(pattern, str):
            fail(f"{what} must be a regex string")
        try:
            return re.compile(pattern)
        except re.error as exc:
            fail(f"{what}: bad regex {pattern!r}: {exc}")

    kind = None
    if "kind" in match:
        k = str(match["kind"]).upper()
        if k not in SPAN_KINDS[1:]:
            fail(f"match.kind {match['kind']!r} is not one of internal, server, client, producer, consumer")
        kind = SPAN_KINDS.index(k)
    conds = []
    for key, cond in (match.get("attributes") or {}).items():
        if isinstance(cond, dict):
            if set(cond) == {"exists"} and isinstance(cond["exists"], bool):
                conds.append((key, "exists", cond["exists"]))
            elif set(cond) == {"regex"}:
                conds.append((key, "regex", regex(f"match.attributes[{key!r}].regex", cond["regex"])))
            else:
                fail(f"match.attributes[{key!r}] must be a value, {{exists: true|false}} or {{regex: ...}}")
        elif isinstance(cond, (str, int, float, bool)):
            conds.append((key, "eq", str(cond).lower() if isinstance(cond, bool) else str(cond)))
        else:
            fail(f"match.attributes[{key!r}] must be a value, {{exists: ...}} or {{regex: ...}}")
    values = {}
    for target, spec in sets.items():
        if target not in TARGETS and not (target.startswith("property.") and len(target) > 9):
            fail(f"unknown target {target!r}; targets are {', '.join(sorted(TARGETS))} and property.<name>")
        values[target] = _value(spec, target, fail, regex)
        if target == "step_kind" and values[target].source is None and values[target].const not in STEP_KINDS:
            fail(f"step_kind {values[target].const!r} is not one of {', '.join(STEP_KINDS)}")
    return Rule(index, name, regex("match.name", match["name"]) if "name" in match else None,
                regex("match.scope", match["scope"]) if "scope" in match else None, kind, conds, values)


def _value(spec: Any, target: str, fail, regex) -> Value:
    if isinstance(spec, str) and target != "step_kind":
        return Value(spec, None, None, None, None)
    if not isinstance(spec, dict):
        return Value(None, spec, None, None, None)
    extra = set(spec) - _TRANSFORM_KEYS
    if extra:
        fail(f"{target}: unknown transform key(s) {', '.join(sorted(extra))}; use {', '.join(sorted(_TRANSFORM_KEYS))}")
    if ("from" in spec) == ("const" in spec):
        fail(f"{target}: give exactly one of `from` (an attribute key) or `const`")
    index, scale = spec.get("index"), spec.get("scale")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
        fail(f"{target}: index must be an integer")
    if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool)):
        fail(f"{target}: scale must be a number")
    if "const" in spec:
        if index is not None or scale is not None or "regex" in spec:
            fail(f"{target}: transforms apply to `from`, not to `const`")
        return Value(None, spec["const"], None, None, None)
    return Value(str(spec["from"]), None, index, float(scale) if scale is not None else None,
                 regex(f"{target}.regex", spec["regex"]) if "regex" in spec else None)
