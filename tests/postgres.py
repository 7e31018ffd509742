"""A real PostgreSQL server for DuckLake tests and the lake benchmark: the system's binaries
(Debian's `postgresql` package, `make postgres` installs it), a new cluster in a temporary
directory, listening on 127.0.0.1 on a free port, stopped and removed afterwards.

PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "alephant"


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are (the newest installed version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


MISSING = None if bin_dir() else "PostgreSQL binaries (initdb, pg_ctl) are not installed: run `make postgres`"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """`with Postgres() as pg: pg.create_database("lake")` -> ducklake:postgres://... URL."""

    def __init__(self, durable: bool = False):
        self.durable = durable  # False: fsync off (tests); True: PostgreSQL's defaults (benchmark)
        self.bin = bin_dir()
        if self.bin is None:
            raise RuntimeError(MISSING)
        self.root = Path(tempfile.mkdtemp(prefix="alephant-pg-"))
        self.port = _free_port()
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")

    def start(self) -> "Postgres":
        data = self.root / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  *([] if self.durable else ["--no-sync"]))
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")
        return self

    def create_database(self, name: str) -> str:
        """A new database; returns the store spec of a DuckLake catalogued in it."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)
        return self.url(name)

    def postmaster_pid(self) -> int:
        """The server's main process (the benchmark counts its and its children's CPU time)."""
        return int((self.root / "data" / "postmaster.pid").read_text().split()[0])

    def url(self, name: str) -> str:
        return f"ducklake:postgres://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Postgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
