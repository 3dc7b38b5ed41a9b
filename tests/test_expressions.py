"""Stage `expressions`: the safe evaluator, checked against Python's own arithmetic."""

from __future__ import annotations

import math
import operator
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from timing import within

from archspec.errors import ExpressionError
from archspec.frontend.expressions import (
    MAX_MAGNITUDE,
    Deferred,
    evaluate,
    evaluate_value,
    make_divisible,
)
from archspec.late import is_late, resolve_value

PARAMS = {"a": 7, "b": -3, "planes": 64, "zero": 0}
#: With a list parameter: a stage table's column, one row of which is a pair.
WITH_LISTS = {**PARAMS, "sizes": [16, 32, [3, 5]]}
ARITHMETIC = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "%": operator.mod,
}

# An arithmetic tree drawn as (text, value, largest magnitude of any intermediate result).
Tree = tuple[str, int, int]


def _number(value: int) -> Tree:
    return (f"({value})" if value < 0 else str(value), value, abs(value))


def _parameter(name: str) -> Tree:
    return (name, PARAMS[name], abs(PARAMS[name]))


def _combine(parts: tuple[Tree, str, Tree]) -> Tree:
    (left, left_value, left_big), symbol, (right, right_value, right_big) = parts
    if symbol in ("//", "%") and right_value == 0:
        symbol = "+"  # keep the tree free of division by zero
    value = ARITHMETIC[symbol](left_value, right_value)
    return (f"({left} {symbol} {right})", value, max(left_big, right_big, abs(value)))


leaves = st.integers(-1000, 1000).map(_number) | st.sampled_from(sorted(PARAMS)).map(_parameter)
trees = st.recursive(
    leaves,
    lambda children: st.tuples(children, st.sampled_from(sorted(ARITHMETIC)), children).map(
        _combine
    ),
    max_leaves=16,
)


def reference_make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """torchvision.models._utils._make_divisible, from the TensorFlow MobileNet code."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not remove more than 10%
        new_v += divisor
    return new_v


# -- arithmetic ------------------------------------------------------------------------------


@given(trees)
def test_integer_arithmetic_matches_python(tree):
    text, value, largest = tree
    if largest > MAX_MAGNITUDE:
        with pytest.raises(ExpressionError, match=r"larger than 1,000,000,000,000,000"):
            evaluate(text, PARAMS)
    else:
        result = evaluate(text, PARAMS)
        assert result == value
        assert type(result) is int


@given(st.lists(st.integers(-(10**6), 10**6), min_size=2, max_size=6))
def test_products_past_the_magnitude_limit_are_rejected(factors):
    text = " * ".join(f"({factor})" for factor in factors)
    partial, largest = factors[0], abs(factors[0])
    for factor in factors[1:]:
        partial *= factor
        largest = max(largest, abs(partial))
    if largest > MAX_MAGNITUDE:
        with pytest.raises(ExpressionError, match=r"larger than 1,000,000,000,000,000"):
            evaluate(text, {})
    else:
        assert evaluate(text, {}) == partial


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6).filter(bool))
def test_true_division_gives_a_float(left, right):
    assert evaluate(f"x / {right}", {"x": left}) == left / right


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("planes * 4", 256),
        ("(planes - 1) // 2", 31),
        ("-planes", -64),
        ("+planes", 64),
        ("2 ** 10", 1024),
        ("planes ** 0.5", 8.0),
        ("7 % -3", -2),
        ("-7 // 2", -4),
        ("0.5 * 3", 1.5),
        ("[planes, 2 * planes]", [64, 128]),
        ("(3, 5)", [3, 5]),
        ("'same'", "same"),
        ("  planes  ", 64),
    ],
)
def test_arithmetic_examples(text, expected):
    assert evaluate(text, PARAMS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("min(3, planes, 9)", 3),
        ("max(1.0, 0.75)", 1.0),
        ("abs(b)", 3),
        ("int(7.9)", 7),
        ("float(3)", 3.0),
        ("round(2.5)", 2),
        ("round(3.14159, 2)", 3.14),
        ("floor(-0.5)", -1),
        ("ceil(224 / 32)", 7),
        ("make_divisible(32 * 0.75, 8)", 24),
        ("make_divisible(1280 * max(1.0, 1.4), 8)", 1792),
        ("sqrt(planes)", 8.0),
        ("round(exp(log(planes)))", 64),
        ("round(log(planes, 2))", 6),
        ("len(sizes)", 3),
        ("sizes[a - 6]", 32),
        ("sizes[-1][1]", 5),
        ("[8, 16][planes // 64]", 16),
        ("[planes // 4] * 4", [16, 16, 16, 16]),
        ("2 * [a]", [7, 7]),
        ("[1] + [2, 3]", [1, 2, 3]),
    ],
)
def test_functions(text, expected):
    assert evaluate(text, WITH_LISTS) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sizes[3]", r"index 3 is out of range for a list of 3"),
        ("sizes[-4]", r"index -4 is out of range"),
        ("sizes[0.5]", r"a list index is a whole number, got 0\.5"),
        ("sizes[a > 0]", r"a list index is a whole number, got True"),
        ("planes[0]", r"only a list can be indexed, not 64"),
        ("log(zero)", r"log\(0\): math domain error"),
        ("exp(1000)", r"exp\(1000\)"),
        ("exp(40)", r"larger than"),
        ("len(planes)", r"len\(64\)"),
        ("[1] * 10**9", r"the list would have 1,000,000,000 items, more than 10,000"),
        ("([1] * 10000) * 2", r"20,000 items"),
        ("[1] * 2.5", r"a list repeats a whole number of times, not 2\.5"),
        ("[1] - [1]", r"lists join with \+ and repeat with \*"),
        ("[1] + 2", r"lists join with \+"),
    ],
)
def test_indexing_and_functions_fail_with_a_reason(text, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, WITH_LISTS)


# -- comparisons and logic -------------------------------------------------------------------

COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
small = st.integers(-5, 5)
comparisons = st.sampled_from(sorted(COMPARISONS))


@given(small, comparisons, small, comparisons, small)
def test_chained_comparisons_match_python(x, first, y, second, z):
    expected = COMPARISONS[first](x, y) and COMPARISONS[second](y, z)
    assert evaluate(f"x {first} y {second} z", {"x": x, "y": y, "z": z}) is expected


values = st.integers(-2, 2) | st.booleans()


@given(values, values, values)
def test_boolean_logic_matches_python(p, q, r):
    env = {"p": p, "q": q, "r": r}
    assert evaluate("p and q", env) == (p and q)
    assert evaluate("p or q and r", env) == (p or (q and r))
    assert evaluate("not p or q", env) == ((not p) or q)
    assert evaluate("not (p and q)", env) is (not (p and q))
    assert evaluate("q if p else r", env) == (q if p else r)
    assert evaluate("p == 1 and not r", env) == (p == 1 and not r)


def test_and_or_short_circuit():
    # The right side would divide by zero: it must not be evaluated.
    assert evaluate("zero != 0 and 1 // zero > 1", PARAMS) is False
    assert evaluate("zero == 0 or 1 // zero > 1", PARAMS) is True
    assert evaluate("1 if zero == 0 else 1 // zero", PARAMS) == 1


def test_comparison_of_mismatched_types():
    with pytest.raises(ExpressionError, match=r"cannot compare 'same' with 3"):
        evaluate("mode < 3", {"mode": "same"})


# -- make_divisible --------------------------------------------------------------------------


@given(
    st.floats(0.01, 1e6, allow_nan=False) | st.integers(1, 10**6),
    st.sampled_from([1, 2, 3, 4, 7, 8, 16, 32, 64]),
    st.none() | st.integers(1, 128),
)
def test_make_divisible_matches_torchvision(value, divisor, min_value):
    expected = reference_make_divisible(value, divisor, min_value)
    assert make_divisible(value, divisor, min_value) == expected
    env = {"v": value, "d": divisor, "m": min_value}
    text = "make_divisible(v, d)" if min_value is None else "make_divisible(v, d, m)"
    assert evaluate(text, env) == expected


@given(
    st.sampled_from([16, 24, 32, 64, 96, 160, 320, 1280]),
    st.sampled_from([0.35, 0.5, 0.75, 1.0, 1.3, 1.4]),
)
def test_make_divisible_on_mobilenet_widths(channels, width):
    result = evaluate("make_divisible(channels * width, 8)", {"channels": channels, "width": width})
    assert result == reference_make_divisible(channels * width, 8)
    assert result % 8 == 0
    assert result >= 0.9 * channels * width


# -- forbidden constructs --------------------------------------------------------------------

FORBIDDEN = [
    ("planes.real", r"'planes\.real' is not allowed"),
    ("(1).__class__", r"'1 \.__class__' is not allowed"),
    ("planes[0:4:2]", r"'planes\[0:4:2\]' is not allowed"),
    ("__import__('os')", r"\"__import__\('os'\)\" is not allowed"),
    ("__import__('os').system('true')", r"is not allowed"),
    ("lambda: 1", r"'lambda: 1' is not allowed"),
    ("[x for x in [1, 2]]", r"'\[x for x in \[1, 2\]\]' is not allowed"),
    ("(x for x in [1])", r"'\(x for x in \[1\]\)' is not allowed"),
    ("{x: 1 for x in [1]}", r"is not allowed"),
    ("{1, 2}", r"'\{1, 2\}' is not allowed"),
    ("{1: 2}", r"'\{1: 2\}' is not allowed"),
    ("foo(1)", r"'foo\(1\)' is not allowed"),
    ("exec('1')", r"\"exec\('1'\)\" is not allowed"),
    ("max(1, key=abs)", r"'max\(1, key=abs\)' is not allowed"),
    ("max(*[1, 2])", r"'\*\[1, 2\]' is not allowed"),
    ("f'{planes}'", r"\"f'\{planes\}'\" is not allowed"),
    ("None", r"'None' is not allowed"),
    ("b'x'", r"\"b'x'\" is not allowed"),
    ("planes & 1", r"'planes & 1' is not allowed"),
    ("planes << 2", r"'planes << 2' is not allowed"),
    ("~planes", r"'~planes' is not allowed"),
]


@pytest.mark.parametrize(("text", "message"), FORBIDDEN)
def test_forbidden_constructs(text, message):
    with pytest.raises(ExpressionError, match=message) as caught:
        evaluate(text, PARAMS)
    # The message says what is allowed instead.
    assert "the functions min, max, abs, int, float" in str(caught.value)


def test_forbidden_message_lists_what_is_allowed():
    with pytest.raises(
        ExpressionError,
        match=r"'x if c else y', list\[index\], list\[start:end\] and the functions min, max",
    ) as caught:
        evaluate("planes.bit_length()", PARAMS)
    assert "make_divisible" in str(caught.value)
    assert "('planes.bit_length()')" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x := 3", r"invalid expression 'x := 3': invalid syntax"),
        ("planes *", r"invalid expression 'planes \*'"),
        ("import os", r"invalid expression 'import os'"),
        ("1; 2", r"invalid expression '1; 2'"),
        ("", r"invalid expression ''"),
    ],
)
def test_syntax_errors(text, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, PARAMS)


@pytest.mark.parametrize(
    ("text", "operator_name"),
    [("planes is 3", "is"), ("planes is not 3", "is not"), ("planes in [64]", "in")],
)
def test_identity_and_membership_are_refused_by_name(text, operator_name):
    with pytest.raises(ExpressionError, match=f"comparison '{operator_name}' is not allowed"):
        evaluate(text, PARAMS)


def test_identity_and_membership_are_refused():
    with pytest.raises(ExpressionError, match=r"is not allowed \('planes in \[64\]'\)"):
        evaluate("planes in [64]", PARAMS)


def test_too_long_expression():
    with pytest.raises(ExpressionError, match=r"longer than 500 characters"):
        evaluate("+".join(["1"] * 300), {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 // zero", r"division by zero"),
        ("1 % zero", r"division by zero"),
        ("1 / 0", r"division by zero"),
        ("'a' * 10", r"arithmetic needs numbers, got 'a' and 10"),
        ("'a' + 'b'", r"arithmetic needs numbers, got 'a' and 'b'"),
        ("min()", r"min\(\): min expected at least 1 argument"),
        ("max(1)", r"max\(1\): .int. object is not iterable"),
        ("int('x')", r"int\('x'\): invalid literal"),
    ],
)
def test_evaluation_errors(text, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, PARAMS)


# -- resource bounds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 ** 100", r"exponent 100 is too large \(at most 64\)"),
        ("9 ** 9 ** 9", r"exponent 387420489 is too large"),
        ("10 ** 10 ** 10", r"exponent 10000000000 is too large"),
        ("2 ** -1000", r"exponent -1000 is too large"),
        ("2.0 ** 1e10", r"exponent 10000000000.0 is too large"),
        ("2 ** 64", r"larger than 1,000,000,000,000,000"),
        ("10 ** 16", r"larger than 1,000,000,000,000,000"),
        ("99999999999999999999", r"larger than 1,000,000,000,000,000"),
        ("1e300", r"larger than 1,000,000,000,000,000"),
        ("-(10 ** 16)", r"larger than 1,000,000,000,000,000"),
        ("(10 ** 8) * (10 ** 8)", r"larger than 1,000,000,000,000,000"),
        (
            "make_divisible(10 ** 15, 6 * 10 ** 14)",
            r"gives 1,200,000,000,000,000, which is larger than 1,000,000,000,000,000",
        ),
        ("float('inf')", r"gives inf, which is not a finite number"),
        ("float('nan')", r"gives nan, which is not a finite number"),
        ("1e-300 / 1e-300 * 0 + float('-inf')", r"not a finite number"),
    ],
)
def test_huge_values_are_rejected_fast(text, message):
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=message):
        evaluate(text, {})
    assert time.perf_counter() - start < 0.5


def test_values_at_the_magnitude_limit_are_fine():
    assert evaluate("10 ** 15", {}) == MAX_MAGNITUDE
    assert evaluate("2 ** 49", {}) == 2**49
    assert evaluate("0.5 ** 64", {}) == 0.5**64


def test_complex_results_are_rejected():
    with pytest.raises(ExpressionError, match=r"not a finite number|real|complex"):
        evaluate("(-8) ** 0.5", {})


# -- names -----------------------------------------------------------------------------------


def test_unknown_name_suggests_a_close_one():
    with pytest.raises(ExpressionError, match=r"unknown name 'plane' .*did you mean 'planes'\?"):
        evaluate("plane * 2", PARAMS)


def test_unknown_name_lists_the_known_ones():
    known = r"known names: a, b, in_channels, in_shape, planes, zero$"
    with pytest.raises(ExpressionError, match=known):
        evaluate("stride + 1", PARAMS)


def test_unknown_name_with_no_parameters():
    with pytest.raises(
        ExpressionError, match=r"unknown name 'qqq' in expression; known names: in_c"
    ):
        evaluate("qqq + 1", {})


def test_late_name_is_suggested():
    with pytest.raises(ExpressionError, match=r"did you mean 'in_channels'\?"):
        evaluate("in_channel * 2", {})


# -- in_channels -----------------------------------------------------------------------------


def test_in_channels_makes_a_deferred():
    deferred = evaluate("in_channels * expand", {"expand": 6})
    assert isinstance(deferred, Deferred)
    assert deferred.expression == "in_channels * expand"
    assert deferred.resolve({"in_channels": 16}) == 96
    assert deferred.resolve({"in_channels": 3}) == 18


@given(st.integers(1, 4096), st.integers(1, 8))
def test_deferred_through_a_parameter(channels, expand):
    hidden = evaluate("in_channels * expand", {"expand": expand})
    env = {"hidden": hidden, "k": 3}
    deferred = evaluate("make_divisible(hidden // 2, 8) + k", env)
    assert isinstance(deferred, Deferred)
    expected = reference_make_divisible(channels * expand // 2, 8) + 3
    assert deferred.resolve({"in_channels": channels}) == expected


def test_deferred_captures_its_environment():
    env = {"expand": 6}
    deferred = evaluate("in_channels * expand", env)
    env["expand"] = 100
    assert deferred.resolve({"in_channels": 2}) == 12


def test_untaken_branch_needs_no_in_channels():
    assert evaluate("8 if small else in_channels", {"small": True}) == 8
    assert isinstance(evaluate("8 if small else in_channels", {"small": False}), Deferred)


def test_deferred_errors_when_resolved():
    deferred = evaluate("in_channels // zero", {"zero": 0})
    with pytest.raises(ExpressionError, match=r"division by zero"):
        deferred.resolve({"in_channels": 4})


def test_resolve_value_and_contains_deferred():
    value = evaluate_value(["same", "in_channels", "2 * in_channels", 3], {})
    assert is_late(value)
    assert not is_late(["same", 3])
    assert resolve_value(value, {"in_channels": 5}) == ["same", 5, 10, 3]
    assert resolve_value(7, {"in_channels": 5}) == 7


# -- evaluate_value --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("same", "same"),
        ("valid", "valid"),
        ("planes * 4", 256),
        ("planes", 64),
        ("(planes - 1) // 2", 31),
        (["same", "planes", "2"], ["same", 64, 2]),
        ([[1, "a"], "zero"], [[1, 7], 0]),
        (3, 3),
        (0.5, 0.5),
        (True, True),
        (None, None),
    ],
)
def test_evaluate_value(value, expected):
    result = evaluate_value(value, PARAMS)
    assert result == expected
    assert type(result) is type(expected)


def test_evaluate_value_of_in_channels_is_deferred():
    assert isinstance(evaluate_value("in_channels", PARAMS), Deferred)


def test_a_word_is_a_parameter_when_one_has_its_name():
    assert evaluate_value("same", {"same": 3}) == 3


def test_a_non_word_string_is_an_expression():
    with pytest.raises(ExpressionError, match=r"unknown name 'same'"):
        evaluate_value("same + 1", PARAMS)


def test_results_are_plain_numbers():
    assert math.isclose(evaluate("width * 0.5", {"width": 1.4}), 0.7)
    assert evaluate("True + 1", {}) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("round(1, -10**15)", r"round\(1, -1000000000000000\): digits must be between -30 and 30"),
        ("round(7, 10**15)", r"digits must be between"),
        ("make_divisible(5, 0)", r"make_divisible\(5, 0\): the divisor must be a positive integer"),
        ("make_divisible(5, -8)", r"the divisor must be a positive integer, got -8"),
        ("'a\x00'", r"invalid expression"),
        ("(" * 240 + "1" + ")" * 240, r"invalid expression|nests too deeply"),
    ],
)
def test_functions_refuse_arguments_that_would_hang_or_crash(text, message):
    with within(2), pytest.raises(ExpressionError, match=message):
        evaluate(text, {})


def test_a_long_chain_of_signs_evaluates():
    assert evaluate("-" * 489 + "1", {}) == -1


def test_written_numbers_meet_the_bounds_of_computed_ones():
    with pytest.raises(ExpressionError, match=r"the number an integer of about 5,000 digits"):
        evaluate_value(10**5000, {})
    with pytest.raises(ExpressionError, match=r"the number 1e\+300, which is larger than"):
        evaluate_value([1, 1e300], {})


def test_a_deferred_expression_keeps_only_the_names_it_reads():
    """A layer reading in_channels must not copy every parameter (a long list) with it."""
    deferred = evaluate("in_channels * a", {**PARAMS, "table": list(range(100_000))})
    assert isinstance(deferred, Deferred)
    assert dict(deferred.env) == {"a": 7}


def test_lists_slice_and_sum_as_in_python():
    depths = [3, 3, 9, 3]
    assert evaluate("depths[:2]", {"depths": depths}) == [3, 3]
    assert evaluate("depths[1:-1]", {"depths": depths}) == [3, 9]
    assert evaluate("sum(depths[:k]) + i", {"depths": depths, "k": 2, "i": 1}) == 7
    assert evaluate("sum(depths)", {"depths": depths}) == 18
    with pytest.raises(ExpressionError, match=r"a slice bound is a whole number, got 1\.5"):
        evaluate("depths[:1.5]", {"depths": depths})
    with pytest.raises(ExpressionError, match="only a list can be sliced"):
        evaluate("k[:1]", {"k": 2})
    with pytest.raises(ExpressionError, match="sum takes a list of numbers"):
        evaluate("sum(k)", {"k": 2})
