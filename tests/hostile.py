"""A corpus of hostile inputs, built at run time: every class of failure a spec, an argument, an
output path or a weights file has shown, with several members each.

Each case names the commands it goes through; the contract they are held to is in
test_hostile.py. Specs are generated here rather than committed, so that none is large on disk.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Every command, as `archspec` arguments after the spec; OUT is the output folder.
COMMANDS: dict[str, tuple[str, ...]] = {
    "validate": ("validate",),
    "analyze": ("analyze", "--format", "json"),
    "table": ("analyze",),
    "graph": ("graph", "-o", "OUT/net.mmd"),
    "source": ("compile", "-o", "OUT/net.py"),
    "weights": ("compile", "-o", "OUT/net.pt"),
    "onnx": ("export", "-o", "OUT/net.onnx"),
}
EVERY = tuple(COMMANDS)
#: The commands that stop at the spec (they all load it the same way): a slow hostile spec
#: goes through two, not seven.
LOADING = ("validate", "source")


def spec_of(*layers: str, head: str = "name: net\ninput: [3, 8, 8]\n") -> str:
    return head + "layers:\n" + "".join(f"  - {layer}\n" for layer in layers)


GOOD = spec_of("{name: conv, op: conv2d, out_channels: 4, kernel: 3}")


@dataclass(frozen=True)
class Case:
    """One hostile input and what archspec must do with it."""

    name: str
    #: The spec's text or bytes, or a function that makes the spec path in a folder.
    spec: str | bytes | Callable[[Path], Path]
    #: None: validate and one other command, taken in turn across the corpus (see `CASES`).
    commands: tuple[str, ...] | None = None
    #: Arguments added after the command's own; "DIR" is the case's folder.
    args: tuple[str, ...] = ()
    exit: int = 2
    #: A regular expression the error output must contain.
    message: str = ""
    #: Whether the error points into the spec (`net.yaml:LINE:COL: error:`).
    positioned: bool = True
    #: Files to make in the case's folder before running: name -> builder.
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)


# -- YAML ----------------------------------------------------------------------------------------


def _table_per_instance(items: int, instances: int) -> str:
    table = ", ".join(str(index % 7 + 1) for index in range(items))
    return (
        f"name: net\ninput: [3, 8, 8]\nparams: {{table: [{table}]}}\nblocks:\n  b:\n"
        "    params: {rows: table, k: 0}\n    layers:\n"
        '      - {op: conv2d, out_channels: "rows[k] + in_channels", kernel: 1}\n'
        f"layers:\n  - {{name: s, block: b, repeat: {instances}, "
        'args: {rows: table, k: "i % 7"}}\n'
    )


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n" + GOOD


def _merge_chain(levels: int, first: str) -> str:
    lines = [f"a0: &a0 {first}"]
    lines += [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n" + GOOD


def _block_nesting(levels: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + "  " * levels + "x: 1\n"


YAML_CASES = [
    Case("alias_bomb", _alias_bomb(9), message=r"more than 1000000 YAML nodes"),
    Case("merge_chain", _merge_chain(40, "{x: 1}"), message=r"more than 1000000 YAML nodes"),
    Case("merge_chain_of_empty_maps", _merge_chain(40, "{}"), message=r"YAML nodes"),
    Case("merge_into_itself", "x: &a {<<: *a}\n" + GOOD, message=r"recursive value"),
    Case("list_holding_itself", "x: &a [1, *a]\n" + GOOD, message=r"recursive value"),
    Case("map_holding_itself", "x: &a {k: *a}\n" + GOOD, message=r"recursive value"),
    Case("merge_of_a_scalar", "a: &s 3\nb: {<<: *s}\n" + GOOD, message=r"merge key"),
    Case(
        "sexagesimal_integer",
        spec_of("{op: conv2d, out_channels: 1" + ":59" * 300_000 + ", kernel: 1}"),
        commands=LOADING,
        message=r"a number written with 900,001 characters",
    ),
    Case(
        "integer_beyond_python_digit_limit",
        spec_of("{op: conv2d, out_channels: 1" + "0" * 5000 + ", kernel: 1}"),
        message=r"numbers in a spec have at most 100",
    ),
    Case(
        "huge_integer_in_input",
        "name: n\ninput: [3, 1" + "0" * 5000 + ", 8]\nlayers: [{op: relu}]\n",
        message=r"at most 100",
    ),
    Case("huge_integer_as_key", "? 1" + "0" * 5000 + "\n: 1\n" + GOOD, message=r"at most 100"),
    Case("huge_float", spec_of("{op: dropout, p: 0." + "1" * 5000 + "}"), message=r"at most 100"),
    Case("float_overflow", spec_of("{op: leaky_relu, negative_slope: 1e999}"), message=r"finite"),
    Case("not_a_number", spec_of("{op: batchnorm2d, eps: .nan}"), message=r"finite"),
    Case("flow_nesting", "a: " + "[" * 50_000 + "]" * 50_000 + "\n" + GOOD, message=r"depth"),
    Case("block_nesting", _block_nesting(1000) + GOOD, message=r"deeper|depth"),
    Case(
        "invalid_utf8",
        b"name: n\ninput: [3, 8, 8]\nlayers:\n  - {op: relu, name: \xff\xfe}\n",
        message=r"net\.yaml:4:22: error: the spec is not UTF-8 text",
    ),
    Case(
        "utf16",
        GOOD.encode("utf-16"),
        commands=("validate", "analyze"),
        message=r"not UTF-8",
    ),
    Case("control_character", spec_of('{op: relu, name: "a\x01"}'), message=r"U\+0001"),
    Case("nul_character", spec_of('{op: relu, name: "a\x00"}'), message=r"U\+0000"),
    Case("byte_order_mark", "\ufeff" + GOOD, exit=0),
    Case(
        "python_object_tag",
        spec_of('{op: !!python/object/apply:os.system ["touch DIR/pwned"]}'),
        message=r"tag '!!python/object/apply:os.system' is not allowed",
    ),
    Case("python_name_tag", "x: !!python/name:os.system\n" + GOOD, message=r"is not allowed"),
    Case("custom_tag", spec_of("{op: !relu x}"), message=r"tag '!relu' is not allowed"),
    Case("binary_tag", "x: !!binary aGVsbG8=\n" + GOOD, message=r"is not allowed"),
    Case("timestamp", "when: 2001-12-14\n" + GOOD, message=r"is not allowed"),
    Case("set_tag", "x: !!set {a, b}\n" + GOOD, message=r"is not allowed"),
    Case("two_documents", GOOD + "---\n" + GOOD, message=r"single document|expected"),
    Case("empty_file", "", message=r"the spec is empty"),
    Case("only_a_comment", "# nothing here\n", message=r"the spec is empty"),
    Case("a_list", "- 1\n- 2\n", message=r"a spec is a mapping"),
    Case("a_scalar", "hello\n", message=r"a spec is a mapping.*got a string"),
    Case("duplicate_key", GOOD + "name: again\n", message=r"duplicate key 'name'"),
    Case("unclosed_bracket", "name: n\ninput: [3, 8\n", message=r"YAML syntax"),
    Case("bad_indentation", "name: n\n  input: [3]\n layers: 1\n", message=r"YAML syntax"),
    Case(
        "larger_than_the_limit",
        lambda folder: _write(folder / "net.yaml", "#" + "x" * 9_000_000 + "\n" + GOOD),
        commands=LOADING,
        message=r"spec is larger than 8,000,000 bytes",
        positioned=False,
    ),
    Case(
        "megabyte_name",
        spec_of("{op: relu, name: " + "a" * 1_000_000 + "}"),
        commands=LOADING,
        message=r"at most 128 characters",
    ),
    Case(
        "megabyte_word",
        spec_of("{op: conv2d, out_channels: 4, kernel: 1, padding: " + "a" * 1_000_000 + "}"),
        commands=LOADING,
        message=r"padding",
    ),
]


# -- files that are not specs ---------------------------------------------------------------------


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "net.yaml")
    return folder / "net.yaml"


def _link_to(target: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / "net.yaml").symlink_to(target)
        return folder / "net.yaml"

    return make


def _folder(folder: Path) -> Path:
    (folder / "net.yaml").mkdir()
    return folder / "net.yaml"


def _text_file(folder: Path) -> Path:
    return _write(folder / "net.txt", GOOD)


FILE_CASES = [
    Case("fifo", _fifo, message=r"it is a FIFO, not a regular file", positioned=False),
    Case("link_to_dev_zero", _link_to("/dev/zero"), message=r"character device", positioned=False),
    Case("link_to_dev_null", _link_to("/dev/null"), message=r"character device", positioned=False),
    Case("dangling_link", _link_to("/nowhere/x"), message=r"No such file", positioned=False),
    Case("link_loop", _link_to("net.yaml"), message=r"cannot read spec", positioned=False),
    Case("a_folder", _folder, message=r"it is a directory", positioned=False),
    Case("suffix_txt_is_still_a_path", _text_file, exit=0),
    Case(
        "missing_file",
        lambda folder: folder / "missing.yaml",
        message=r"No such file",
        positioned=False,
    ),
]


# -- expressions -------------------------------------------------------------------------------

EXPRESSION_CASES = [
    Case(
        f"expression_{label}",
        spec_of(f'{{op: conv2d, out_channels: "{expression}", kernel: 1}}'),
        message=message,
    )
    for label, expression, message in [
        ("round_to_a_huge_power", "round(1, -10**15)", r"digits must be between"),
        ("make_divisible_by_zero", "make_divisible(5, 0)", r"divisor must be a positive"),
        ("power_tower", "9 ** 9 ** 9", r"exponent .* is too large"),
        ("huge_product", "10**15 * 10**15", r"larger than"),
        ("int_of_a_long_string", "int('" + "9" * 400 + "')", r"digits"),
        ("shift", "1 << 100000", r"not allowed"),
        ("string_repeat", "'a' * 10**9", r"arithmetic needs numbers"),
        ("nested_parentheses", "(" * 240 + "1" + ")" * 240, r"invalid expression|too deeply"),
        ("import", "__import__('os').system('true')", r"not allowed"),
        ("attribute", "().__class__.__bases__", r"not allowed"),
        ("lambda", "(lambda: 1)()", r"not allowed"),
        ("comprehension", "[x for x in range(10**9)]", r"not allowed"),
        ("walrus", "(x := 5)", r"not allowed"),
        ("long", "1 + " * 200 + "1", r"longer than 500"),
        ("nul", "1\\0", r"invalid expression|not allowed|character"),
        ("float_inf", "float('inf')", r"not a finite number"),
        ("division_by_zero", "1 // 0", r"division by zero"),
        ("unknown_name", "planes * 2", r"unknown name 'planes'"),
        ("min_of_nothing", "min()", r"min\(\)"),
    ]
]


# -- expansion -------------------------------------------------------------------------------------


def _doubling_blocks(levels: int, leaf: str, repeat: str = "") -> str:
    blocks = [
        f"  b{i}: {{layers: [{{block: b{i + 1}}}, {{block: b{i + 1}}}]}}" for i in range(levels)
    ]
    blocks.append(f"  b{levels}: {{layers: [{leaf}]}}")
    head = "name: n\ninput: [3, 8, 8]\nblocks:\n" + "\n".join(blocks) + "\n"
    return head + f"layers:\n  - {{op: relu}}\n  - {{block: b0{repeat}}}\n"


def _chain_of_left_out(count: int) -> str:
    layers = ["{name: l0, op: relu}"]
    layers += [f"{{name: l{i}, op: relu, when: false, inputs: l{i - 1}}}" for i in range(1, count)]
    return spec_of(*layers, f"{{name: end, op: relu, inputs: l{count - 1}}}")


def _cycle(count: int) -> str:
    return spec_of(*(f"{{name: l{i}, op: relu, inputs: l{(i + 1) % count}}}" for i in range(count)))


def _unknown_names(count: int) -> str:
    return spec_of(*(f"{{name: l{i}, op: relu, inputs: x{i}}}" for i in range(count)))


def _left_out_repeated() -> str:
    children = "".join("      - {op: relu, when: false}\n" for _ in range(2000))
    return spec_of("{op: relu}") + "  - repeat: 200000\n    layers:\n" + children


def _freeze_patterns(count: int) -> str:
    patterns = ", ".join(f'"l{i}*"' for i in range(count))
    return f"freeze: [{patterns}]\n" + spec_of(
        "{op: relu}", "{repeat: 100000, layers: [{op: relu}]}"
    )


def _nested_blocks(blocks: int, groups: int) -> str:
    """Blocks that each wrap the next in `groups` nested groups."""
    lines = ["name: n", "input: [3, 8, 8]", "blocks:"]
    for index in range(blocks):
        entry = "{op: relu}" if index == blocks - 1 else f"{{block: b{index + 1}}}"
        for _ in range(groups):
            entry = f"{{layers: [{entry}]}}"
        lines.append(f"  b{index}: {{layers: [{entry}]}}")
    return "\n".join([*lines, "layers: [{block: b0}]"]) + "\n"


def _block_chain(length: int) -> str:
    blocks = [
        f"  b{i}: {{layers: [{'{op: relu}' if i == length - 1 else f'{{block: b{i + 1}}}'}]}}"
        for i in range(length)
    ]
    return (
        "name: n\ninput: [3, 8, 8]\nblocks:\n"
        + "\n".join(blocks)
        + ("\nlayers: [{block: b0, repeat: 2}]\n")
    )


EXPANSION_CASES = [
    Case("blocks_doubling_to_2_40", _doubling_blocks(40, "{op: relu}"), message=r"nest deeper"),
    Case(
        "blocks_doubling_left_out",
        _doubling_blocks(25, "{op: relu, when: false}"),
        commands=("validate",),
        message=r"more than 800,000 entries",
    ),
    Case(
        "blocks_doubling_repeated",
        _doubling_blocks(30, "{op: relu, when: false}", ", repeat: 2"),
        commands=("source",),
        message=r"more than",
    ),
    Case(
        "block_instantiating_itself",
        "name: n\ninput: [3, 8, 8]\nblocks:\n  b: {layers: [{block: b}]}\nlayers: [{block: b}]\n",
        message=r"nest deeper than 32",
    ),
    Case(
        "repeat_a_billion", spec_of("{repeat: 1000000000, layers: [{op: relu}]}"), message=r"repeat"
    ),
    Case(
        "left_out_layers_repeated",
        _left_out_repeated(),
        commands=LOADING,
        message=r"more than 800,000 entries",
    ),
    Case("chain_of_left_out_layers", _chain_of_left_out(20_000), commands=LOADING, exit=0),
    # a long table read by every instance: checked once, not copied per layer
    Case("table_read_by_every_instance", _table_per_instance(200_000, 3_000), exit=0),
    Case("long_cycle", _cycle(20_000), commands=LOADING, message=r"cycle between layers: l0 ->"),
    Case(
        "many_unknown_names",
        _unknown_names(20_000),
        commands=LOADING,
        message=r"stopped after 200 errors",
    ),
    Case(
        "many_freeze_patterns",
        _freeze_patterns(2000),
        commands=LOADING,
        message=r"freeze patterns with wildcards",
    ),
    Case(
        "independent_errors",
        spec_of("{op: conv2dd, out_channels: 4, kernel: 1}", "{op: relu, inputs: {a: 5}}"),
        message=r"unknown op 'conv2dd'(.|\n)*should be a valid list",
    ),
    Case(
        "groups_and_blocks_nested_too_deep",
        _nested_blocks(32, 40),
        message=r"groups and blocks nest more than 64 levels deep",
    ),
    Case(
        "a_chain_of_two_thousand_blocks",
        _block_chain(2000),
        commands=LOADING,
        message=r"blocks nest deeper than 32 levels",
    ),
    Case(
        "strides_multiplied_past_a_float",
        spec_of("{repeat: 2000, layers: [{op: max_pool2d, kernel: 1, stride: 1000000}]}"),
        commands=("validate", "analyze", "table", "graph", "source"),
        exit=0,
    ),
    Case(
        "an_add_of_a_hundred_thousand_inputs",
        spec_of("{name: a, op: relu}", "{op: add, inputs: [" + ", ".join(["a"] * 100_000) + "]}"),
        commands=LOADING,
        message=r"add takes 2 to 1,024 inputs, got 100000",
    ),
    Case(
        "an_output_twice",
        spec_of("{name: a, op: relu}", "{name: b, op: relu, when: false}") + "outputs: [a, b]\n",
        message=r"outputs: layer 'a' is listed twice \(through 'b'\)",
    ),
    Case(
        "the_input_as_output",
        spec_of("{name: a, op: relu}") + "outputs: [input]\n",
        message=r"'input' is the network's input, not a layer",
    ),
    Case(
        "parameters_in_a_circle",
        "params: {a: b, b: a}\n" + spec_of("{op: conv2d, out_channels: a, kernel: 1}"),
        message=r"parameter 'a' uses 'b', which is defined after it",
    ),
]


# -- names -----------------------------------------------------------------------------------------

NAME_CASES = [
    Case(f"layer_named_{name}", spec_of(f"{{name: {name}, op: relu}}"), message=reason)
    for name, reason in [
        ("self", r"'self' names the module itself"),
        ("forward", r"attribute of torch's nn.Module"),
        ("training", r"attribute of torch's nn.Module"),
        ("state_dict", r"attribute of torch's nn.Module"),
        ("_modules", r"starts with '_'"),
        ("T_destination", r"attribute of torch's nn.Module"),
        ("FROZEN_NORMS", r"attribute"),
        ("class", r"Python keyword"),
    ]
] + [
    Case(
        "nested_name_of_a_module_dict_method",
        spec_of("{name: stage, layers: [{name: keys, op: relu}]}"),
        message=r"'keys' is an attribute",
    ),
    Case(
        "names_generated_code_shadows",
        spec_of(
            *(
                f"{{name: {name}, op: relu}}"
                for name in ("torch", "nn", "x", "getattr", "operator", "F")
            )
        ),
        commands=("validate", "source", "weights", "onnx"),
        exit=0,
    ),
]


# -- arguments -------------------------------------------------------------------------------------

PARAMS = "params: {c: 4}\n" + spec_of("{op: conv2d, out_channels: c, kernel: 1}")

ARGUMENT_CASES = (
    [
        Case(
            f"set_{label}",
            PARAMS,
            commands=("validate", "weights"),
            args=("--set", value),
            message=message,
            positioned=False,
        )
        for label, value, message in [
            ("unclosed", "c=[unclosed", r"YAML syntax"),
            ("alias", "c=*x", r"undefined alias"),
            ("python_tag", "c=!!python/object/apply:os.system [true]", r"is not allowed"),
            ("huge_integer", "c=1" + "0" * 5000, r"at most 100"),
            ("infinite", "c=1e999", r"not a finite number"),
            ("mapping", "c={a: 1}", r"a value is a number"),
            ("null", "c=~", r"a value is a number"),
            ("no_value", "c=", r"give a value"),
            ("no_name", "=3", r"expected NAME=VALUE"),
            ("no_equals", "c", r"expected NAME=VALUE"),
            ("unknown_parameter", "d=3", r"the spec has no parameter 'd'"),
            ("control_character", "c=\x01", r"not allowed"),
        ]
    ]
    + [
        Case(
            f"option_{label}",
            GOOD,
            commands=(command,),
            args=arguments,
            message=message,
            positioned=False,
        )
        for label, command, arguments, message in [
            ("batch_huge", "onnx", ("--batch", "100000000"), r"batch size from 1 to"),
            ("batch_30_digits", "onnx", ("--batch", "9" * 30), r"batch size from 1 to"),
            ("batch_negative", "onnx", ("--batch", "-1"), r"batch size|expected one argument"),
            ("opset_7", "onnx", ("--opset", "7"), r"opset 7 is not supported"),
            ("opset_17", "onnx", ("--opset", "17"), r"opset 17 is not supported"),
            ("opset_99", "onnx", ("--opset", "99"), r"opset 99 is not supported"),
            ("opset_0", "onnx", ("--opset", "0"), r"opset 0 is not supported"),
            ("opset_negative", "onnx", ("--opset=-1",), r"opset -1 is not supported"),
            ("opset_words", "onnx", ("--opset", "x"), r"invalid int value"),
            ("input_shape_zero", "analyze", ("--input-shape", "3x0x8"), r"input shape must be"),
            (
                "input_shape_digits",
                "analyze",
                ("--input-shape", "3x" + "9" * 5000),
                r"sizes joined",
            ),
            ("input_shape_words", "analyze", ("--input-shape", "axb"), r"sizes joined by x"),
            ("depth_zero", "graph", ("--depth", "0"), r"expected a depth from 1 to"),
            ("max_memory_words", "weights", ("--max-memory", "lots"), r"expected a size"),
            ("freeze_no_match", "validate", ("--freeze", "nothing*"), r"matches no layer"),
            ("weights_into_source", "source", ("--weights", "DIR/w.pt"), r"holds no weights"),
        ]
    ]
    + [
        # the rank is said first, then the errors it led to, positioned in the spec
        Case(
            f"option_input_shape_{name}",
            GOOD,
            commands=("table",),
            args=("--input-shape", shape),
            message=r"has \d sizes, and the spec's input 3x8x8 has 3: .* at the shape given",
        )
        for name, shape in (("fewer_sizes", "8x8"), ("more_sizes", "3x8x8x8"))
    ]
    + [
        Case(
            "plot_too_deep",
            spec_of("{op: relu}", "{repeat: 10000, layers: [{op: relu}]}"),
            commands=("table",),
            args=("--plot", "OUT/plot.png"),
            message=r"--plot draws at most 10,000 layers",
            positioned=False,
        ),
        Case(
            "plot_of_an_unknown_kind",
            GOOD,
            commands=("table",),
            args=("--plot", "OUT/plot.gif"),
            message=r"cannot tell how to plot",
            positioned=False,
        ),
        Case(
            "input_shape_enormous",
            GOOD,
            commands=("analyze", "table"),
            args=("--input-shape", "3x1000000x1000000"),
            exit=0,
        ),
    ]
)


# -- outputs ---------------------------------------------------------------------------------------


def _output_case(label: str, output: str, message: str) -> list[Case]:
    return [
        Case(
            f"output_{label}_{kind}",
            GOOD,
            commands=(command,),
            args=("-o", output + suffix),
            message=message,
            positioned=False,
            files={
                "taken": lambda folder, suffix=suffix: (folder / f"taken{suffix}").mkdir(),
                "fifo": lambda folder, suffix=suffix: os.mkfifo(folder / f"fifo{suffix}"),
            },
        )
        for kind, command, suffix in [
            ("pt", "weights", ".pt"),
            ("onnx", "onnx", ".onnx"),
            ("mmd", "graph", ".mmd"),
        ]
    ]


OUTPUT_CASES = [
    *_output_case("missing_folder", "DIR/missing/net", r"folder '.*missing' does not exist"),
    *_output_case("a_folder", "DIR/taken", r"it is a folder"),
    *_output_case("name_too_long", "DIR/" + "n" * 300, r"longer than 255 bytes"),
    *_output_case("fifo", "DIR/fifo", r"it exists and is not a regular file"),
    Case(
        "output_at_the_name_limit",
        GOOD,
        commands=("weights",),
        args=("-o", "DIR/" + "n" * 252 + ".pt"),
        exit=0,
    ),
]


# -- memory ----------------------------------------------------------------------------------------

HUGE_LINEAR = "name: n\ninput: [1000000]\nlayers:\n  - {op: linear, out_features: 1000000}\n"
HUGE_INPUT = (
    "name: n\ninput: [3, 1000000, 1000000]\nlayers:\n  - {op: conv2d, out_channels: 1, kernel: 1}\n"
)

#: Attention whose window holds a million tokens: its module indexes every pair of them.
HUGE_WINDOW = spec_of(
    "{op: permute, dims: [0, 2, 3, 1]}",
    "{op: shifted_window_attention, num_heads: 1, window_size: 1024}",
)
#: Window attention over tokens of a sequence a million long: scores of a million squared.
HUGE_ATTENTION = (
    "name: n\ninput: [1000000, 4]\nlayout: LC\nlayers:\n"
    "  - {op: multihead_attention, num_heads: 2}\n"
)

MEMORY_CASES = [
    Case(
        "window_of_a_million_tokens",
        HUGE_WINDOW,
        commands=("weights", "onnx"),
        message=r"needs about .* of memory, and .* is|more than an ONNX file holds",
        positioned=False,
    ),
    Case(
        "window_of_ten_billion_tokens",
        spec_of(
            "{op: permute, dims: [0, 2, 3, 1]}",
            "{op: shifted_window_attention, num_heads: 1, window_size: 100000}",
        ),
        commands=("validate", "source"),
        message=r"holds 10,000,000,000 tokens, over 1,048,576",
    ),
    Case(
        "attention_over_a_million_tokens",
        HUGE_ATTENTION,
        commands=("onnx",),
        message=r"exporting n needs about",
        positioned=False,
    ),
    Case(
        "linear_of_a_trillion_weights",
        HUGE_LINEAR,
        commands=("weights", "onnx"),
        message=r"needs about .* of memory, and .* is|more than an ONNX file holds",
        positioned=False,
    ),
    Case("source_of_a_trillion_weights", HUGE_LINEAR, commands=("source",), exit=0),
    Case(
        "export_of_a_huge_input",
        HUGE_INPUT,
        commands=("onnx",),
        message=r"exporting n needs about",
        positioned=False,
    ),
    Case("compile_of_a_huge_input", HUGE_INPUT, commands=("weights",), exit=0),
    Case(
        "export_batch_of_a_million",
        GOOD,
        commands=("onnx",),
        args=("--batch", "1000000"),
        message=r"needs about",
        positioned=False,
    ),
    Case(
        # the user's ceiling overrides the measured room: torch's first allocation (the
        # example batch, 12 TB) then fails at once, before it touches any memory
        "export_batch_past_a_wrong_ceiling",
        spec_of(
            "{name: conv, op: conv2d, out_channels: 4, kernel: 3}",
            head="name: net\ninput: [3, 1000, 1000]\n",
        ),
        commands=("onnx",),
        args=("--batch", "1000000", "--max-memory", "100000T"),
        message=r"ran out of memory",
        positioned=False,
    ),
    Case(
        "a_ceiling_too_low",
        GOOD,
        commands=("weights",),
        args=("--max-memory", "1K"),
        message=r"the --max-memory ceiling",
        positioned=False,
    ),
    Case(
        "too_many_layers_to_compile",
        spec_of("{op: relu}", "{repeat: 60000, layers: [{op: relu}]}"),
        commands=("weights",),
        message=r"at most 50,000",
        positioned=False,
    ),
]


# -- weights files ---------------------------------------------------------------------------------


def _torch_save(value: object) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        import torch

        torch.save(value() if callable(value) else value, folder / "w.pt")

    return make


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def _weights_case(label: str, make: Callable[[Path], None], message: str) -> Case:
    # compile and export read weights alike; each case goes through one of them (see _in_turn)
    return Case(
        f"weights_{label}",
        GOOD,
        commands=("weights",) if len(label) % 2 else ("onnx",),
        args=("--weights", "DIR/w.pt"),
        message=message,
        positioned=False,
        files={"w.pt": make},
    )


def _sparse() -> dict[str, object]:
    import torch

    return {"conv.weight": torch.zeros(4, 3, 3, 3).to_sparse(), "conv.bias": torch.zeros(4)}


def _int_keys() -> dict[object, object]:
    import torch

    return {0: torch.zeros(4, 3, 3, 3), "conv.bias": torch.zeros(4)}


WEIGHTS_CASES = [
    _weights_case("fifo", lambda folder: os.mkfifo(folder / "w.pt"), r"FIFO"),
    _weights_case("folder", lambda folder: (folder / "w.pt").mkdir(), r"directory"),
    _weights_case("dev_zero", lambda folder: (folder / "w.pt").symlink_to("/dev/zero"), r"device"),
    _weights_case("missing", lambda folder: None, r"No such file or directory"),
    _weights_case("sparse_tensor", _torch_save(_sparse), r"sparse"),
    _weights_case("integer_keys", _torch_save(_int_keys), r"key"),
    _weights_case(
        "pickle_that_runs_code",
        lambda folder: (folder / "w.pt").write_bytes(pickle.dumps(_Boom())),
        r"cannot read weights",
    ),
    _weights_case(
        "random_bytes",
        lambda folder: (folder / "w.pt").write_bytes(os.urandom(4096)),
        r"cannot read weights",
    ),
    _weights_case(
        "empty_file", lambda folder: (folder / "w.pt").write_bytes(b""), r"cannot read weights"
    ),
    _weights_case(
        "sparse_file_of_a_terabyte",
        lambda folder: os.truncate(_write(folder / "w.pt", b""), 2**40),
        r"needs about .* of memory",
    ),
]


def _in_turn(cases: list[Case]) -> list[Case]:
    """Each case without commands of its own goes through `validate` and one more command, the
    others taken in turn: every command meets every class of input, in a third of the time
    that running all seven on every case takes."""
    others = [command for command in EVERY if command != "validate"]
    turned = []
    for index, case in enumerate(cases):
        if case.commands is None:
            case = replace(case, commands=("validate", others[index % len(others)]))
        turned.append(case)
    return turned


CASES = _in_turn(
    [
        *YAML_CASES,
        *FILE_CASES,
        *EXPRESSION_CASES,
        *EXPANSION_CASES,
        *NAME_CASES,
        *ARGUMENT_CASES,
        *OUTPUT_CASES,
        *MEMORY_CASES,
        *WEIGHTS_CASES,
    ]
)
