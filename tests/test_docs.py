"""README.md documents every public view column and every CLI command."""
from __future__ import annotations

import re
from pathlib import Path

from alephant_otel.cli import main
from alephant_otel.store.views import VIEWS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_documents_every_view_column():
    for name, (_, _, columns) in VIEWS.items():
        section = README.split(f"#### `{name}`", 1)[1].split("####", 1)[0]
        for column in columns:
            assert re.search(rf"\| `{column}` \|", section), f"{name}.{column} not in README"


def test_readme_shows_the_two_commands_and_every_cli_command():
    assert "make run" in README and "make test" in README
    for name in main.commands:
        assert f"alephant-otel {name}" in README, name
