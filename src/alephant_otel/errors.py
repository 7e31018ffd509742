"""Typed errors, translated once at each boundary (OTLP status, CLI message).

    AlephantError
     +-- DecodeError        the request bytes are not an OTLP export request (INVALID_ARGUMENT)
     +-- StoreError         the DuckDB file cannot be opened or migrated
     |    +-- SchemaTooNew  the file was written by a newer alephant-otel
     +-- QueryError         a user query failed or is not allowed
"""


class AlephantError(Exception):
    """Base class of every error alephant-otel raises on purpose."""


class DecodeError(AlephantError):
    pass


class StoreError(AlephantError):
    pass


class SchemaTooNew(StoreError):
    pass


class QueryError(AlephantError):
    pass
