"""alephant-otel: OpenTelemetry traces of AI agents as priced runs, sessions and steps in DuckDB.

Data flows one way: receiver -> decode (`otlp`) -> map (`mapping`) -> price (`pricing`)
-> store (`store`, DuckDB).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alephant-otel")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
