"""The spec document as Pydantic models, and the translation of validation errors to positions."""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
)

from archspec.errors import Diagnostic
from archspec.frontend.names import layer_name_problem
from archspec.ops.base import MAX_DIM
from archspec.validation import SourcePath, field_messages
from archspec.validation import real_path as _real_path

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Names become attributes and dotted state_dict keys; past this length they are a mistake.
MAX_NAME_LENGTH = 128

if TYPE_CHECKING:
    from archspec.frontend.source import SourceDocument


def _not_a_keyword(name: str) -> str:
    # layer names become attribute names in generated PyTorch code: `self.def` cannot exist
    if keyword.iskeyword(name):
        raise ValueError(f"{name!r} is a Python keyword; choose another name")
    return name


Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
        description="a name: letters, digits and _",
    ),
    AfterValidator(_not_a_keyword),
]


def is_name_template(name: str) -> bool:
    """`denselayer{i + 1}`: a name computed per instance, checked once it is."""
    return "{" in name or "}" in name


def _usable_layer_name(name: str) -> str:
    problem = None if is_name_template(name) else layer_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


#: A layer's name, which becomes a module attribute in torch and in generated code, or a
#: template of names (`denselayer{i + 1}`) for the instances of a repeat.
LayerName = Annotated[
    str,
    Field(
        max_length=MAX_NAME_LENGTH,
        description="a layer name: letters, digits and _, single hyphens between them "
        "(block1-0); or a template with expressions in braces, {i} the instance",
    ),
    AfterValidator(_usable_layer_name),
]
#: A parameter value: a number, a boolean, a string (an expression or a word) or a list of them.
Value = int | float | bool | str | list[Any]
#: An integer, or an expression over parameters that gives one.
IntOrExpression = Annotated[int, Strict()] | str


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) or type(value) is int else value


InputNames = Annotated[list[str], BeforeValidator(_as_list, json_schema_input_type=str | list[str])]
#: What a layer reads: names (`conv1`, `stage.1`), templates giving one (`"{skip}"`), or entries
#: back in the same sequence (-1 the previous one, -2 the one before it).
InputRefs = Annotated[
    list[str | Annotated[int, Strict()]],
    BeforeValidator(_as_list, json_schema_input_type=str | int | list[str | int]),
]


def _size_or_expression(value: int | str) -> int | str:
    if isinstance(value, int) and not 1 <= value <= MAX_DIM:
        bound = "greater than or equal to 1" if value < 1 else f"at most {MAX_DIM}"
        raise ValueError(f"input should be {bound}, got {value}")
    return value


#: A size of the input shape: a number, or an expression over parameters (`size`).
InputSize = Annotated[Annotated[int, Strict()] | str, AfterValidator(_size_or_expression)]


class LayerBase(BaseModel):
    """Keys every layer entry may have."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: LayerName | None = Field(
        None, description="unnamed layers are numbered 0, 1, 2 ... in their group"
    )
    inputs: InputRefs | None = Field(
        None,
        description="layers (or `input`) this one reads: names, templates ({skip}), or entries "
        "back (-1 the previous, -2 the one before); default: the previous layer",
    )
    when: bool | str | None = Field(
        None,
        description="condition over parameters; when false the layer is left out and "
        "whatever named it reads its input instead",
    )


class OpLayer(LayerBase):
    """One op; its own fields (out_channels, kernel, ...) are checked after expressions run."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    op: str


class GroupLayer(LayerBase):
    """A named sequence of layers, like nn.Sequential."""

    layers: list[LayerEntry] = Field(min_length=1)
    repeat: IntOrExpression | None = Field(
        None, description="copies of the group, named .0, .1, ...; unnamed: spliced into the parent"
    )


class BlockLayer(LayerBase):
    """An instance of a block defined under `blocks:`."""

    block: Name
    args: dict[Name, Value] = Field(default_factory=dict)
    first: dict[Name, Value] = Field(
        default_factory=dict, description="arguments that differ for the first repeated instance"
    )
    repeat: IntOrExpression | None = Field(
        None, description="instances, named .0, .1, ...; unnamed: spliced into the parent"
    )
    splice: bool = Field(
        False,
        description="the block's layers join the enclosing sequence and its numbering, "
        "without a level of their own (features.0, features.1, ... from conv-bn-relu blocks)",
    )


def _layer_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, kind in (("op", "OpLayer"), ("block", "BlockLayer"), ("layers", "GroupLayer")):
            if key in value:
                return kind
        return None
    if isinstance(value, OpLayer | GroupLayer | BlockLayer):
        return type(value).__name__
    return None


LayerEntry = Annotated[
    Annotated[OpLayer, Tag("OpLayer")]
    | Annotated[GroupLayer, Tag("GroupLayer")]
    | Annotated[BlockLayer, Tag("BlockLayer")],
    Discriminator(
        _layer_kind,
        custom_error_type="layer_kind",
        custom_error_message="a layer needs one of the keys `op`, `block` or `layers`",
    ),
]


class ConditionalOutput(BaseModel):
    """A named output that is there only when its condition holds (an optional head)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    layer: str = Field(description="the layer whose output this is")
    when: bool | str = Field(True, description="condition over parameters (aux_loss)")


class BlockDefinition(BaseModel):
    """A reusable, parameterised sequence of layers."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    description: str = ""
    params: dict[Name, Value | None] = Field(
        default_factory=dict, description="parameters and their defaults; null means required"
    )
    layers: list[LayerEntry] = Field(min_length=1)


class SpecDocument(BaseModel):
    """A whole spec file."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: Name
    description: str = ""
    input: list[InputSize] = Field(
        min_length=1,
        max_length=4,
        description="input shape without the batch: [F], [C, L], [C, H, W] or [C, T, H, W]; "
        "a size may be an expression over parameters",
    )
    layout: Annotated[str, Field(pattern=r"^[CFLTHW]{1,4}$")] | None = Field(
        None,
        description="the input's layout, one letter per axis: C channels or features, L T H W "
        "positions (LC: tokens, HWC: channels last); default channels first, by rank",
    )
    params: dict[Name, Value] = Field(default_factory=dict)
    variants: dict[Name, dict[Name, Value]] = Field(
        default_factory=dict,
        description="named sets of parameter values (n: {depth: 0.33}), chosen with --variant",
    )
    blocks: dict[Name, BlockDefinition] = Field(default_factory=dict)
    layers: list[LayerEntry] = Field(min_length=1)
    outputs: InputNames | dict[Name, str | ConditionalOutput] | None = Field(
        None,
        description="layers whose outputs the network returns; a mapping names them "
        "({out: classifier, aux: {layer: aux_classifier, when: aux_loss}}) and the module "
        "returns a dict",
    )
    freeze: InputNames = Field(
        default_factory=list, description="dotted-name patterns (layer1, layer1.*) of frozen layers"
    )


def validation_diagnostics(
    error: ValidationError,
    source: SourceDocument,
    base: SourcePath = (),
    context: str = "",
    fields: dict[str, Any] | None = None,
    hint: Callable[[Any], str] | None = None,
) -> list[Diagnostic]:
    """Translate pydantic errors into positioned diagnostics, one per distinct place.

    Under a layer (`base` set), the alternatives pydantic tries for one field (an int, a pair,
    a word) are joined into one diagnostic at that field.
    """
    data = source.data
    for part in base:
        data = data[part]
    found = field_messages(
        error,
        data,
        context,
        list(fields) if fields is not None else None,
        hint,
        _fields_at,
        per_field=bool(base),
    )
    return [
        Diagnostic(
            message,
            source.key_position((*base, *place))
            if kind == "key"
            else source.position((*base, *place)),
        )
        for place, kind, message in found
    ]


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """The fields of the document model that holds the last key of a pydantic location."""
    model: type[BaseModel] = SpecDocument
    for part in loc[:-1]:
        if part == "blocks" and model is SpecDocument:
            model = BlockDefinition
        elif isinstance(part, str) and part in _LAYER_MODELS:
            model = _LAYER_MODELS[part]
    return [name for name in model.model_fields if name != "op"]


_LAYER_MODELS: dict[str, type[BaseModel]] = {
    "OpLayer": OpLayer,
    "GroupLayer": GroupLayer,
    "BlockLayer": BlockLayer,
}


def broken_entries(error: ValidationError, data: Any) -> set[SourcePath] | None:
    """The layer entries (`layers[i]` at any depth, in blocks too) that hold the schema errors,
    outermost only; None when an error lies outside every layer entry."""
    broken: set[SourcePath] = set()
    for item in error.errors(include_url=False):
        path, _ = _real_path(data, item["loc"], item["type"])
        entry = next(
            (
                path[:end]
                for end in range(len(path), 1, -1)
                if isinstance(path[end - 1], int) and path[end - 2] == "layers"
            ),
            None,
        )
        if entry is None:
            return None
        broken.add(entry)
    return {
        path
        for path in broken
        if not any(path[: len(other)] == other and path != other for other in broken)
    }


def with_stand_ins(data: Any, broken: set[SourcePath]) -> Any:
    """`data` with each broken entry replaced by a valid one of the same name, so the rest of
    the spec can be checked; the containers on the way are copied, `data` is left as it is."""
    for path in broken:
        data = _replaced(data, path, _stand_in(_at(data, path)))
    return data


def _stand_in(entry: Any) -> dict[str, Any]:
    name = entry.get("name") if isinstance(entry, dict) else None
    usable = isinstance(name, str) and not layer_name_problem(name)
    return {"op": "identity", **({"name": name} if usable else {})}


def _at(data: Any, path: SourcePath) -> Any:
    for part in path:
        data = data[part]
    return data


def _replaced(node: Any, path: SourcePath, value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replaced(node[head], tuple(rest), value)  # type: ignore[index]
    return copy
