"""One renderer for every query command: a terminal table, CSV or JSON (a list of objects)."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import click
import orjson
import pyarrow as pa
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="table for people, csv or json (a list of objects) for scripts.")


def _json_default(v):
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    raise TypeError


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return f"{v:.6f}" if v else "0"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".")
    if isinstance(v, datetime):
        return v.isoformat(sep=" ", timespec="milliseconds")
    return str(v)


def render(table: pa.Table, fmt: str, out=None) -> None:
    rows = table.to_pylist()
    cols = table.column_names
    if fmt == "json":
        click.echo(orjson.dumps(rows, default=_json_default, option=orjson.OPT_INDENT_2).decode(), file=out)
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r[c] is None else (str(r[c]) if not isinstance(r[c], float) else repr(r[c])) for c in cols])
        click.echo(buf.getvalue(), nl=False, file=out)
    else:
        t = Table(show_edge=False, header_style="bold")
        numeric = {f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)}
        for c in cols:
            t.add_column(c, justify="right" if c in numeric else "left", overflow="fold")
        for r in rows:
            t.add_row(*(_cell(r[c]) for c in cols))
        console = Console(file=out, soft_wrap=False) if out else Console()
        console.print(t)
        console.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]")
