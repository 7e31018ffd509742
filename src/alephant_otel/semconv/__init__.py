"""Our attribute keys and mapping tables, generated from the repository's semconv/ directory."""
from ._generated import *  # noqa: F401,F403
from ._generated import (  # noqa: F401  (explicit names for readers and linters)
    CONTEXT_ATTRIBUTES,
    CONVENTIONS,
    HEADER_ATTRIBUTES,
    HEADER_PREFIXES,
    INHERITED_FIELDS,
    PROPERTY_PREFIX,
    SECRET_HEADERS,
    STEP_ATTRIBUTES,
    STEP_KIND,
    STEP_KINDS,
)
