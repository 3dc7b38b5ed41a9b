"""Layer names that generated code or torch's modules already use are refused at their position."""

from __future__ import annotations

import pytest
from torch import fx, nn

import archspec
from archspec.backends.torch import CompiledNetwork
from archspec.frontend.names import MODULE_ATTRIBUTES, layer_name_problem


def test_the_list_covers_every_public_attribute_of_the_modules_layers_live_in():
    graph_module = fx.GraphModule(nn.Module(), fx.Graph())
    attributes = {*dir(nn.Module), *dir(fx.GraphModule), *dir(nn.ModuleDict), *dir(graph_module)}
    attributes |= set(dir(CompiledNetwork))
    public = {name for name in attributes if not name.startswith("_")}
    assert public <= MODULE_ATTRIBUTES, sorted(public - MODULE_ATTRIBUTES)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("self", r"'self' names the module itself"),
        ("forward", r"'forward' is an attribute of torch's nn.Module"),
        ("training", r"'training' is an attribute"),
        ("state_dict", r"'state_dict' is an attribute"),
        ("T_destination", r"'T_destination' is an attribute"),
        ("float", r"'float' is an attribute"),
        ("keys", r"'keys' is an attribute"),
        ("_modules", r"'_modules' starts with '_'"),
        ("__class__", r"'__class__' starts with '_'"),
        ("lambda", r"'lambda' is a Python keyword"),
    ],
)
def test_reserved_names_are_refused_where_they_are_written(name, reason):
    layer = f"{{name: ok, layers: [{{name: {name}, op: relu}}]}}"
    spec = f"name: t\ninput: [3, 8, 8]\nlayers:\n  - {layer}\n"
    with pytest.raises(archspec.SpecError, match=rf"<spec>:4:32: error: .*{reason}"):
        archspec.load(spec)


@pytest.mark.parametrize("name", ["match", "case", "torch", "nn", "x", "getattr", "input_1", "F"])
def test_names_that_generated_code_can_take(name):
    assert layer_name_problem(name) is None
    spec = f"name: t\ninput: [3, 8, 8]\nlayers:\n  - {{name: {name}, op: relu}}\n"
    model = archspec.compile(spec)
    assert name in dict(model.named_children())
