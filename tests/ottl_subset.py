"""A small evaluator for exactly the OTTL subset that tools/collector_config.py emits.

No collector binary can run in this test environment, so the generated `transform/alephant`
processor is checked two ways here: its statements must parse under this (deliberately narrow)
grammar, and they are run on real spans so their result can be compared with the Python mapper.
This is NOT a general OTTL implementation. It supports only:

  statements  set(PATH, VALUE) [where COND]
              delete_key(MAP, "key") [where COND]
              delete_matching_keys(MAP, "regex") [where COND]
  PATH        span.attributes["k"]           (span context only)
              resource.attributes["k"]
              scope.name                     (span context only; read-only)
              otelcol.client.metadata["k"]   (read-only; a list of strings)
              each map path optionally indexed once more with an integer, e.g. [0]
  MAP         span.attributes | resource.attributes
  VALUE       PATH | "string literal" | nil
  COND        VALUE (== | !=) VALUE, `and`, `or` (`and` binds tighter), parentheses,
              and the converter IsMatch(VALUE, "regex")
  strings     double-quoted; the only escapes are \\" and \\\\ (any other escape is rejected)

Anything else (other functions, numbers outside an index, true/false, `not`, arithmetic, other
paths, editors in conditions, ...) is rejected with an OTTLSyntaxError naming the position:
that is the grammar check. Before parsing, `$$` (the collector configuration's escape for a
literal `$`) is unescaped to `$`; a `${...}` reference is rejected (environment expansion is not
modelled).

Semantics follow otelcol-contrib's OTTL (pkg/ottl, ctxutil):
  - a missing map key reads as nil; indexing a missing key also reads as nil (ctxutil returns
    before indexing); indexing a value that is not a list, or out of bounds, is an error;
  - otelcol.client.metadata["k"] is the list of values of that export-call header (the key
    lookup is case-insensitive, as client.Metadata.Get); a missing key or an empty list is nil;
  - `==`/`!=` compare with nil (nil == nil), values of different types are unequal;
  - set(target, v) with v nil does nothing; setting a map key creates it; values are copied;
  - IsMatch(nil, ...) is false; a non-string target is converted to text first;
  - regexes are Go RE2: Python `re` is close enough for the patterns we emit, with two
    adjustments: `$` outside a character class is translated to `\\Z` (RE2's `$` without (?m)
    matches only at the end of the text, Python's also before a final newline), and constructs
    RE2 lacks (lookaround, backreferences, atomic groups) are rejected. Inline flags are only
    accepted at the start, e.g. `(?i)`;
  - error_mode: ignore -- any evaluation error skips that statement (for that span/resource)
    and evaluation continues with the next one. Other error modes are not modelled.

A processor's `trace_statements` groups run in order; a `context: resource` group once per
resource, a `context: span` group once per span (with its resource and scope visible).
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "OTTLSyntaxError", "OTTLEvalError", "Statement", "parse_statement", "unescape_config",
    "SpanData", "ResourceData", "Transform", "NIL",
]


class OTTLSyntaxError(ValueError):
    """A statement outside the supported subset (or not OTTL at all)."""


class OTTLEvalError(RuntimeError):
    """An evaluation error; with error_mode ignore the statement is skipped."""


NIL = None

# ---------------------------------------------------------------------------------------------
# tokenizer

_PUNCT = {"(": "LPAREN", ")": "RPAREN", "[": "LBRACK", "]": "RBRACK", ",": "COMMA", ".": "DOT"}
_SHOW = {"LPAREN": "'('", "RPAREN": "')'", "LBRACK": "'['", "RBRACK": "']'", "COMMA": "','",
         "STRING": "a string literal", "INT": "an integer index", "IDENT": "a name"}
_KEYWORDS = {"where", "and", "or", "nil"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Token:
    kind: str  # IDENT, KEYWORD, STRING, INT, OP, LPAREN, ..., EOF
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == '"':
            start, i, buf = i, i + 1, []
            while True:
                if i >= n:
                    raise OTTLSyntaxError(f"unterminated string literal starting at column {start}: {text[start:]!r}")
                c = text[i]
                if c == "\\":
                    nxt = text[i + 1] if i + 1 < n else ""
                    if nxt not in ('"', "\\"):
                        raise OTTLSyntaxError(
                            f"unsupported escape \\{nxt} at column {i} (only \\\" and \\\\ are in the subset)")
                    buf.append(nxt)
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                buf.append(c)
                i += 1
            out.append(Token("STRING", "".join(buf), start))
            continue
        if text.startswith(("==", "!="), i):
            out.append(Token("OP", text[i:i + 2], i))
            i += 2
            continue
        if c in _PUNCT:
            out.append(Token(_PUNCT[c], c, i))
            i += 1
            continue
        m = _INT.match(text, i)
        if m:
            out.append(Token("INT", int(m.group()), i))
            i = m.end()
            continue
        m = _IDENT.match(text, i)
        if m:
            word = m.group()
            out.append(Token("KEYWORD" if word in _KEYWORDS else "IDENT", word, i))
            i = m.end()
            continue
        raise OTTLSyntaxError(f"unexpected character {c!r} at column {i} (not in the supported OTTL subset)")
    out.append(Token("EOF", None, n))
    return out


# ---------------------------------------------------------------------------------------------
# AST

@dataclass(frozen=True)
class Path:
    root: str  # "span.attributes", "resource.attributes", "scope.name", "otelcol.client.metadata"
    key: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        s = self.root
        if self.key is not None:
            s += '["' + self.key.replace("\\", "\\\\").replace('"', '\\"') + '"]'
        if self.index is not None:
            s += f"[{self.index}]"
        return s


@dataclass(frozen=True)
class Literal:
    value: Any  # a str, or None for nil


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class IsMatch:
    target: Any
    pattern: str
    regex: re.Pattern


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    terms: tuple


@dataclass(frozen=True)
class Statement:
    text: str
    function: str  # set | delete_key | delete_matching_keys
    args: tuple
    condition: Any = None
    regex: re.Pattern | None = None  # delete_matching_keys' compiled pattern


# ---------------------------------------------------------------------------------------------
# regexes (RE2 subset on Python re)

_RE2_UNSUPPORTED = [
    (re.compile(r"\(\?[=!]"), "lookahead"),
    (re.compile(r"\(\?<[=!]"), "lookbehind"),
    (re.compile(r"\(\?>"), "atomic group"),
    (re.compile(r"\\[1-9]"), "backreference"),
    (re.compile(r"\(\?\("), "conditional group"),
]


def compile_re2(pattern: str) -> re.Pattern:
    """Compile a Go RE2 pattern of the kind we emit with Python's re (see module docstring)."""
    for rx, what in _RE2_UNSUPPORTED:
        if rx.search(pattern):
            raise OTTLSyntaxError(f"regex {pattern!r} uses a {what}, which Go RE2 does not support")
    for m in re.finditer(r"\(\?([a-zA-Z]*)\)", pattern):
        if m.start() != 0 or not m.group(1) or set(m.group(1)) - set("ims"):
            raise OTTLSyntaxError(f"regex {pattern!r}: inline flags are only supported at the start, e.g. (?i)")
    # translate `$` outside character classes (and not escaped) to \Z
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            if pattern.startswith("[]", i) or pattern.startswith("[^]", i):
                j = i + (3 if pattern[i + 1] == "^" else 2)
                out.append(pattern[i:j])
                i = j
                continue
        elif c == "$":
            out.append(r"\Z")
            i += 1
            continue
        out.append(c)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise OTTLSyntaxError(f"bad regex {pattern!r}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# parser

_MAP_ROOTS = {"span.attributes", "resource.attributes", "otelcol.client.metadata"}
_ROOTS = _MAP_ROOTS | {"scope.name"}
_CONTEXT_ROOTS = {
    "span": {"span.attributes", "resource.attributes", "scope.name", "otelcol.client.metadata"},
    "resource": {"resource.attributes", "otelcol.client.metadata"},
}
_WRITABLE = {"span.attributes", "resource.attributes"}


class _Parser:
    def __init__(self, text: str, context: str):
        self.text = text
        self.context = context
        self.toks = tokenize(text)
        self.i = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, msg: str, tok: Token | None = None) -> OTTLSyntaxError:
        t = tok or self.tok
        return OTTLSyntaxError(f"{msg} at column {t.pos} in {self.text!r}")

    @staticmethod
    def show(t: Token) -> str:
        return "the end of the statement" if t.kind == "EOF" else repr(t.value)

    def take(self, kind: str, value: Any = None) -> Token:
        t = self.tok
        if t.kind != kind or (value is not None and t.value != value):
            want = repr(value) if value is not None else _SHOW.get(kind, kind)
            raise self.error(f"expected {want}, got {self.show(t)}")
        self.i += 1
        return t

    def peek(self, kind: str, value: Any = None) -> bool:
        t = self.tok
        return t.kind == kind and (value is None or t.value == value)

    # grammar
    def statement(self) -> Statement:
        name = self.take("IDENT")
        if name.value not in ("set", "delete_key", "delete_matching_keys"):
            raise self.error(f"unknown or unsupported editor {name.value!r} "
                             "(the subset has set, delete_key, delete_matching_keys)", name)
        self.take("LPAREN")
        regex = None
        if name.value == "set":
            target = self.path()
            if target.root not in _WRITABLE or target.key is None or target.index is not None:
                raise self.error(f"set target must be span.attributes[\"k\"] or resource.attributes[\"k\"], got {target}")
            self.take("COMMA")
            value = self.value()
            args = (target, value)
        else:
            target = self.path()
            if target.root not in _WRITABLE or target.key is not None:
                raise self.error(f"{name.value} needs a map (span.attributes or resource.attributes), got {target}")
            self.take("COMMA")
            arg = self.take("STRING").value
            if name.value == "delete_matching_keys":
                regex = compile_re2(arg)
            args = (target, arg)
        self.take("RPAREN")
        cond = None
        if self.peek("KEYWORD", "where"):
            self.i += 1
            cond = self.condition()
        if not self.peek("EOF"):
            raise self.error(f"unexpected {self.show(self.tok)} after the statement")
        return Statement(self.text, name.value, args, cond, regex)

    def path(self) -> Path:
        start = self.tok
        first = self.take("IDENT").value
        parts = [first]
        while self.peek("DOT"):
            self.i += 1
            parts.append(self.take("IDENT").value)
        root = ".".join(parts)
        if root not in _ROOTS:
            raise self.error(f"unknown or unsupported path {root!r}", start)
        if root not in _CONTEXT_ROOTS[self.context]:
            raise self.error(f"path {root!r} is not available in the {self.context} context", start)
        key = index = None
        if root in _MAP_ROOTS and self.peek("LBRACK"):
            self.i += 1
            key = self.take("STRING").value
            self.take("RBRACK")
            if self.peek("LBRACK"):
                self.i += 1
                index = self.take("INT").value
                self.take("RBRACK")
        if self.peek("LBRACK"):
            raise self.error(f"unsupported indexing of {root}")
        if root == "otelcol.client.metadata" and key is None:
            raise self.error("otelcol.client.metadata must be indexed with a key in this subset", start)
        return Path(root, key, index)

    def value(self):
        t = self.tok
        if t.kind == "STRING":
            self.i += 1
            return Literal(t.value)
        if t.kind == "KEYWORD" and t.value == "nil":
            self.i += 1
            return Literal(None)
        if t.kind == "IDENT":
            if self.toks[self.i + 1].kind == "LPAREN":
                raise self.error(f"function {t.value!r} is not supported as a value in this subset")
            p = self.path()
            if p.root in _MAP_ROOTS and p.key is None:
                raise self.error(f"whole map {p.root} is not a supported value")
            return p
        raise self.error(f"expected a path, a string or nil, got {self.show(t)}")

    def condition(self):
        terms = [self.and_expr()]
        while self.peek("KEYWORD", "or"):
            self.i += 1
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else BoolOp("or", tuple(terms))

    def and_expr(self):
        terms = [self.term()]
        while self.peek("KEYWORD", "and"):
            self.i += 1
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else BoolOp("and", tuple(terms))

    def term(self):
        if self.peek("LPAREN"):
            self.i += 1
            inner = self.condition()
            self.take("RPAREN")
            return inner
        if self.peek("IDENT") and self.toks[self.i + 1].kind == "LPAREN":
            name = self.take("IDENT")
            if name.value != "IsMatch":
                raise self.error(f"unknown or unsupported converter {name.value!r} (the subset has IsMatch)", name)
            self.take("LPAREN")
            target = self.value()
            self.take("COMMA")
            pattern = self.take("STRING").value
            self.take("RPAREN")
            return IsMatch(target, pattern, compile_re2(pattern))
        left = self.value()
        if not self.peek("OP"):
            raise self.error("expected == or != (a bare value is not a condition in this subset)")
        op = self.take("OP").value
        right = self.value()
        return Compare(op, left, right)


def unescape_config(text: str) -> str:
    """The collector's configuration escapes a literal `$` as `$$`."""
    if re.search(r"(?<!\$)(\$\$)*\$\{", text):
        raise OTTLSyntaxError(f"${{...}} environment expansion is not modelled: {text!r}")
    return text.replace("$$", "$")


def parse_statement(text: str, context: str = "span", config_escaped: bool = True) -> Statement:
    """Parse one statement as written in a collector configuration (`$$` escapes) for a
    `context: span` or `context: resource` group; raise OTTLSyntaxError outside the subset."""
    if context not in _CONTEXT_ROOTS:
        raise OTTLSyntaxError(f"unsupported context {context!r} (the subset has span and resource)")
    if config_escaped:
        text = unescape_config(text)
    return _Parser(text, context).statement()


# ---------------------------------------------------------------------------------------------
# data and evaluation

@dataclass
class SpanData:
    attributes: dict
    scope_name: str = ""
    ref: Any = None  # whatever the caller uses to find the span again (e.g. its span id)


@dataclass
class ResourceData:
    attributes: dict
    spans: list[SpanData] = field(default_factory=list)


@dataclass
class _Env:
    resource: ResourceData
    span: SpanData | None
    metadata: dict  # header name -> list of str


def _metadata_get(md: dict, key: str):
    if key in md:
        vals = md[key]
    else:
        vals = next((v for k, v in md.items() if k.lower() == key.lower()), None)
    if not vals:
        return None
    return list(vals)


def _read(p: Path, env: _Env):
    if p.root == "scope.name":
        return env.span.scope_name or ""
    if p.root == "otelcol.client.metadata":
        base = _metadata_get(env.metadata, p.key)
    else:
        m = env.span.attributes if p.root == "span.attributes" else env.resource.attributes
        base = m.get(p.key)
    if base is None:
        return None  # missing key, even when indexed (ctxutil.GetMapValue returns before indexing)
    if p.index is None:
        return base
    if not isinstance(base, list):
        raise OTTLEvalError(f"{p}: type {type(base).__name__} does not support indexing")
    if not 0 <= p.index < len(base):
        raise OTTLEvalError(f"{p}: index {p.index} out of bounds")
    return base[p.index]


def _eval_value(node, env: _Env):
    if isinstance(node, Literal):
        return node.value
    return _read(node, env)


def _equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    return a == b


def _as_text(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, separators=(",", ":"))


def _eval_cond(node, env: _Env) -> bool:
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(_eval_cond(t, env) for t in node.terms)
        return any(_eval_cond(t, env) for t in node.terms)
    if isinstance(node, Compare):
        eq = _equal(_eval_value(node.left, env), _eval_value(node.right, env))
        return eq if node.op == "==" else not eq
    if isinstance(node, IsMatch):
        v = _eval_value(node.target, env)
        return v is not None and node.regex.search(_as_text(v)) is not None
    raise OTTLEvalError(f"not a condition: {node!r}")


def _target_map(p: Path, env: _Env) -> dict:
    return env.span.attributes if p.root == "span.attributes" else env.resource.attributes


def execute(stmt: Statement, env: _Env) -> bool:
    """Run one statement; True when its condition held. Raises OTTLEvalError on errors."""
    if not _eval_cond(stmt.condition, env):
        return False
    target = stmt.args[0]
    if stmt.function == "set":
        v = _eval_value(stmt.args[1], env)
        if v is not None:
            _target_map(target, env)[target.key] = copy.deepcopy(v)
    elif stmt.function == "delete_key":
        _target_map(target, env).pop(stmt.args[1], None)
    elif stmt.function == "delete_matching_keys":
        m = _target_map(target, env)
        for k in [k for k in m if stmt.regex.search(k)]:
            del m[k]
    return True


@dataclass
class Group:
    context: str
    statements: list[Statement]


class Transform:
    """A `transform` processor's trace_statements (flat syntax, error_mode ignore)."""

    def __init__(self, config: dict):
        unknown = set(config) - {"error_mode", "trace_statements"}
        if unknown:
            raise OTTLSyntaxError(f"unsupported transform settings: {sorted(unknown)}")
        if config.get("error_mode") != "ignore":
            raise OTTLSyntaxError(f"only error_mode: ignore is modelled, got {config.get('error_mode')!r}")
        self.groups: list[Group] = []
        for g in config.get("trace_statements") or ():
            if not isinstance(g, dict) or set(g) - {"context", "statements"}:
                raise OTTLSyntaxError(f"unsupported statement group {g!r} (need context + statements)")
            ctx = g.get("context")
            if ctx not in _CONTEXT_ROOTS:
                raise OTTLSyntaxError(f"unsupported context {ctx!r}")
            self.groups.append(Group(ctx, [parse_statement(s, ctx) for s in g["statements"]]))
        self.errors: list[tuple[str, str]] = []  # (statement, error) skipped under error_mode ignore

    def statements(self) -> list[Statement]:
        return [s for g in self.groups for s in g.statements]

    def apply(self, resources: list[ResourceData], metadata: dict | None = None,
              on_error: Callable[[Statement, Exception], None] | None = None) -> None:
        """Run every group, in order, over every resource (resource context) or span (span
        context), mutating the attributes in place."""
        md = metadata or {}
        for g in self.groups:
            for res in resources:
                targets = [None] if g.context == "resource" else res.spans
                for span in targets:
                    env = _Env(res, span, md)
                    for stmt in g.statements:
                        try:
                            execute(stmt, env)
                        except OTTLEvalError as exc:  # error_mode: ignore
                            self.errors.append((stmt.text, str(exc)))
                            if on_error is not None:
                                on_error(stmt, exc)
