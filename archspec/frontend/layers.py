"""A layer as expansion builds it, and the check of its op's fields against the document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archspec.errors import SpecError, suggest
from archspec.frontend.spec import validation_diagnostics
from archspec.ops.base import Op
from archspec.ops.registry import OPS, build_op
from archspec.validation import SourcePath

if TYPE_CHECKING:
    from archspec.frontend.source import SourceDocument


@dataclass
class LayerDraft:
    """One leaf layer while the spec expands: its inputs, op and frozen flag are filled in as
    names resolve and patterns apply; `build_network` then makes it an `ir.LayerDraft`."""

    name: str  # dotted path: layer1.0.conv1
    op_name: str
    fields: dict[str, Any]  # evaluated; a Deferred waits for the input shape (in_channels)
    source_path: SourcePath  # where the layer is written, for error positions
    op: Op | None = None  # validated now, or during analysis when a field was deferred
    inputs: tuple[str, ...] = ()
    frozen: bool = False

    @property
    def origin(self) -> SourcePath:
        """Where the layer is written: what `SourceOrigins` turns into a position."""
        return self.source_path


def validate_op(layer: LayerDraft, source: SourceDocument, env: Mapping[str, Any]) -> Op:
    """Check a layer's evaluated fields against its op's model."""
    op_class = OPS[layer.op_name]

    def hint(value: Any) -> str:
        if isinstance(value, str) and value.isidentifier():
            return f"; {value!r} is not a parameter{suggest(value, env)}"
        return ""

    try:
        return build_op(layer.op_name, layer.fields)
    except ValidationError as error:
        fields = [key for key in op_class.model_fields if key != "op"]
        context = f"layer {layer.name!r}: {layer.op_name} "
        raise SpecError.collect(
            validation_diagnostics(
                error, source, layer.source_path, context, dict.fromkeys(fields), hint
            )
        ) from error
