"""semconv/ is the single source of truth: generated files must match it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from alephant_otel import semconv

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("generate_semconv", ROOT / "tools" / "generate_semconv.py")
generator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generator)


def test_generated_files_are_up_to_date():
    for path, text in generator.outputs().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `make generate`"


def test_registry_has_the_required_attributes_in_definition_2_format():
    doc = yaml.safe_load((ROOT / "semconv" / "registry" / "alephant.yaml").read_text())
    assert doc["file_format"] == "definition/2"
    keys = {a["key"] for a in doc["attributes"]}
    for required in ["workspace.id", "department.id", "agent.id", "virtual_key.id", "session.id", "session.path",
                     "session.name", "run.id", "request.id", "prompt.id", "prompt.version", "property", "step.kind"]:
        assert f"alephant.{required}" in keys
    for a in doc["attributes"]:
        assert {"key", "type", "stability", "brief"} <= a.keys(), a["key"]
    assert next(a for a in doc["attributes"] if a["key"] == "alephant.property")["type"] == "template[string]"


def test_every_header_maps_to_a_registry_attribute():
    for header, attr in semconv.HEADER_ATTRIBUTES.items():
        assert attr in semconv.CONTEXT_ATTRIBUTES, header
    assert semconv.HEADER_ATTRIBUTES["x-alephant-agent"] == semconv.AGENT_ID
    for prefix, attr_prefix in semconv.HEADER_PREFIXES:
        assert attr_prefix == semconv.PROPERTY_PREFIX


def test_the_generator_detects_a_stale_file(tmp_path, monkeypatch):
    stale = tmp_path / "attributes.md"
    stale.write_text("old")
    monkeypatch.setattr(generator, "MD_OUT", stale)
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    monkeypatch.setattr(generator, "PY_OUT", tmp_path / "gen.py")
    assert generator.main(["--check"]) == 1
