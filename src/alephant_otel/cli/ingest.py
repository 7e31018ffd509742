"""`alephant-otel ingest FILE...`: load OTLP files (protobuf, JSON, JSON lines as written by a
collector's file exporter; optionally gzipped)."""
from __future__ import annotations

import gzip
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import AlephantError, DecodeError
from .. import wire
from ..otlp import decode_json
from . import main
from .options import db_option


def requests_in(path: Path):
    """Yield (request, bytes consumed) from a .pb, .json or .jsonl file (or their .gz)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text_like = raw.lstrip()[:1] in (b"{", b"[")
    if not text_like:
        yield wire.parse(raw), len(raw)
        return
    try:
        yield decode_json(raw), len(raw)
        return
    except DecodeError:
        if b"\n" not in raw.strip():
            raise
    for i, line in enumerate(raw.splitlines(keepends=True), 1):  # JSON lines
        if line.strip():
            try:
                yield decode_json(line), len(line)
            except DecodeError as exc:
                raise DecodeError(f"line {i}: {exc}") from None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def ingest(files, db):
    """Load OTLP files (protobuf, OTLP/JSON, or JSON lines from a collector's file exporter).

    Through the running server if one holds the file, else straight into the file.

    \b
    Example:
      alephant-otel ingest traces.jsonl exported/*.pb
    """
    from ..query.source import RemoteSource, running_server

    source = running_server(db)
    total = sum(f.stat().st_size for f in files)
    counts = {"requests": 0, "spans": 0, "stored": 0, "duplicates": 0, "rejected": 0}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                        TimeRemainingColumn(), transient=True, disable=total < 1_000_000)
    export = source.export if isinstance(source, RemoteSource) else _local_exporter(db)
    try:
        with progress:
            task = progress.add_task("ingesting", total=total)
            for f in files:
                try:
                    for req, size in requests_in(f):
                        n = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
                        res = export(req)
                        counts["requests"] += 1
                        counts["spans"] += n
                        counts["stored"] += res["accepted"]
                        counts["duplicates"] += res["duplicates"]
                        counts["rejected"] += res["rejected"]
                        progress.advance(task, size)
                except DecodeError as exc:
                    raise AlephantError(f"{f}: {exc}") from None
    finally:
        if isinstance(source, RemoteSource):
            source.close()
        elif hasattr(export, "close"):
            export.close()
    click.echo(f"{counts['requests']} requests, {counts['spans']} spans: {counts['stored']} stored, "
               f"{counts['duplicates']} already there, {counts['rejected']} rejected")


class _local_exporter:
    """Map, price and write requests straight into the file (no server holds it)."""

    def __init__(self, db: str):
        from ..receiver.pipeline import Pipeline
        from ..store import Store

        self.store = Store(db)
        self.pipeline = Pipeline(self.store).start()

    def __call__(self, req) -> dict:
        r = self.pipeline.export_request(req)
        return {"accepted": r.accepted, "duplicates": r.duplicates, "rejected": r.rejected}

    def close(self) -> None:
        self.pipeline.stop()
        self.store.close()
