"""A query a page runs, and the same query as text anyone can run in plain `duckdb`.

Pages run SQL with named parameters (`$name`); the "SQL" link of every figure shows the exact
statement with each parameter replaced by its literal, so it can be pasted into a DuckDB
session on the store file and gives the same rows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def literal(value) -> str:
    """A DuckDB literal for a parameter value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def inline(sql: str, params: dict) -> str:
    """`sql` with every `$name` replaced by the literal of params[name] (our SQL has no `$`
    inside string literals, so a plain substitution is exact)."""
    def sub(m):
        if m.group(1) not in params:
            raise KeyError(f"parameter ${m.group(1)} has no value")
        return literal(params[m.group(1)])
    return _PARAM.sub(sub, sql)


@dataclass
class Query:
    """SQL with named parameters; `text` is the runnable statement with literals."""

    sql: str
    params: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return inline(self.sql.strip(), self.params)

    @property
    def bound(self) -> dict:
        """The parameters the statement uses (DuckDB refuses unused ones)."""
        names = set(_PARAM.findall(self.sql))
        return {k: v for k, v in self.params.items() if k in names}
