"""The language features that scale and shape whole architectures: variants, named outputs,
name templates, splicing blocks, relative and computed inputs, torch-style names."""

from __future__ import annotations

import pytest

import archspec
from archspec.cli import main
from archspec.errors import SpecError, UsageError

SCALED = """\
name: scaled
input: [3, 32, 32]
params: {depth: 1, width: 1.0}
variants:
  n: {depth: 1, width: 0.25}
  s: {depth: 2, width: 0.5}
layers:
  - {op: conv2d, out_channels: "int(64 * width)", kernel: 3, padding: 1}
  - name: body
    repeat: depth
    layers: [{op: conv2d, out_channels: in_channels, kernel: 3, padding: 1}]
"""


def test_a_variant_replaces_parameters_and_set_replaces_the_variant():
    assert archspec.load(SCALED).params == {"depth": 1, "width": 1.0}
    small = archspec.load(SCALED, variant="s")
    assert small.params == {"depth": 2, "width": 0.5}
    assert small.network.layer("0").op.out_channels == 32
    assert [layer.name for layer in small.network.layers][-2:] == ["body.0.0", "body.1.0"]
    assert archspec.load(SCALED, {"width": 2.0}, variant="n").params == {"depth": 1, "width": 2.0}


def test_an_unknown_variant_names_the_ones_there_are():
    with pytest.raises(UsageError, match=r"no variant 'm'; its variants: n, s"):
        archspec.load(SCALED, variant="m")


def test_a_variant_setting_an_undeclared_parameter_is_positioned():
    text = SCALED.replace("s: {depth: 2, width: 0.5}", "s: {depth: 2, widht: 0.5}")
    with pytest.raises(SpecError) as raised:
        archspec.load(text)
    (diagnostic,) = raised.value.diagnostics
    assert "variant 's' sets 'widht', which is not a parameter (did you mean 'width'?)" in str(
        diagnostic
    )
    assert diagnostic.position is not None
    assert diagnostic.position.line == 6


def test_the_command_takes_a_variant(tmp_path, capsys):
    spec = tmp_path / "scaled.yaml"
    spec.write_text(SCALED)
    assert main(["validate", str(spec), "--variant", "n"]) == 0
    assert "2 layers" in capsys.readouterr().out
    assert main(["validate", str(spec), "--variant", "x"]) == 2
