"""Building HTML that escapes by default.

`h(template, *values)` fills a trusted template (a literal in our code) with values that are
escaped unless they are already `Html`. Span names, attributes and property values are
attacker-controlled text: they only ever reach a page through `h`, `esc` or `join`.
"""
from __future__ import annotations

import html
from urllib.parse import urlencode


class Html(str):
    """Markup that is already safe (built by this module)."""

    __slots__ = ()

    def __add__(self, other):
        return Html(str.__add__(self, esc(other)))


def esc(value) -> Html:
    """Escape anything that is not already Html (None is the empty string)."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(html.escape(str(value), quote=True))


def h(template: str, *args, **kwargs) -> Html:
    """`template.format(...)` with every value escaped (unless it is Html)."""
    return Html(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts, sep: str = "") -> Html:
    return Html(esc(sep).join(esc(p) for p in parts))


def url(path: str, params=(), **query) -> str:
    """A link to one of our pages: a fixed path and query parameters (pairs or keywords; None
    and empty values left out). It is escaped when put into an attribute with `h`."""
    pairs = list(params.items() if isinstance(params, dict) else params) + list(query.items())
    q = [(k, v) for k, v in pairs if v is not None and v != ""]
    return path + ("?" + urlencode(q) if q else "")
