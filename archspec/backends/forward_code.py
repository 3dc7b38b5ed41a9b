"""The forward of a compiled network as readable source: fx's generated code, tidied."""

from __future__ import annotations

import ast
import builtins
import io
import itertools
import keyword
import operator
import tokenize
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import fx

from archspec.errors import GeneratedSourceError
from archspec.ops import torch_modules

#: ruff's and black's default, so the file passes their checks in most projects.
LINE_LENGTH = 88
INDENT = "    "


def forward_lines(module: fx.GraphModule) -> tuple[list[str], list[str]]:
    """The `forward` method's lines, and the import lines of the whole file."""
    code = module.graph.python_code(root_module="self")
    function = ast.parse(code.src).body[0]
    if not isinstance(function, ast.FunctionDef) or len(function.args.args) != 2:
        raise GeneratedSourceError("the fx code is not a forward(self, input) function")
    placeholder, steps, result = _steps(function)
    values = [*(value for _, value in steps), result]
    live = _liveness(placeholder, [target for target, _ in steps], values)
    imports, dotted = _imports(values, live.last, code.globals)
    registers = _Registers(live)
    names = dotted | {placeholder: registers.take(placeholder)}
    defined = set(dotted.values())
    lines = []
    for index, (target, value) in enumerate(steps):
        value = _Rename(names).visit(value)
        # a value read once lives in a register; one read again keeps fx's name, the layer's,
        # unless that is the name of a function the file defines (fx names a call after it)
        kept = f"{target}_" if target in defined else target
        names[target] = kept if live.count[target] > 1 else registers.assign(target, index, names)
        if isinstance(value, _InPlace):
            update = ast.AugAssign(ast.Name(_code(value.left), ast.Store()), value.op, value.right)
            lines.append(_noqa(f"{INDENT * 2}{_code(update)}"))
            if names[target] != _code(value.left):
                lines += _statement(f"{names[target]} = ", value.left)
        else:
            lines += _statement(f"{names[target]} = ", value)
        done = registers.dead(index, names)
        if done:
            lines.append(f"{INDENT * 2}del {', '.join(done)}")
    result = _Rename(names).visit(result)
    returns = (
        "tuple[torch.Tensor, ...]"
        if isinstance(result, ast.Tuple)
        else "dict[str, torch.Tensor]"
        if isinstance(result, ast.Dict)
        else "torch.Tensor"
    )
    signature = f"{INDENT}def forward(self, {names[placeholder]}: torch.Tensor) -> {returns}:"
    return [signature, *lines, *_statement("return ", result)], imports


@dataclass(frozen=True)
class _Liveness:
    """Which values each statement reads, the last statement reading each, and how many do."""

    reads: list[list[str]]
    last: dict[str, int]  # the input's entry is -1 when nothing reads it
    count: dict[str, int]


def _liveness(placeholder: str, targets: list[str], values: list[ast.expr]) -> _Liveness:
    last = {placeholder: -1} | {target: index for index, target in enumerate(targets)}
    reads = [[name for name in _names(value) if name in last] for value in values]
    count = dict.fromkeys(last, 0)
    for index, read in enumerate(reads):
        for name in read:
            last[name], count[name] = index, count[name] + 1
    return _Liveness(reads, last, count)


class _Registers:
    """Short names (x, y, z, x1, ...) for values read once, reused once their value is dead."""

    def __init__(self, live: _Liveness) -> None:
        self.live = live
        spare = itertools.chain("xyz", (f"x{i}" for i in itertools.count(1)))
        self.fresh = (name for name in spare if name not in live.last)
        self.holds: dict[str, str] = {}  # register -> the value it holds now

    def take(self, value: str) -> str:
        """A new register for `value`."""
        register = next(self.fresh)
        self.holds[register] = value
        return register

    def assign(self, value: str, index: int, names: dict[str, str]) -> str:
        """A register for `value`, computed by statement `index`: preferably one whose value that
        statement reads for the last time, so that `x = f(x)` overwrites."""
        last = self.live.last
        dying = [
            names[v] for v in self.live.reads[index] if last[v] <= index and names[v] in self.holds
        ]
        free = [register for register, held in self.holds.items() if last[held] <= index]
        register = next(iter(dying or free), None)
        if register is None:
            return self.take(value)
        self.holds[register] = value
        return register

    def dead(self, index: int, names: dict[str, str]) -> list[str]:
        """Names of values read for the last time by statement `index` that no register holds:
        the layers' names, deleted to free their tensors."""
        last = self.live.last
        return [
            names[v]
            for v in self.live.reads[index]
            if last[v] == index and names[v] not in self.holds
        ]


def _imports(
    code: list[ast.expr], local: Collection[str], namespace: dict[str, object]
) -> tuple[list[str], dict[str, str]]:
    """The file's imports, and dotted names for fx's globals (`_operator_abs`: `operator.abs`).

    GeneratedSourceError for a global that importing torch and operator does not give, nor
    archspec's own torch-side helpers (copied into the file).
    """
    dotted = {}
    for name in sorted({name for value in code for name in _names(value)} - {"self", *local}):
        value = namespace.get(name, getattr(builtins, name, None))
        if value is torch or (name not in namespace and value is not None):
            continue  # torch, or a builtin such as getattr
        function_name = getattr(value, "__name__", "")
        if value is not None and getattr(operator, function_name, None) is value:
            dotted[name] = f"operator.{function_name}"
        elif getattr(value, "__module__", None) in torch_modules.HELPER_MODULES:
            dotted[name] = function_name  # defined in the file: see helper_sources
        else:
            parts = [getattr(value, "__module__", None), getattr(value, "__qualname__", name)]
            where = ".".join(part for part in parts if part)
            raise GeneratedSourceError(
                f"the fx code uses {where}, which torch and operator do not define"
            )
    lines = ["import torch", "from torch import nn"]
    uses_operator = any(name.startswith("operator.") for name in dotted.values())
    return (["import operator", "", *lines] if uses_operator else lines), dotted


def _steps(function: ast.FunctionDef) -> tuple[str, list[tuple[str, ast.expr]], ast.expr]:
    """fx's input name, its `name = expression` steps and the returned expression.

    Aliases (`input_1 = input`) are resolved and fx's frees (`a = b = None`) dropped: reusing
    names frees values instead. fx writes an in-place add as `a += b;  iadd = a`: one step,
    `iadd = _InPlace(a + b)`.
    """
    placeholder = function.args.args[1].arg
    aliases: dict[str, str] = {}
    steps: list[tuple[str, ast.expr]] = []
    updated: dict[str, _InPlace] = {}  # a += b, waiting for the name fx gives the result
    for statement in function.body:
        match statement:
            case ast.Assign(value=ast.Constant(value=None)):
                pass
            case ast.Assign(targets=[ast.Name(id=target)], value=ast.Name(id=source)) if (
                source in updated
            ):
                steps.append((target, updated.pop(source)))
            case ast.Assign(targets=[ast.Name(id=target)], value=ast.Name(id=source)):
                aliases[target] = aliases.get(source, source)
            case ast.Assign(targets=[ast.Name(id=target)], value=value):
                steps.append((target, _Rename(aliases).visit(value)))
            case ast.AugAssign(target=ast.Name(id=target), op=op, value=value):
                left = _Rename(aliases).visit(ast.Name(target, ast.Load()))
                updated[target] = _InPlace(left, op, _Rename(aliases).visit(value))
            case ast.Return(value=ast.expr() as value) if not updated:
                return placeholder, steps, _Rename(aliases).visit(value)
            case _:
                raise GeneratedSourceError(f"unexpected fx code: {ast.unparse(statement)}")
    raise GeneratedSourceError("the fx code returns nothing")


class _InPlace(ast.BinOp):
    """`left op= right`: a step that overwrites its left operand."""


def _names(value: ast.expr) -> list[str]:
    """The names `value` reads, once each, in order."""
    return list(dict.fromkeys(n.id for n in ast.walk(value) if isinstance(n, ast.Name)))


class _Rename(ast.NodeTransformer):
    """Renames values; `getattr(self.layer1, "0")` becomes `self.layer1["0"]` (a ModuleDict).

    A new name may be dotted (`operator.abs`): ast.unparse writes it as it is.
    """

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.names.get(node.id, node.id), node.ctx)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        match node:
            case ast.Call(
                func=ast.Name(id="getattr"), args=[owner, ast.Constant(value=str() as key)]
            ):
                if key.isidentifier() and not keyword.iskeyword(key):
                    return ast.Attribute(owner, key, ast.Load())
                if not (isinstance(owner, ast.Name) and owner.id == "self"):
                    return ast.Subscript(owner, ast.Constant(key), ast.Load())
        return node


def _statement(head: str, value: ast.expr) -> list[str]:
    indent = INDENT * 2
    if isinstance(value, ast.Call):
        arguments = [_code(argument) for argument in [*value.args, *value.keywords]]
        return wrap(indent, f"{head}{_code(value.func)}(", arguments, ")")
    if isinstance(value, ast.Tuple):
        return wrap(indent, f"{head}(", [_code(item) for item in value.elts], ")", tuple_=True)
    return [_noqa(f"{indent}{head}{_code(value)}")]


# -- layout ------------------------------------------------------------------------------------


def wrap(indent: str, head: str, items: list[str], tail: str, tuple_: bool = False) -> list[str]:
    """`head items tail` on one line if it fits, else the items on their own line(s)."""
    line = f"{indent}{head}{', '.join(items)}{',' if tuple_ and len(items) == 1 else ''}{tail}"
    if len(line) <= LINE_LENGTH or not items:
        return [_noqa(line)]
    inner = f"{indent}{INDENT}{', '.join(items)}"
    if len(inner) <= LINE_LENGTH and not (tuple_ and len(items) == 1):
        return [_noqa(f"{indent}{head}"), inner, f"{indent}{tail}"]
    lines = [f"{indent}{head}"]
    for item in items:  # filled like a paragraph, each item ending in a comma
        joined = f"{lines[-1]} {item},"
        if len(lines) > 1 and len(joined) <= LINE_LENGTH:
            lines[-1] = joined
        else:
            lines.append(f"{indent}{INDENT}{item},")
    return [*map(_noqa, lines), f"{indent}{tail}"]


def _noqa(line: str) -> str:
    # only a name or a literal too long to split can get here
    return line if len(line) <= LINE_LENGTH else f"{line}  # noqa: E501"


def _code(node: ast.AST) -> str:
    return double_quotes(ast.unparse(node))


def double_quotes(code: str) -> str:
    """`'0'` -> `"0"`: repr and ast.unparse quote with ', ruff format and fx with "."""
    characters = list(code)
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        text = token.string
        if token.type == tokenize.STRING and text[0] == "'" and not {'"', "\\"} & set(text):
            # same length, so the other tokens keep their columns; the code is one line
            characters[token.start[1]] = characters[token.end[1] - 1] = '"'
    return "".join(characters)
