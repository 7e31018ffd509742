"""Reading the YAML files users give us (rules, price lists): one error style for all."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import AlephantError


def read_yaml(path: str | Path, error: type[AlephantError]) -> tuple[Any, str]:
    """(the parsed document, its name for messages); `error` is raised for an unreadable file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    return parse_yaml(text, str(path), error), str(path)


def parse_yaml(text: str, source: str, error: type[AlephantError]) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None
