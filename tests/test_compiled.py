"""The per-span modules run compiled (setup.py, COMPILED), and compiled from their current source:
an edited module whose old compiled copy is still next to it is not what Python runs."""
from __future__ import annotations

import importlib
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPILED = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")["COMPILED"]


def _module(path: str) -> str:
    name = Path(path).relative_to("src").with_suffix("").as_posix().replace("/", ".")
    return name.removesuffix(".__init__")


@pytest.mark.parametrize("path", COMPILED, ids=_module)
def test_the_module_is_compiled_from_its_source(path):
    module = importlib.import_module(_module(path))
    built = Path(module.__file__)
    assert built.suffix == ".so", (
        f"{module.__name__} runs as Python ({built.name}): `make build` compiles it (needs Cython and a C compiler)")
    source = ROOT / path
    assert built.stat().st_mtime >= source.stat().st_mtime, (
        f"{built.name} is older than {source.name}: Python runs the old code; `make build` recompiles it")


def test_compiled_code_is_the_source_code():
    """A compiled module's tracebacks point at its .py lines. (That its module globals can still
    be replaced is what test_bad_input.mapper_fails_on relies on.)"""
    from alephant_otel.mapping import span

    with pytest.raises(span.InvalidSpan) as exc:
        span.span_ids(type("S", (), {"trace_id": b"", "span_id": b"", "parent_span_id": b""})())
    frame = exc.traceback[-1]
    assert Path(str(frame.path)).name == "span.py"
    assert "raise InvalidSpan" in str(frame.statement)
