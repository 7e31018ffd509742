"""Reading a page's query parameters: every bad value is a 400 with a message that says
what the page takes."""
from __future__ import annotations

from datetime import datetime

from ..errors import QueryError
from ..query.queries import parse_time
from .layout import BadRequest

MAX_PAGE = 100_000
MAX_TEXT = 1000


class Params:
    """A page's query string (a multidict), checked against what the page accepts."""

    def __init__(self, query, accepted: set[str], prefixes: tuple[str, ...] = ()):
        self.pairs = [(k, v) for k, v in query.items()]
        for k, v in self.pairs:
            if k not in accepted and not any(k.startswith(p) for p in prefixes):
                takes = ", ".join(sorted(accepted | {p + "<name>" for p in prefixes})) or "no parameters"
                raise BadRequest(f"unknown parameter {k!r}: this page takes {takes}")
            if len(v) > MAX_TEXT:
                raise BadRequest(f"parameter {k!r} is longer than {MAX_TEXT} characters")

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.pairs if k == name]
        if len(values) > 1:
            raise BadRequest(f"parameter {name!r} is given {len(values)} times; give it once")
        return values[0].strip() if values and values[0].strip() else None

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise BadRequest(f"parameter {name!r} is required")
        return value

    def page(self) -> int:
        text = self.get("page")
        if text is None:
            return 1
        if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
            raise BadRequest(f"page {text!r}: use a page number from 1 to {MAX_PAGE}")
        return int(text)

    def time(self, name: str, default: str | None = None) -> datetime | None:
        text = self.get(name)
        if text is None:
            if name in {k for k, _ in self.pairs}:  # given empty: no bound
                return None
            text = default
        if text is None:
            return None
        try:
            return parse_time(text, name)
        except QueryError as exc:
            raise BadRequest(str(exc)) from None

    def flag(self, name: str) -> bool:
        text = self.get(name)
        if text is None:
            return False
        if text not in ("1", "on", "true", "yes"):
            raise BadRequest(f"{name}={text!r}: use {name}=1 or leave it out")
        return True

    def properties(self) -> list[tuple[str, str]]:
        """`property.<name>=<value>` parameters, and the form's `prop=<name>=<value>`."""
        out = []
        for k, v in self.pairs:
            if k.startswith("property."):
                name, value = k[len("property."):], v
            elif k == "prop" and v.strip():
                name, sep, value = v.partition("=")
                if not sep:
                    raise BadRequest(f"prop={v!r}: write a property filter as <name>=<value>, e.g. tier=gold")
            else:
                continue
            if not name.strip():
                raise BadRequest(f"{k}={v!r}: a property filter needs a property name")
            out.append((name.strip(), value.strip()))
        return out
