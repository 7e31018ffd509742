"""How figures are written on the pages (one place, so tests can say what to expect)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal


def money(value, currency: str | None = None) -> str:
    """Six decimals (model calls cost fractions of a cent), then the currency."""
    if value is None:
        return "-"
    text = f"{value if isinstance(value, Decimal) else Decimal(str(value)):.6f}"
    return f"{text} {currency}" if currency else text


def count(value) -> str:
    return "-" if value is None else f"{int(value):,}"


def ms(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f} ms" if value < 10_000 else f"{value / 1000:,.2f} s"


def pct(part, whole) -> str:
    if not whole:
        return "-"
    return f"{100 * part / whole:.1f}%"


def rate(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
