"""`alephant-otel serve`."""
from __future__ import annotations

import logging
import os
import sys

import click

from .. import __version__
from ..config import DEFAULT_CHECKPOINT_MB, DEFAULT_GRPC_PORT, DEFAULT_HOST, DEFAULT_HTTP_PORT
from ..pricing import COST_PREFERENCES
from . import main
from .options import data_path_option, db_option


def default_sizes(cores: int, workers: int | None, duckdb_threads: int | None) -> tuple[int, int]:
    """(mapping worker processes, DuckDB threads), each as given or by default: the workers take
    all cores but one, and two on a 2-core machine (one on one core); DuckDB the cores they
    leave (at least 1). The workers do ~2/3 of the CPU work per span (they also resolve the
    traces, see store/rows.py): one worker on two cores left ~40% of a core idle. Under load
    every core is busy mapping or writing, and a second DuckDB thread made each commit of a
    few thousand rows ~25% dearer in CPU and no faster (README, Performance)."""
    workers = max(1, min(cores, 2), cores - 1) if workers is None else workers
    return workers, max(1, cores - workers) if duckdb_threads is None else duckdb_threads


@main.command()
@db_option
@data_path_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, envvar="ALEPHANT_HOST",
              help="Address to listen on (env ALEPHANT_HOST).")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=DEFAULT_GRPC_PORT, show_default=True,
              envvar="ALEPHANT_GRPC_PORT", help="OTLP/gRPC port; 0 picks a free one (env ALEPHANT_GRPC_PORT).")
@click.option("--http-port", type=click.IntRange(0, 65535), default=DEFAULT_HTTP_PORT, show_default=True,
              envvar="ALEPHANT_HTTP_PORT", help="OTLP/HTTP port (POST /v1/traces); 0 picks a free one (env ALEPHANT_HTTP_PORT).")
@click.option("--no-http", is_flag=True, help="Serve OTLP/gRPC only.")
@click.option("--max-request-bytes", type=click.IntRange(1024), default=64 * 1024 * 1024, show_default=True,
              envvar="ALEPHANT_MAX_REQUEST_BYTES", help="Largest request body accepted (413 / RESOURCE_EXHAUSTED beyond).")
@click.option("--max-queued-spans", type=click.IntRange(1000), default=25_000, show_default=True,
              envvar="ALEPHANT_MAX_QUEUED_SPANS",
              help="Spans waiting to be written before exports are refused with a retry signal (bounds memory).")
@click.option("--workers", type=click.IntRange(0, 64), default=None, envvar="ALEPHANT_WORKERS",
              help="Processes that decode, map and price requests (default: cores - 1, and 2 on 2 cores; "
                   "0 maps in the receiving threads) (env ALEPHANT_WORKERS).")
@click.option("--duckdb-threads", type=click.IntRange(1, 256), default=None, envvar="ALEPHANT_DUCKDB_THREADS",
              help="Threads DuckDB may use for writes and in-server queries (default: the cores the mapping "
                   "workers leave, at least 1: 1 with the default workers up to 2 cores). More threads make commits of a few "
                   "thousand rows dearer, not faster; raise it for heavy queries through the server "
                   "(env ALEPHANT_DUCKDB_THREADS).")
@click.option("--checkpoint-mb", type=click.IntRange(1, 100_000), default=None, envvar="ALEPHANT_CHECKPOINT_MB",
              help=f"Checkpoint the DuckDB file when its write-ahead log passes this many MB (default {DEFAULT_CHECKPOINT_MB}). Exports "
                   "in the commit that checkpoints wait for it (~0.2 s at 16, ~0.4-0.5 s at 64); a larger "
                   "threshold checkpoints less often for a little less CPU per span (env ALEPHANT_CHECKPOINT_MB).")
@click.option("--require-auth", is_flag=True, envvar="ALEPHANT_REQUIRE_AUTH",
              help="Refuse exports without a valid virtual key even before any key exists.")
@click.option("--store-content", is_flag=True, envvar="ALEPHANT_STORE_CONTENT",
              help="Keep message content attributes (prompts, completions); by default only their size is kept.")
@click.option("--mapping", "mapping", type=click.Path(dir_okay=False), envvar="ALEPHANT_MAPPING",
              help="YAML rules for custom spans, applied before the built-in conventions (env ALEPHANT_MAPPING).")
@click.option("--prices", "prices", type=click.Path(dir_okay=False), envvar="ALEPHANT_PRICES",
              help="YAML price list: tool and API prices, model overrides (env ALEPHANT_PRICES).")
@click.option("--cost-preference", type=click.Choice(COST_PREFERENCES), default="provided", show_default=True,
              envvar="ALEPHANT_COST_PREFERENCE",
              help="Which model cost counts when a span brings its own and we compute one too (env ALEPHANT_COST_PREFERENCE).")
def serve(db, data_path, host, grpc_port, http_port, no_http, max_request_bytes, max_queued_spans, workers,
          duckdb_threads, checkpoint_mb, require_auth, store_content, mapping, prices, cost_preference):
    """Receive OTLP traces and store them as priced steps.

    \b
    Example:
      alephant-otel serve --db ./alephant.duckdb --grpc-port 4317
      alephant-otel serve --mapping examples/rules/payments.yaml --prices examples/prices.yaml
      alephant-otel serve --store ducklake:postgres://alephant@db.internal:5432/lake --data-path /mnt/lake
    """
    from ..mapping.rules import RuleSet
    from ..price_list import PriceList
    from ..receiver.server import Server

    rules = RuleSet.load(mapping) if mapping else None
    price_list = PriceList.load(prices) if prices else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..receiver import gc_tuning
    gc_tuning.tune()  # (this process is ours: see receiver/gc_tuning.py)
    workers, threads = default_sizes(os.cpu_count() or 2, workers, duckdb_threads)
    server = Server(db, host, grpc_port, None if no_http else http_port, rules=rules, cost_preference=cost_preference,
                    prices=price_list, store_content=store_content, require_auth=require_auth,
                    max_request_bytes=max_request_bytes, max_queued_spans=max_queued_spans, workers=workers,
                    data_path=data_path, duckdb_threads=threads, checkpoint_mb=checkpoint_mb).start()
    endpoint = f"http://{server.grpc.address}"
    click.echo(f"alephant-otel {__version__}: OTLP/gRPC listening on {server.grpc.address}, storing in {server.store.path}")
    if server.http is not None:
        click.echo(f"OTLP/HTTP listening on http://{server.http.address}/v1/traces")
        click.echo(f"Web view (read-only): http://{server.http.address}/ui")
    click.echo("Auth: virtual keys required" if server.auth.required else
               "Auth: none (no virtual keys yet; spans go to workspace 'default' unless they name one)")
    if rules is not None:
        click.echo(f"Mapping rules: {len(rules.rules)} from {mapping}")
    if price_list is not None:
        click.echo(f"Prices: {price_list.source} from {prices}")
    click.echo("Point an agent at it:")
    click.echo(f"  export OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}")
    click.echo("  export OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
    click.echo("  export OTEL_TRACES_EXPORTER=otlp")
    click.echo("  export OTEL_EXPORTER_OTLP_HEADERS=alephant-agent-id=my-agent   # optional: tag every span")
    if server.http is not None:
        click.echo(f"or over HTTP: OTEL_EXPORTER_OTLP_ENDPOINT=http://{server.http.address} OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
    click.echo("Stop with Ctrl-C (SIGINT) or SIGTERM; queued spans are written before exit.")
    sys.stdout.flush()
    server.serve_forever()
