"""A read-only web view of the store, served by the receiver's HTTP server under /ui.

    routes.py    the aiohttp routes, headers, the thread pool pages render in
    login.py     virtual-key login (a session cookie; the key is never kept)
    pages/       one module per page: overview, sessions, session, run, groups
    queries.py   the SQL behind each page
    sql.py       a query and its runnable text (parameters inlined)
    layout.py    page chrome, panels with their SQL, tables
    charts.py    inline SVG charts
    html.py      HTML that escapes by default
    format.py    how figures are written
"""
from .routes import routes

__all__ = ["routes"]
