"""`alephant-otel cost` and `alephant-otel margin`."""
from __future__ import annotations

import click

from ..query import COST_GROUPS, MARGIN_GROUPS, cost_sql, margin_sql, parse_time
from . import main
from .options import db_option, filter_options, format_option
from .render import render, run_query


def _filters(since, until, workspace, where):
    return dict(since=parse_time(since, "--since") if since else None,
                until=parse_time(until, "--until") if until else None,
                workspace=workspace, where=where)


@main.command()
@click.option("--by", "by", required=True, metavar="LEVEL",
              help=f"One of {', '.join(COST_GROUPS)}.")
@filter_options
@db_option
@format_option
def cost(by, since, until, workspace, where, db, fmt):
    """Cost (model, tool/API, payments, fees), revenue and margin by any level, most expensive first.

    One row per group and currency; a total line per currency in table format.

    \b
    Example:
      alephant-otel cost --by agent --since 7d
      alephant-otel cost --by property.tier --where property.region=eu --format json
    """
    sql, params = cost_sql(by, **_filters(since, until, workspace, where))
    render(run_query(db, sql, params), fmt, totals=True)


@main.command()
@click.option("--by", "by", required=True, metavar="LEVEL",
              help=f"Usually one of {', '.join(MARGIN_GROUPS)}; any level of `cost --by` works, property.<name> too.")
@filter_options
@db_option
@format_option
def margin(by, since, until, workspace, where, db, fmt):
    """Known margin (revenue - all costs) by endpoint, agent, workflow, run (or any level), least profitable first.

    `margin_complete` is false where unpriced steps make the cost a lower bound.

    \b
    Example:
      alephant-otel margin --by endpoint --since 30d
      alephant-otel margin --by property.plan
    """
    sql, params = margin_sql(by, **_filters(since, until, workspace, where))
    render(run_query(db, sql, params), fmt, totals=True)
