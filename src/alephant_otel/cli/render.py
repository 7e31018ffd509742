"""One renderer for every query command: a terminal table, CSV or JSON (a list of objects);
and the two trees (a run's steps, a session's paths)."""
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
from rich.tree import Tree

FORMATS = ("table", "csv", "json")
MONEY = ("model_cost", "tool_cost", "payment_spend", "fees", "cost", "revenue", "margin")


def run_query(db: str, sql_text: str, params) -> pa.Table:
    """Free SQL: on the file, or through the running server with its admin token."""
    from ..query import connect

    source = connect(db)
    try:
        return source.query(sql_text, params)
    finally:
        source.close()


def run_named(db: str, name: str, **args) -> pa.Table:
    """A named query (cost, margin, runs, run, session): on the file, or through the server."""
    from ..query import connect

    source = connect(db)
    try:
        return source.named(name, {k: v for k, v in args.items() if v not in (None, ())})
    finally:
        source.close()


def _json_default(v):
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    raise TypeError


def dumps(value) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2).decode()


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


def _console(out) -> Console:
    return Console(file=out, soft_wrap=False) if out else Console()


def totals_by_currency(rows: list[dict]) -> dict[str, dict[str, Decimal]]:
    out: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        if r.get("currency") is None:
            continue
        t = out.setdefault(r["currency"], {})
        for c in MONEY:
            if r.get(c) is not None:
                t[c] = t.get(c, 0) + r[c]
    return out


def render(table: pa.Table, fmt: str, out=None, totals: bool = False) -> None:
    rows = table.to_pylist()
    cols = table.column_names
    if fmt == "json":
        click.echo(dumps(rows), file=out)
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r[c] is None else (repr(r[c]) if isinstance(r[c], float) else str(r[c])) for c in cols])
        click.echo(buf.getvalue(), nl=False, file=out)
        return
    t = Table(show_edge=False, header_style="bold")
    numeric = {f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
               or pa.types.is_decimal(f.type)}
    for c in cols:
        t.add_column(c, justify="right" if c in numeric else "left", overflow="fold")
    for r in rows:
        t.add_row(*(_cell(r[c]) for c in cols))
    console = _console(out)
    console.print(t)
    console.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/dim]")
    if totals:
        for ccy, t in totals_by_currency(rows).items():
            console.print("total " + ccy + ": " + ", ".join(f"{c} {t[c]:.6f}" for c in MONEY if c in t))


def _step_label(s: dict) -> str:
    parts = [f"[bold]{s['step_kind'] or 'unmapped'}[/bold] {s['name']}"]
    if s["duration_ms"] is not None:
        parts.append(f"{s['duration_ms']:.1f} ms")
    if s["model"]:
        parts.append(s["model"])
    if s["tool_name"]:
        parts.append(f"tool {s['tool_name']}")
    if s["total_tokens"]:
        parts.append(f"{s['total_tokens']} tok")
    if s["total_cost"]:
        parts.append(f"cost {s['total_cost']:.6f} {s['money_currency']}")
    if s["revenue"]:
        parts.append(f"[green]revenue {s['revenue']:.6f}[/green]")
    if s["cost_source"] == "unpriced":
        parts.append("[yellow]unpriced[/yellow]")
    if s["policy_decision"]:
        parts.append(f"[magenta]policy {s['policy_decision']}[/magenta]")
    if s["retry_attempt"]:
        parts.append(f"retry {s['retry_attempt']}")
    if s["status"] == "ERROR":
        parts.append("[red]ERROR[/red]")
    return " · ".join(parts)


def render_run_tree(run_id: str, roots: list[dict], rows: list[dict], fmt: str, out=None) -> None:
    if fmt == "json":
        click.echo(dumps({"run_id": run_id, "steps": roots}), file=out)
        return
    if fmt == "csv":
        render(pa.Table.from_pylist(rows), "csv", out)
        return
    tree = Tree(f"[bold]run {run_id}[/bold]")

    def add(node, s):
        branch = node.add(_step_label(s))
        for c in s["children"]:
            add(branch, c)
    for r in roots:
        add(tree, r)
    console = _console(out)
    console.print(tree)
    for ccy, t in totals_by_currency([{**r, "currency": r["money_currency"], "cost": r["total_cost"]} for r in rows]).items():
        console.print(f"total {ccy}: cost {t.get('cost', 0):.6f}, revenue {t.get('revenue', 0):.6f}")
    console.print(f"[dim]{len(rows)} steps[/dim]")


def render_path_tree(session_id: str, runs_table: pa.Table, root: dict, fmt: str, out=None) -> None:
    if fmt == "json":
        click.echo(dumps({"session_id": session_id, "runs": runs_table.to_pylist(), "paths": _strip(root)}), file=out)
        return
    if fmt == "csv":
        render(runs_table, "csv", out)
        return
    console = _console(out)
    render(runs_table, "table", out)
    tree = Tree(f"[bold]session {session_id}[/bold]")

    def label(n):
        cost = ", ".join(f"{v:.6f} {k}" for k, v in n["cost"].items()) or "0"
        lat = f"{n['latency_ms']:.1f} ms" if n["latency_ms"] is not None else "-"
        return f"{n['path']} · {n['steps']} steps · {lat} · cost {cost}"

    def add(node, n):
        branch = node.add(label(n))
        for c in n["children"]:
            add(branch, c)
    add(tree, root)
    console.print(tree)


def _strip(n: dict) -> dict:
    return {"segment": n["segment"], "path": n["path"], "steps": n["steps"], "latency_ms": n["latency_ms"],
            "cost": n["cost"], "children": [_strip(c) for c in n["children"]]}
