"""Which store a `--store` (or `--db`) value names, and how to reach a DuckLake.

    PATH | duckdb:PATH                                    one DuckDB file (the default)
    ducklake:postgres://user[:password]@host[:port]/dbname  a DuckLake: catalog in PostgreSQL,
                                                          data as Parquet files under a data path

The DuckLake and PostgreSQL extensions are loaded from the PyPI packages that ship them for
exactly this DuckDB version (`duckdb-extension-ducklake`, `duckdb-extension-postgres-scanner`),
by file path: nothing is downloaded at run time.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb

from ..errors import StoreError

LAKE_ALIAS = "lake"  # the name the lake is attached under in our own connections
_EXTENSIONS = [("duckdb_extension_postgres_scanner", "postgres_scanner"), ("duckdb_extension_ducklake", "ducklake")]
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
SPEC_HELP = ("a DuckDB file PATH (or duckdb:PATH), or ducklake:postgres://user@host:port/dbname "
             "(a DuckLake: PostgreSQL catalog, Parquet data under --data-path)")


@dataclass(frozen=True)
class StoreSpec:
    kind: str  # "duckdb" or "ducklake"
    path: str = ""  # the DuckDB file
    conninfo: str = ""  # libpq key=value connection string of the lake's catalog
    display: str = ""  # the value as given, without its password

    @property
    def is_lake(self) -> bool:
        return self.kind == "ducklake"


def parse_spec(value: str) -> StoreSpec:
    """`--store`/`--db` value -> StoreSpec; a StoreError says what is wrong with a bad one."""
    text = str(value).strip()
    if not text:
        raise StoreError(f"--store: empty; use {SPEC_HELP}")
    m = _SCHEME.match(text)
    if m is None:  # a plain path (also Windows' C:\...: one-letter schemes are not matched)
        return StoreSpec("duckdb", path=text, display=text)
    scheme = m.group(1).lower()
    rest = text[m.end():]
    if scheme == "duckdb":
        if not rest:
            raise StoreError("--store duckdb: needs a file path, e.g. duckdb:./alephant.duckdb")
        return StoreSpec("duckdb", path=rest, display=text)
    if scheme == "ducklake":
        return StoreSpec("ducklake", conninfo=_conninfo(rest), display=_without_password(text))
    if scheme in ("postgres", "postgresql"):
        raise StoreError(f"--store {_without_password(text)}: a PostgreSQL URL alone is not a store; "
                         f"use ducklake:{_without_password(text)} (a DuckLake whose catalog is in that database)")
    raise StoreError(f"--store {_without_password(text)}: unknown store type {scheme!r}; use {SPEC_HELP}")


def _without_password(text: str) -> str:
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", text)


def _conninfo(url: str) -> str:
    """postgres://user:pw@host:port/db?sslmode=... -> libpq `key=value` pairs."""
    parts = urlsplit(url)
    shown = _without_password("ducklake:" + url)
    if parts.scheme.lower() not in ("postgres", "postgresql"):
        raise StoreError(f"--store {shown}: the DuckLake catalog must be PostgreSQL: "
                         "ducklake:postgres://user@host:port/dbname")
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname:
        raise StoreError(f"--store {shown}: needs a host and a database name: ducklake:postgres://user@host:port/dbname")
    try:
        port = parts.port
    except ValueError:
        raise StoreError(f"--store {shown}: bad port") from None
    pairs = {"host": parts.hostname, "port": port, "dbname": dbname,
             "user": unquote(parts.username) if parts.username else None,
             "password": unquote(parts.password) if parts.password else None}
    for item in filter(None, parts.query.split("&")):
        k, _, v = item.partition("=")
        pairs[unquote(k)] = unquote(v)
    return " ".join(f"{k}={_quote(str(v))}" for k, v in pairs.items() if v is not None)


def _quote(v: str) -> str:
    if v and not re.search(r"[\s'\\]", v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def extension_path(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    version = duckdb.__version__
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(f"DuckLake stores need the package {package.replace('_', '-')}=={version} "
                         f"(pip install 'alephant-otel[lake]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise StoreError(f"{path} is missing: {package.replace('_', '-')} must match duckdb {version} exactly")
    return path


def load_lake_extensions(con) -> None:
    """Load DuckLake and the PostgreSQL scanner from their packaged files (never downloaded)."""
    con.execute("SET autoinstall_known_extensions = false")
    for package, name in _EXTENSIONS:
        con.execute(f"LOAD '{extension_path(package, name)}'")


def attach_lake(con, spec: StoreSpec, data_path: str | None = None, read_only: bool = False) -> None:
    """Attach the lake as `lake` and make it the default catalog of `con`."""
    load_lake_extensions(con)
    opts = []
    if read_only:
        opts.append("READ_ONLY")
    if data_path:
        opts.append("DATA_PATH " + _sql_str(str(Path(data_path).resolve()) + "/"))
    target = _sql_str("ducklake:postgres:" + spec.conninfo)
    try:
        con.execute(f"ATTACH {target} AS {LAKE_ALIAS}" + (f" ({', '.join(opts)})" if opts else ""))
    except duckdb.Error as exc:
        msg = str(exc).splitlines()[0]
        if "data_path is not set" in msg:
            raise StoreError(f"{spec.display} holds no DuckLake yet: creating one needs --data-path DIR "
                             "(where its Parquet files go: storage every receiver and reader reaches)") from None
        if "creating a new DuckLake is explicitly disabled" in msg:
            raise StoreError(f"{spec.display} is not an alephant-otel store yet (start `alephant-otel serve "
                             f"--store {spec.display} --data-path DIR` to create it)") from None
        raise StoreError(f"cannot attach {spec.display}: {msg}") from None
    con.execute(f"USE {LAKE_ALIAS}")


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
