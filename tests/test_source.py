"""Stage `source`: YAML text -> plain data with 1-based positions; hostile YAML is an error."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from timing import within

import archspec
from archspec.errors import Position, SpecError
from archspec.frontend import source
from archspec.frontend.source import parse_yaml, read_source

SPEC = """\
name: net
input: [3, 32, 32]
layers:
  - {op: relu}
  - op: linear
    out_features: 10
"""


def alias_bomb(levels: int) -> str:
    """Billion laughs: each level is a list of nine aliases of the level before."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


# -- data and positions ----------------------------------------------------------------------


def test_data_is_plain_python():
    document = parse_yaml(SPEC, "net.yaml")
    assert document.data == {
        "name": "net",
        "input": [3, 32, 32],
        "layers": [{"op": "relu"}, {"op": "linear", "out_features": 10}],
    }
    assert document.file == "net.yaml"
    assert document.text == SPEC


@pytest.mark.parametrize(
    ("path", "line", "column"),
    [
        ((), 1, 1),
        (("name",), 1, 7),
        (("input",), 2, 8),
        (("input", 0), 2, 9),
        (("input", 2), 2, 16),
        (("layers",), 4, 3),
        (("layers", 0), 4, 5),
        (("layers", 0, "op"), 4, 10),
        (("layers", 1), 5, 5),
        (("layers", 1, "op"), 5, 9),
        (("layers", 1, "out_features"), 6, 19),
    ],
)
def test_value_positions_are_one_based(path, line, column):
    document = parse_yaml(SPEC, "net.yaml")
    assert document.position(path) == Position("net.yaml", line, column)


@pytest.mark.parametrize(
    ("path", "line", "column"),
    [
        (("name",), 1, 1),
        (("layers",), 3, 1),
        (("layers", 0, "op"), 4, 6),
        (("layers", 1, "op"), 5, 5),
        (("layers", 1, "out_features"), 6, 5),
    ],
)
def test_key_positions_are_one_based(path, line, column):
    document = parse_yaml(SPEC, "net.yaml")
    assert document.key_position(path) == Position("net.yaml", line, column)


def test_position_falls_back_to_the_nearest_ancestor():
    document = parse_yaml(SPEC, "net.yaml")
    assert document.position(("layers", 1, "kernel")) == Position("net.yaml", 5, 5)
    assert document.key_position(("layers", 1, "kernel")) == Position("net.yaml", 5, 5)
    assert document.key_position(("layers", 1, "op")) == Position("net.yaml", 5, 5)
    assert document.position(("layers", 1, "op")) == Position("net.yaml", 5, 9)


def test_error_renders_compiler_style():
    document = parse_yaml(SPEC, "net.yaml")
    value = document.error(("layers", 1, "out_features"), "bad value")
    key = document.error(("layers", 1, "out_features"), "bad key", at_key=True)
    assert str(value) == "net.yaml:6:19: error: bad value"
    assert str(key) == "net.yaml:6:5: error: bad key"


def test_text_is_given_the_file_name_spec():
    document = read_source(SPEC)
    assert document.file == "<spec>"
    assert document.position(("name",)) == Position("<spec>", 1, 7)


def test_path_is_read_from_disk(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(SPEC)
    for given in (path, str(path)):
        document = read_source(given)
        assert document.file == str(path)
        assert document.data["name"] == "net"


# -- errors ----------------------------------------------------------------------------------


def test_duplicate_key_names_the_first_line():
    with pytest.raises(SpecError, match=r"duplicate key 'a' \(first given at line 1\)") as caught:
        parse_yaml("a: 1\nb: 2\na: 3\n", "net.yaml")
    assert str(caught.value) == "net.yaml:3:1: error: duplicate key 'a' (first given at line 1)"


def test_duplicate_key_in_a_nested_mapping():
    text = "layers:\n  - op: relu\n    name: a\n    name: b\n"
    with pytest.raises(
        SpecError, match=r"duplicate key 'name' \(first given at line 3\)"
    ) as caught:
        parse_yaml(text, "net.yaml")
    assert str(caught.value).startswith("net.yaml:4:5: error: ")


def test_the_same_key_in_different_mappings_is_fine():
    document = parse_yaml("a: {x: 1}\nb: {x: 2}\n")
    assert document.data == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1\n", "<spec>:2:1: error: YAML syntax: did not find expected ',' or ']'"),
        ("a: 1\n b: 2\n", "<spec>:2:3: error: YAML syntax: "),
        ("", "<spec>:1:1: error: the spec is empty"),
        ("# only a comment\n", "<spec>:1:1: error: the spec is empty"),
        ("a: 1\n---\nb: 2\n", "<spec>:2:1: error: YAML syntax: but found another document"),
        ("? [1, 2]\n: 3\n", "<spec>:1:3: error: mapping keys must be plain names"),
    ],
)
def test_syntax_errors_have_positions(text, message):
    with pytest.raises(SpecError, match=f"^{re.escape(message)}"):
        parse_yaml(text)


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "net.yaml"
    with pytest.raises(SpecError, match=r"cannot read spec '.*nowhere/net\.yaml': No such file"):
        read_source(missing)
    with pytest.raises(SpecError, match=r"cannot read spec '.*nowhere/net\.yaml'"):
        archspec.load(str(missing))


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SpecError, match=r"net\.yaml:1:7: error: the spec is not UTF-8 text"):
        read_source(path)


def test_text_larger_than_the_limit(monkeypatch):
    monkeypatch.setattr(source, "MAX_SOURCE_BYTES", 100)
    with pytest.raises(SpecError, match=r"spec is larger than 100 bytes"):
        parse_yaml("a: " + "x" * 200 + "\n")


# -- hostile YAML ----------------------------------------------------------------------------

UNSAFE_TAGS = {
    "python-name": 'a: !!python/name:os.system ""\n',
    "python-name-bare": "a: !!python/name:os.system\n",
    "apply-on-scalar": 'a: !!python/object/apply:os.system "echo"\n',
    "apply-on-sequence": 'a: !!python/object/apply:os.system ["echo"]\n',
    "object-on-mapping": "a: !!python/object:os.system {x: 1}\n",
    "set": "a: !!set {x, y}\n",
    "omap": "a: !!omap [x: 1]\n",
    "local-tag-on-sequence": "a: !custom [1, 2]\n",
    "local-tag-on-scalar": "a: !custom 3\n",
    "binary": "a: !!binary aGVsbG8=\n",
}


@pytest.mark.parametrize("text", UNSAFE_TAGS.values(), ids=list(UNSAFE_TAGS))
def test_object_tags_are_rejected(text):
    with pytest.raises(SpecError, match=r"<spec>:1:4: error: YAML tag '!.*' is not allowed"):
        parse_yaml(text)


@pytest.mark.parametrize(
    "template",
    [
        'name: !!python/object/apply:os.system ["touch {marker}"]\n',
        'name: !!python/object/new:os.system ["touch {marker}"]\n',
        'name: !!python/object/apply:subprocess.call [["touch", "{marker}"]]\n',
        "name: !!python/object/apply:os.system\n  args: ['touch {marker}']\n",
        'name: !!python/object/apply:os.system "touch {marker}"\n',
    ],
)
def test_object_tags_execute_nothing(tmp_path, template):
    marker = tmp_path / "pwned"
    text = template.format(marker=marker) + "input: [3]\nlayers: [{op: relu}]\n"
    spec_file = tmp_path / "net.yaml"
    spec_file.write_text(text)
    # Whether or not the tag is reported, loading must never run the command.
    with contextlib.suppress(SpecError):
        parse_yaml(text)
    with contextlib.suppress(archspec.ArchspecError):
        archspec.load(text)
    with contextlib.suppress(archspec.ArchspecError):
        archspec.load(Path(spec_file))
    assert not marker.exists()


def test_merge_keys_copy_the_anchor():
    text = "defaults: &d {kernel: 3, stride: 1}\nlayer:\n  <<: *d\n  stride: 2\n"
    document = parse_yaml(text, "net.yaml")
    assert document.data["layer"] == {"kernel": 3, "stride": 2}
    assert document.data["defaults"] == {"kernel": 3, "stride": 1}
    assert document.key_position(("layer", "stride")) == Position("net.yaml", 4, 3)


def test_merge_of_several_mappings_prefers_the_first():
    text = "a: &a {k: 1, x: 1}\nb: &b {k: 2, y: 2}\nc:\n  <<: [*a, *b]\n"
    assert parse_yaml(text).data["c"] == {"k": 1, "x": 1, "y": 2}


def test_merge_after_explicit_keys_keeps_the_explicit_value():
    text = "a: &a {k: 1, x: 1}\nc:\n  k: 5\n  <<: *a\n"
    assert parse_yaml(text).data["c"] == {"k": 5, "x": 1}


def test_merge_override_value_position_is_the_override():
    text = "defaults: &d {kernel: 3, stride: 1}\nlayer:\n  <<: *d\n  stride: 2\n"
    document = parse_yaml(text, "net.yaml")
    assert document.position(("layer", "stride")) == Position("net.yaml", 4, 11)


def test_merge_key_needs_a_mapping():
    with pytest.raises(SpecError, match=r"<spec>:3:7: error: a merge key '<<' takes a mapping"):
        parse_yaml("a: 1\nb:\n  <<: 3\n")


def test_merge_keys_in_a_spec():
    text = (
        "name: net\ninput: [3, 8, 8]\nlayers:\n"
        "  - &conv {op: conv2d, out_channels: 4, kernel: 3, padding: 1}\n"
        "  - {<<: *conv, out_channels: 8}\n"
    )
    conv = archspec.load(text).network.layer("1").op
    assert (conv.out_channels, conv.kernel, conv.padding) == (8, (3, 3), (1, 1))


def test_alias_bomb_is_stopped_by_the_node_limit(monkeypatch):
    monkeypatch.setattr(source, "MAX_NODES", 10_000)
    with within(2.0), pytest.raises(SpecError, match=r"more than 10000 YAML nodes"):
        parse_yaml(alias_bomb(9))


def test_alias_bomb_is_rejected_quickly_at_the_real_limit():
    with within(2.0), pytest.raises(SpecError, match=r"YAML nodes"):
        parse_yaml(alias_bomb(9))


def test_values_reached_through_an_alias_have_positions():
    document = parse_yaml("a: &x {k: 1}\nb: *x\n", "net.yaml")
    # Either the alias or the anchored text is a useful place to report; the document root is not.
    assert document.position(("b",)) in {Position("net.yaml", 2, 4), Position("net.yaml", 1, 4)}
    assert document.position(("b", "k")) in {
        Position("net.yaml", 2, 4),
        Position("net.yaml", 1, 11),
    }


def test_small_aliases_are_fine():
    document = parse_yaml(alias_bomb(2))
    assert len(document.data["a2"]) == 9
    assert document.data["a2"][8] == [["lol"] * 9] * 9


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 150 + "]" * 150,
        "a: " + "{a: " * 150 + "1" + "}" * 150,
        "".join("  " * depth + "a:\n" for depth in range(150)),
    ],
    ids=["sequences", "flow-mappings", "block-mappings"],
)
def test_nesting_deeper_than_the_limit(text):
    with within(2.0), pytest.raises(SpecError, match=r"nests deeper than 100 levels"):
        parse_yaml(text)


def test_nesting_at_the_limit_is_fine():
    document = parse_yaml("a: " + "[" * (source.MAX_DEPTH - 1) + "]" * (source.MAX_DEPTH - 1))
    value = document.data["a"]
    for _ in range(source.MAX_DEPTH - 2):
        value = value[0]
    assert value == []


def test_extreme_nesting_is_an_error_not_a_crash():
    with within(2.0), pytest.raises(SpecError, match=r"nest"):
        parse_yaml("a: " + "[" * 100_000 + "]" * 100_000)
