"""How CLI commands find a server that holds the store file.

DuckDB lets one process hold a file for writing. While `serve` runs, it writes
`<db>.server.json` (mode 0600: address and a random token) next to the file; query commands
read it and send their (read-only) SQL to the server instead of opening the file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerInfo:
    pid: int
    grpc_address: str
    token: str


def info_path(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".server.json")


def write_info(db_path: str | Path, grpc_address: str, token: str) -> ServerInfo:
    info = ServerInfo(os.getpid(), grpc_address, token)
    path = info_path(db_path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info.__dict__, f)
    return info


def read_info(db_path: str | Path) -> ServerInfo | None:
    try:
        data = json.loads(info_path(db_path).read_text())
        return ServerInfo(int(data["pid"]), str(data["grpc_address"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_info(db_path: str | Path, info: ServerInfo) -> None:
    current = read_info(db_path)
    if current is not None and current.token == info.token:
        info_path(db_path).unlink(missing_ok=True)
