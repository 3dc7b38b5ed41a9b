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

import torch
from torch import fx

from archspec.errors import GeneratedSourceError

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
    last = {placeholder: -1} | {target: index for index, (target, _) in enumerate(steps)}
    values = [*(value for _, value in steps), result]
    imports, dotted = _imports(values, last, code.globals)
    reads = [[name for name in _names(value) if name in last] for value in values]
    count = dict.fromkeys(last, 0)
    for index, read in enumerate(reads):
        for name in read:
            last[name], count[name] = index, count[name] + 1
    # x, y, ... name a value read once; a value read again later keeps fx's name, the layer's
    taken = set(last)
    spare = itertools.chain("xyz", (f"x{i}" for i in itertools.count(1)))
    registers = (name for name in spare if name not in taken)
    names = dotted | {placeholder: next(registers)}
    holds = {names[placeholder]: placeholder}  # register -> the value it holds now

    def register(index: int) -> str:
        dying = [names[v] for v in reads[index] if last[v] <= index and names[v] in holds]
        free = [r for r in holds if last[holds[r]] <= index]
        return next(iter(dying or free), None) or next(registers)

    lines = []
    for index, (target, value) in enumerate(steps):
        value = _Rename(names).visit(value)
        names[target] = target if count[target] > 1 else register(index)
        if count[target] <= 1:
            holds[names[target]] = target
        lines += _statement(f"{names[target]} = ", value)
        done = [names[v] for v in reads[index] if last[v] == index and names[v] not in holds]
        if done:
            lines.append(f"{INDENT * 2}del {', '.join(done)}")
    result = _Rename(names).visit(result)
    returns = "tuple[torch.Tensor, ...]" if isinstance(result, ast.Tuple) else "torch.Tensor"
    signature = f"{INDENT}def forward(self, {names[placeholder]}: torch.Tensor) -> {returns}:"
    return [signature, *lines, *_statement("return ", result)], imports


def _imports(
    code: list[ast.expr], local: Collection[str], namespace: dict[str, object]
) -> tuple[list[str], dict[str, str]]:
    """The file's imports, and dotted names for fx's globals (`_operator_abs`: `operator.abs`).

    GeneratedSourceError for a global that importing torch and operator does not give.
    """
    dotted = {}
    for name in sorted({name for value in code for name in _names(value)} - {"self", *local}):
        value = namespace.get(name, getattr(builtins, name, None))
        if value is torch or (name not in namespace and value is not None):
            continue  # torch, or a builtin such as getattr
        function_name = getattr(value, "__name__", "")
        if value is not None and getattr(operator, function_name, None) is value:
            dotted[name] = f"operator.{function_name}"
        else:
            parts = [getattr(value, "__module__", None), getattr(value, "__qualname__", name)]
            where = ".".join(part for part in parts if part)
            raise GeneratedSourceError(
                f"the fx code uses {where}, which torch and operator do not define"
            )
    lines = ["import torch", "from torch import nn"]
    return (["import operator", "", *lines] if dotted else lines), dotted


def _steps(function: ast.FunctionDef) -> tuple[str, list[tuple[str, ast.expr]], ast.expr]:
    """fx's input name, its `name = expression` steps and the returned expression.

    Aliases (`input_1 = input`) are resolved and fx's frees (`a = b = None`) dropped: reusing
    names frees values instead.
    """
    placeholder = function.args.args[1].arg
    aliases: dict[str, str] = {}
    steps: list[tuple[str, ast.expr]] = []
    for statement in function.body:
        match statement:
            case ast.Assign(value=ast.Constant(value=None)):
                pass
            case ast.Assign(targets=[ast.Name(id=target)], value=ast.Name(id=source)):
                aliases[target] = aliases.get(source, source)
            case ast.Assign(targets=[ast.Name(id=target)], value=value):
                steps.append((target, _Rename(aliases).visit(value)))
            case ast.Return(value=ast.expr() as value):
                return placeholder, steps, _Rename(aliases).visit(value)
            case _:
                raise GeneratedSourceError(f"unexpected fx code: {ast.unparse(statement)}")
    raise GeneratedSourceError("the fx code returns nothing")


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
        return [f"{indent}{head}", inner, f"{indent}{tail}"]
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
