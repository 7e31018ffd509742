"""`alephant-otel sql`, `migrate`, `reprice` and `maintain`."""
from __future__ import annotations

from pathlib import Path

import click

from ..pricing import COST_PREFERENCES
from . import main
from .options import data_path_option, db_option, format_option
from .render import render, run_query


@main.command()
@click.argument("query")
@db_option
@format_option
def sql(query, db, fmt):
    """Run a read-only SQL query over the views (steps, runs, sessions, agents, money, ...).

    \b
    Example:
      alephant-otel sql "SELECT model, sum(model_cost) FROM steps GROUP BY model"
    """
    render(run_query(db, query, []), fmt)


@main.command()
@db_option
@data_path_option
def migrate(db, data_path):
    """Upgrade a store to this version's schema (serve does this too).

    \b
    Example:
      alephant-otel migrate --db ./alephant.duckdb
    """
    from ..store import open_for_writing

    open_for_writing(db, data_path).close()
    click.echo(f"{db} is at the current schema")


@main.command()
@click.option("--prices", "prices", type=click.Path(exists=True, dir_okay=False),
              help="Price list to use (and, for a running server, to keep using); default: genai-prices only.")
@click.option("--since", help="Only steps that started since: 24h, 7d or an ISO date/time (UTC).")
@click.option("--until", help="Only steps that started before.")
@click.option("--cost-preference", type=click.Choice(COST_PREFERENCES), default=None,
              help="Which model cost counts (default: provided, or the running server's setting).")
@db_option
def reprice(prices, since, until, cost_preference, db):
    """Recompute computed costs after prices or overrides change; provided figures stay.

    Works on the file, or through the running server that holds it.

    \b
    Example:
      alephant-otel reprice --prices prices.yaml --since 2026-11-01
    """
    from ..price_list import PriceList
    from ..query import parse_time
    from ..query.source import running_server
    from ..store import Store

    text = Path(prices).read_text() if prices else None
    price_list = PriceList.parse(text, prices) if text else None  # validate before anything runs
    source = running_server(db)
    if source is not None:
        try:
            out = source.reprice({"prices": text, "prices_name": prices, "since": since, "until": until,
                                  "prefer": cost_preference})
        finally:
            source.close()
        n = out["repriced"]
    else:
        with Store(db) as store:
            n = store.reprice(price_list, cost_preference or "provided",
                              parse_time(since, "--since") if since else None,
                              parse_time(until, "--until") if until else None)
    click.echo(f"repriced {n} step{'s' if n != 1 else ''}" + (f" with {price_list.source}" if price_list else ""))


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(ctx, param, value):
    from datetime import timedelta

    text = str(value).strip().lower()
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in _DURATION:
        return timedelta(seconds=int(text[:-1]) * _DURATION[text[-1]])
    raise click.BadParameter("use a duration like 30m, 1h or 7d")


@main.command()
@db_option
@data_path_option
@click.option("--retention-days", type=click.IntRange(1), default=None, envvar="ALEPHANT_RETENTION_DAYS",
              help="Delete steps that started more than N days ago (both backends; env ALEPHANT_RETENTION_DAYS).")
@click.option("--keep-snapshots", default="1h", show_default=True, callback=_duration, metavar="DURATION",
              help="DuckLake: expire snapshots older than this and delete the files only they used "
                   "(readers running longer than this may lose files under them).")
def maintain(db, data_path, retention_days, keep_snapshots):
    """Housekeeping: retention, and on a DuckLake adoption, duplicate removal and compaction.

    On a DuckLake (run it while receivers write, e.g. hourly from cron): adopts orphans whose
    parent another receiver stored, deletes duplicate copies of spans that two receivers
    committed at once, merges the small Parquet files streaming writes leave, expires old
    snapshots and deletes unused files. On a DuckDB file (stop the server first): deletes what
    retention drops and checkpoints.

    \b
    Example:
      alephant-otel maintain --store ducklake:postgres://alephant@db:5432/lake --retention-days 90
      alephant-otel maintain --db ./alephant.duckdb --retention-days 30
    """
    from ..store.maintain import maintain as run

    for what, n in run(db, data_path, retention_days, keep_snapshots):
        click.echo(f"{what}: {n}")
