"""Defaults, each overridable by a command-line flag or its environment variable
(flag > environment variable > default)."""

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise
DEFAULT_GRPC_PORT = 4317  # OTLP/gRPC
DEFAULT_HTTP_PORT = 4318  # OTLP/HTTP
DEFAULT_DB = "./alephant.duckdb"
# WAL size (MB) at which DuckDB checkpoints the file; why 16: store/database.py, README Performance
DEFAULT_CHECKPOINT_MB = 16
