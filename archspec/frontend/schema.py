"""Generate the JSON Schema of specs from the Pydantic models, for editor completion and checks.

`archspec schema` prints it; `make schema` regenerates the committed copy the repository's
specs name.
"""

from __future__ import annotations

import json
from typing import Any

from archspec import __version__
from archspec.frontend.spec import SpecDocument
from archspec.ops.registry import OPS

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"
EXPRESSION = {"type": "string", "description": "an expression over parameters, e.g. planes * 4"}


def build_schema() -> dict[str, Any]:
    """The document schema, with the loose op entry replaced by one precise variant per op."""
    schema = SpecDocument.model_json_schema()
    definitions: dict[str, Any] = schema["$defs"]
    common = {
        key: value for key, value in definitions["OpLayer"]["properties"].items() if key != "op"
    }
    variants = []
    for name in sorted(OPS):
        op_schema = OPS[name].model_json_schema()
        definitions.update(op_schema.pop("$defs", {}))
        fields = {
            key: _or_expression(value)
            for key, value in op_schema["properties"].items()
            if key != "op"
        }
        definitions[f"op_{name}"] = {
            "type": "object",
            "title": name,
            "description": (OPS[name].__doc__ or "").strip(),
            "properties": {"op": {"const": name}, **common, **fields},
            "required": ["op", *(key for key in op_schema.get("required", []) if key != "op")],
            "additionalProperties": False,
        }
        variants.append({"$ref": f"#/$defs/op_{name}"})
    # `op: "{act}"`: the op is known once parameters are, and its fields are checked then
    definitions["op_computed"] = {
        "type": "object",
        "title": "computed op",
        "description": "an op named by an expression in braces, such as {act}",
        "properties": {"op": {"type": "string", "pattern": "\\{.*\\}"}, **common},
        "required": ["op"],
    }
    variants.append({"$ref": "#/$defs/op_computed"})
    definitions["OpLayer"] = {"title": "OpLayer", "oneOf": variants}
    header = {
        "$schema": SCHEMA_URL,
        "$id": schema_id(),
        "title": "archspec network spec",
        "description": f"A network spec for archspec {__version__} (the archspec-nn package)",
    }
    return {**header, **{key: value for key, value in schema.items() if key not in header}}


def schema_id() -> str:
    """The schema's `$id`: versioned, so that a spec's editor knows which language it checks."""
    return f"urn:archspec-nn:spec-schema:{__version__}"


def _or_expression(field: dict[str, Any]) -> dict[str, Any]:
    """The field, or an expression; a list's items each may be one too (`[in_channels, 1, 1]`)."""
    outer: dict[str, Any] = {
        key: field.pop(key) for key in ("title", "description", "default") if key in field
    }
    return {**outer, "anyOf": [_items_or_expressions(field), EXPRESSION]}


def _items_or_expressions(field: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in field:
        return {**field, "anyOf": [_items_or_expressions(option) for option in field["anyOf"]]}
    if field.get("type") != "array":
        return field
    field = dict(field)
    if "items" in field and isinstance(field["items"], dict):
        field["items"] = {"anyOf": [field["items"], EXPRESSION]}
    if "prefixItems" in field:
        field["prefixItems"] = [{"anyOf": [item, EXPRESSION]} for item in field["prefixItems"]]
    return field


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"
