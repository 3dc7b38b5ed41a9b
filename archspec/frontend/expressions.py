"""A small, safe evaluator for the arithmetic written in specs (`planes * 4`, `stride == 1`)."""

from __future__ import annotations

import ast
import contextlib
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from archspec.errors import ExpressionError, shown, suggest
from archspec.late import LATE_NAMES, LateValue, is_late, resolve_value

MAX_EXPRESSION_LENGTH = 500
# Spec numbers are layer sizes; anything beyond this is a mistake or an attack on the evaluator.
MAX_MAGNITUDE = 10**15
MAX_EXPONENT = 64
#: Items a list built by an expression (`[4] * n`) may have.
MAX_LIST_ITEMS = 10_000


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round `value` to a multiple of `divisor`, never going below 90% of it (MobileNet's rule)."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"the divisor must be a positive integer, got {shown(divisor)}")
    floor_value = divisor if min_value is None else min_value
    rounded = max(floor_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


#: round()'s digits beyond which every spec number rounds to 0 or to itself; Python would
#: otherwise compute 10**digits, which for round(1, -10**15) never ends.
MAX_ROUND_DIGITS = 30


def _round(value: float, digits: int | None = None) -> float:
    if isinstance(digits, int) and abs(digits) > MAX_ROUND_DIGITS:
        raise ValueError(f"digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(value, digits)


def _sum(values: Any) -> int | float:
    """The total of a list of numbers: `sum(depths[:i])`, the blocks before stage i."""
    if not isinstance(values, list) or not all(type(value) in (int, float) for value in values):
        raise ValueError("sum takes a list of numbers")
    return sum(values)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "int": int,
    "float": float,
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,  # natural, or log(x, base): RegNet's widths are quantized in log space
    "len": len,
    "sum": _sum,
    "make_divisible": make_divisible,
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_REFUSED_COMPARISONS: dict[type[ast.cmpop], str] = {
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


@dataclass(frozen=True)
class Deferred(LateValue):
    """An expression that needs a late name (`in_channels`); resolved during analysis."""

    expression: str
    env: Mapping[str, Any]
    #: The names in `env` whose values wait for late names too (`k: [in_channels]`); the
    #: others, a long table say, are used as they are.
    waiting: frozenset[str] = frozenset()

    def resolve(self, late: Mapping[str, Any]) -> Any:
        env = {
            name: resolve_value(value, late) if name in self.waiting else value
            for name, value in self.env.items()
        }
        with checked_lists():
            for value in env.values():
                if isinstance(value, list):  # resolved now, or never waiting: no late value
                    _CHECKED_LISTS[id(value)] = value
            return _evaluate(_parse(self.expression), {**env, **late}, self.expression)


class _LateName(Exception):
    """Raised inside evaluation when a late name is read; turns the expression into a Deferred."""


def is_literal_word(text: str, env: Mapping[str, Any]) -> bool:
    """A bare word that names no parameter is a plain string (`padding: same`)."""
    return (
        text.isidentifier() and text not in env and text not in FUNCTIONS and text not in LATE_NAMES
    )


def evaluate_value(value: Any, env: Mapping[str, Any]) -> Any:
    """Evaluate a field value: strings are expressions, lists are evaluated item by item.

    Written numbers meet the bounds computed ones do.
    """
    if isinstance(value, str):
        return value if is_literal_word(value, env) else evaluate(value, env)
    if isinstance(value, list):
        if _CHECKED_LISTS.get(id(value)) is value:
            return value
        evaluated = [evaluate_value(item, env) for item in value]
        if not all(type(item) in (int, float, bool) for item in value):
            return evaluated
        # a table of numbers is checked once, not for every block instance that reads it
        if len(_CHECKED_LISTS) >= MAX_CHECKED_LISTS:
            _CHECKED_LISTS.clear()
        _CHECKED_LISTS[id(value)] = value
        return value
    if isinstance(value, int | float):
        return _checked(value, "the number")
    return value


#: Lists of plain numbers already checked, by id; each is kept alive here, so its id stays its.
_CHECKED_LISTS: dict[int, list[Any]] = {}
MAX_CHECKED_LISTS = 256


def _may_be_late(value: Any) -> bool:
    """Whether `value` holds a late value; a table checked already holds numbers only."""
    return _CHECKED_LISTS.get(id(value)) is not value and is_late(value)


@contextlib.contextmanager
def checked_lists() -> Iterator[None]:
    """Remember the lists of numbers checked while one spec loads, and let go of them after."""
    try:
        yield
    finally:
        _CHECKED_LISTS.clear()


def render_name(template: str, env: Mapping[str, Any]) -> str:
    """`denselayer{i + 1}` with each expression in braces evaluated (to an int or a word)."""
    parts = []
    rest = template
    while "{" in rest or "}" in rest:
        start, end = rest.find("{"), rest.find("}")
        if start < 0 or end < start:
            raise ExpressionError("braces in a name template must pair up: {expression}")
        parts.append(rest[:start])
        expression = rest[start + 1 : end]
        value = evaluate(expression, env)
        if isinstance(value, Deferred):
            raise ExpressionError(
                f"{{{expression}}} uses in_channels or in_shape: names are given before shapes "
                "are known"
            )
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ExpressionError(f"{{{expression}}} gives {shown(value)}, not a number or a word")
        parts.append(str(value))
        rest = rest[end + 1 :]
    return "".join([*parts, rest])


def names_in(expression: str) -> set[str]:
    """The names an expression reads (a plain word reads itself); empty when it does not parse."""
    try:
        tree = _parse(expression)
    except ExpressionError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def evaluate(expression: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one expression; returns a Deferred when it reads a late name."""
    tree = _parse(expression)
    try:
        return _evaluate(tree, env, expression)
    except _LateName:
        # only what it reads: a parameter holding a long list is not copied for every layer
        read = {name: env[name] for name in names_in(expression) if name in env}
        waiting = frozenset(name for name, value in read.items() if _may_be_late(value))
        return Deferred(expression, read, waiting)
    except RecursionError as error:
        raise ExpressionError(f"expression nests too deeply ({shown(expression)})") from error


@lru_cache(maxsize=4096)
def _parse(expression: str) -> ast.expr:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        return ast.parse(expression.strip(), mode="eval").body
    except SyntaxError as error:
        raise ExpressionError(f"invalid expression {expression!r}: {error.msg}") from error
    except ValueError as error:  # Python 3.11 raises it for a NUL character
        raise ExpressionError(f"invalid expression {shown(expression)}: {error}") from error
    except (RecursionError, MemoryError) as error:
        raise ExpressionError(f"expression nests too deeply ({shown(expression)})") from error


def _evaluate(node: ast.expr, env: Mapping[str, Any], source: str) -> Any:
    match node:
        case ast.Constant(value=value) if isinstance(value, int | float | str):
            return _checked(value)
        case ast.Name(id=name):
            return _lookup(name, env)
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return _binary(op, _evaluate(left, env, source), _evaluate(right, env, source))
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return _checked(-_evaluate(operand, env, source))
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _evaluate(operand, env, source)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _evaluate(operand, env, source)
        case ast.BoolOp(op=ast.And(), values=values):
            result: Any = True
            for item in values:
                result = _evaluate(item, env, source)
                if not result:
                    return result
            return result
        case ast.BoolOp(op=ast.Or(), values=values):
            result = False
            for item in values:
                result = _evaluate(item, env, source)
                if result:
                    return result
            return result
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            return _compare(left, ops, comparators, env, source)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            branch = body if _evaluate(test, env, source) else orelse
            return _evaluate(branch, env, source)
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in FUNCTIONS:
            values = [_evaluate(arg, env, source) for arg in args]
            return _call(name, values)
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [_evaluate(item, env, source) for item in items]
        case ast.Subscript(value=sequence, slice=ast.Slice(lower=lower, upper=upper, step=None)):
            bounds = [
                None if bound is None else _evaluate(bound, env, source) for bound in (lower, upper)
            ]
            return _part(_evaluate(sequence, env, source), *bounds)
        case ast.Subscript(value=sequence, slice=index) if not isinstance(index, ast.Slice):
            return _item(_evaluate(sequence, env, source), _evaluate(index, env, source))
    construct = ast.unparse(node)
    raise ExpressionError(
        f"{construct!r} is not allowed in an expression ({source!r}); "
        "use numbers, parameters, arithmetic, comparisons, 'and', 'or', 'not', "
        f"'x if c else y', list[index], list[start:end] and the functions {', '.join(FUNCTIONS)}"
    )


def _lookup(name: str, env: Mapping[str, Any]) -> Any:
    if name in env:
        value = env[name]
        if _may_be_late(value):  # a list holding one (`[in_channels]`) waits as a whole
            raise _LateName(name)
        return value
    if name in LATE_NAMES:
        raise _LateName(name)
    known = [*env, *LATE_NAMES]
    raise ExpressionError(
        f"unknown name {name!r} in expression{suggest(name, known)}; "
        f"known names: {', '.join(sorted(known)) or 'none'}"
    )


def _binary(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Pow) and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise ExpressionError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
    if isinstance(left, list) or isinstance(right, list):
        return _list_arithmetic(op, left, right)
    if not (isinstance(left, int | float) and isinstance(right, int | float)):
        raise ExpressionError(f"arithmetic needs numbers, got {shown(left)} and {shown(right)}")
    try:
        return _checked(_BINARY[type(op)](left, right))
    except ZeroDivisionError as error:
        raise ExpressionError("division by zero") from error
    except (TypeError, OverflowError) as error:
        raise ExpressionError(
            f"cannot compute {shown(left)} and {shown(right)}: {error}"
        ) from error


def _list_arithmetic(op: ast.operator, left: Any, right: Any) -> list[Any]:
    """`[4] * 3` repeats a list and `a + b` joins two (split sizes whose count is a
    parameter), up to MAX_LIST_ITEMS items."""
    if isinstance(op, ast.Add) and isinstance(left, list) and isinstance(right, list):
        length = len(left) + len(right)
    elif isinstance(op, ast.Mult) and isinstance(left, list) != isinstance(right, list):
        times = right if isinstance(left, list) else left
        if isinstance(times, bool) or not isinstance(times, int):
            raise ExpressionError(f"a list repeats a whole number of times, not {shown(times)}")
        length = max(0, times) * len(left if isinstance(left, list) else right)
    else:
        raise ExpressionError(
            f"lists join with + and repeat with * a whole number, got {shown(left)} and "
            f"{shown(right)}"
        )
    if length > MAX_LIST_ITEMS:
        raise ExpressionError(f"the list would have {length:,} items, more than {MAX_LIST_ITEMS:,}")
    result: list[Any] = _BINARY[type(op)](left, right)
    return result


def _compare(
    left: ast.expr,
    ops: list[ast.cmpop],
    comparators: list[ast.expr],
    env: Mapping[str, Any],
    source: str,
) -> bool:
    current = _evaluate(left, env, source)
    for op, comparator in zip(ops, comparators, strict=True):
        if type(op) not in _COMPARE:
            symbol = _REFUSED_COMPARISONS.get(type(op), type(op).__name__)
            raise ExpressionError(f"comparison {symbol!r} is not allowed ({source!r})")
        other = _evaluate(comparator, env, source)
        try:
            if not _COMPARE[type(op)](current, other):
                return False
        except TypeError as error:
            raise ExpressionError(f"cannot compare {shown(current)} with {shown(other)}") from error
        current = other
    return True


def _item(sequence: Any, index: Any) -> Any:
    """`sequence[index]`, a list's item (a stage table's row), counted from the end when
    negative as in Python."""
    if not isinstance(sequence, list):
        raise ExpressionError(f"only a list can be indexed, not {shown(sequence)}")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ExpressionError(f"a list index is a whole number, got {shown(index)}")
    if not -len(sequence) <= index < len(sequence):
        raise ExpressionError(f"index {index} is out of range for a list of {len(sequence)}")
    return sequence[index]


def _part(sequence: Any, start: Any, end: Any) -> list[Any]:
    """`sequence[start:end]`, as in Python: `depths[:i]`, the stages before stage i."""
    if not isinstance(sequence, list):
        raise ExpressionError(f"only a list can be sliced, not {shown(sequence)}")
    for bound in (start, end):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise ExpressionError(f"a slice bound is a whole number, got {shown(bound)}")
    return sequence[start:end]


def _call(name: str, values: list[Any]) -> Any:
    try:
        return _checked(FUNCTIONS[name](*values))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as error:
        arguments = ", ".join(shown(value) for value in values)
        raise ExpressionError(f"{name}({arguments}): {error}") from error


def _checked(value: Any, what: str = "expression gives") -> Any:
    """`value` if it is a number a spec can use; `what` introduces it in the error."""
    if isinstance(value, complex):
        raise ExpressionError(f"{what} the complex number {value}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError(f"{what} {value}, which is not a finite number")
    if isinstance(value, int | float) and abs(value) > MAX_MAGNITUDE:
        raise ExpressionError(f"{what} {_number(value)}, which is larger than {MAX_MAGNITUDE:,}")
    return value


def _number(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if value.bit_length() <= 200 else shown(value)
