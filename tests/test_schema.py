"""The committed JSON Schema is generated from the models and accepts every example."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

import archspec
from archspec.cli import main
from archspec.frontend.schema import render_schema
from archspec.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas" / "archspec.schema.json"
EXAMPLES = sorted((ROOT / "archspec" / "zoo").glob("*.yaml"))
SCHEMA_COMMENT = "# yaml-language-server: $schema=../../schemas/archspec.schema.json"


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == render_schema(), (
        "schemas/archspec.schema.json is stale: run `make schema`"
    )


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


def test_schema_has_a_variant_per_op() -> None:
    definitions = json.loads(SCHEMA_FILE.read_text())["$defs"]
    assert {f"op_{name}" for name in OPS} <= set(definitions)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_starts_with_schema_comment_and_validates(example: Path) -> None:
    text = example.read_text()
    assert text.splitlines()[0] == SCHEMA_COMMENT
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [error.message for error in validator.iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_schema_rejects_misspelt_op_field() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    spec = {"name": "n", "input": [3, 8, 8], "layers": [{"op": "conv2d", "kernal": 3}]}
    assert not validator.is_valid(spec)


def test_schema_id_names_the_version() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$id"] == f"urn:archspec-nn:spec-schema:{archspec.__version__}"
    assert list(schema)[:3] == ["$schema", "$id", "title"]


def test_schema_command_prints_and_writes_the_schema(capsys, tmp_path) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text()
    assert main(["schema", "-o", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text() == SCHEMA_FILE.read_text()
