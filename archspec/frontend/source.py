"""Read a YAML spec safely into plain data, keeping the line and column of every key and value."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archspec.errors import Diagnostic, Position, SpecError
from archspec.files import UnreadableFile, open_regular
from archspec.validation import SourcePath
from archspec.zoo import is_zoo_reference, zoo_path

# A spec is a short text; these bounds turn hostile input (alias bombs, deep nesting, huge files)
# into an error instead of a hang or a crash.
MAX_SOURCE_BYTES = 8_000_000
MAX_NODES = 1_000_000
MAX_DEPTH = 100
MAX_NUMBER_LENGTH = 100

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_YAML}{name}" for name in ("str", "int", "float", "bool", "null")}
_MERGE_TAG = f"{_YAML}merge"
_STR_TAG = f"{_YAML}str"
_INT_TAG = f"{_YAML}int"
_NUMBER_TAGS = {_INT_TAG, f"{_YAML}float"}
_ALLOWED_TAGS = {
    yaml.ScalarNode: _SCALAR_TAGS,
    yaml.MappingNode: {f"{_YAML}map"},
    yaml.SequenceNode: {f"{_YAML}seq"},
}


@dataclass
class SourceDocument:
    """Data parsed from one YAML file, with the position of every value and mapping key."""

    file: str
    text: str
    data: Any
    # yaml Marks (0-based), turned into Positions only when asked: a spec has ~8 per layer
    values: dict[SourcePath, yaml.Mark] = field(default_factory=dict)
    keys: dict[SourcePath, yaml.Mark] = field(default_factory=dict)
    #: Paths reached through an alias -> the path where the anchored value was first read.
    aliases: dict[SourcePath, SourcePath] = field(default_factory=dict)

    def position(self, path: SourcePath) -> Position:
        """Position of the value at `path`, or of its nearest ancestor that has one."""
        path = self.unalias(path)
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return self._position(found)
        return Position(self.file, 1, 1)

    def key_position(self, path: SourcePath) -> Position:
        """Position of the mapping key that names `path`, falling back to the value's position."""
        mark = self.keys.get(self.unalias(path))
        return self._position(mark) if mark else self.position(path)

    def _position(self, mark: yaml.Mark) -> Position:
        return Position(self.file, mark.line + 1, mark.column + 1)

    def unalias(self, path: SourcePath) -> SourcePath:
        """Where the text of `path` is written, following aliases to their anchors."""
        if self.aliases:
            for end in range(len(path), 0, -1):
                anchor = self.aliases.get(path[:end])
                if anchor is not None:
                    return self.unalias(anchor + path[end:])
        return path

    def error(self, path: SourcePath, message: str, *, at_key: bool = False) -> Diagnostic:
        where = self.key_position(path) if at_key else self.position(path)
        return Diagnostic(message, where)


@dataclass(frozen=True)
class SourceOrigins:
    """Where a layer, or one of its fields, is written: a layer's origin is its path in the
    parsed document (`("layers", 4)`), which the document's position table turns into a place."""

    source: SourceDocument

    def position(self, origin: object, field: str | None = None) -> Position | None:
        if not isinstance(origin, tuple):
            return None
        return self.source.position((*origin, field) if field is not None else origin)


#: What names standard input as the spec, as in most command-line tools.
STDIN = "-"


def read_source(spec: str | Path) -> SourceDocument:
    """Parse a spec given as a path, as `zoo:NAME`, as `-` (standard input) or as YAML text.

    A `Path` is always a file. A string is a file when it is one line naming an existing file or
    ending in .yaml/.yml; otherwise it is YAML text.
    """
    if isinstance(spec, str) and is_zoo_reference(spec):
        spec = zoo_path(spec)
    elif spec == STDIN:
        return parse_yaml(decode_source(_read_stdin(), "<stdin>"), "<stdin>")
    if isinstance(spec, Path) or _names_a_file(spec):
        path = Path(spec)
        return parse_yaml(decode_source(read_bounded(path), str(path)), str(path))
    return parse_yaml(spec, "<spec>")


def _read_stdin() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)  # None when the process has no stdin at all
    if stream is None:
        raise SpecError("cannot read spec from standard input: there is none (it is closed)")
    try:
        data: bytes = stream.read(MAX_SOURCE_BYTES + 1)
    except OSError as error:
        raise SpecError(f"cannot read spec from standard input: {error.strerror}") from error
    if len(data) > MAX_SOURCE_BYTES:
        raise SpecError(f"<stdin>: spec is larger than {MAX_SOURCE_BYTES:,} bytes")
    return data


def _names_a_file(text: str) -> bool:
    if "\n" in text or "\0" in text or len(text) > 4096:
        return False
    try:
        return text.endswith((".yaml", ".yml")) or os.path.isfile(text)
    except (OSError, ValueError):
        return False


def read_bounded(path: Path, limit: int | None = None, what: str = "spec") -> bytes:
    """The bytes of the regular file `path`; SpecError past `limit` bytes (MAX_SOURCE_BYTES).

    Only a regular file is read (see `files.open_regular`).
    """
    try:
        stream = open_regular(path)
    except UnreadableFile as error:
        raise SpecError(f"cannot read {what} {str(path)!r}: {error.reason}") from error
    with stream:
        limit = MAX_SOURCE_BYTES if limit is None else limit
        try:
            data = stream.read(limit + 1)
        except OSError as error:
            raise SpecError(f"cannot read {what} {str(path)!r}: {error.strerror}") from error
    if len(data) > limit:
        raise SpecError(f"{path}: {what} is larger than {limit:,} bytes")
    return data


def decode_source(raw: bytes, file: str) -> str:
    """UTF-8 text; an invalid byte is reported at its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        where = Position(file, before.count(b"\n") + 1, column)
        byte = raw[error.start]
        message = (
            f"the spec is not UTF-8 text: byte 0x{byte:02x} cannot start or continue a character"
        )
        raise SpecError.collect([Diagnostic(message, where)]) from error


def parse_yaml(text: str, file: str = "<spec>") -> SourceDocument:
    """Parse YAML text with the safe loader; tags that construct objects are rejected."""
    if len(text) > MAX_SOURCE_BYTES:
        raise SpecError(f"{file}: spec is larger than {MAX_SOURCE_BYTES} bytes")
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(file, mark.line + 1, mark.column + 1) if mark else None
        problem = error.problem or error.context or "invalid YAML"
        opened = error.context_mark
        if error.problem and error.context and opened and opened is not mark:
            # e.g. an unclosed bracket: say where the construct began
            problem += f" ({error.context} at line {opened.line + 1}, column {opened.column + 1})"
        raise SpecError.collect([Diagnostic(f"YAML syntax: {problem}", where)]) from error
    except yaml.reader.ReaderError as error:
        where = _position_of(text, error.position, file)
        character = error.character
        code = character if isinstance(character, int) else ord(character)
        reason = f"character U+{code:04X} is not allowed in YAML ({error.reason})"
        raise SpecError.collect([Diagnostic(reason, where)]) from error
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "invalid YAML"
        raise SpecError.collect(
            [Diagnostic(f"YAML syntax: {first_line}", Position(file, 1, 1))]
        ) from error
    document = SourceDocument(file, text, None)
    if root is None:
        raise SpecError.collect([Diagnostic("the spec is empty", Position(file, 1, 1))])
    builder = _Builder(loader, document)
    try:
        document.data = builder.build(root, ())
    finally:
        loader.dispose()
    return document


def _position_of(text: str, offset: int, file: str) -> Position:
    before = text[:offset]
    return Position(file, before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


class _Builder:
    """Turns composed YAML nodes into dicts, lists and scalars, recording positions."""

    def __init__(self, loader: yaml.SafeLoader, document: SourceDocument) -> None:
        self.loader = loader
        self.document = document
        self.nodes = 0
        # value, size and path of nodes built already: an alias reuses them instead of re-walking
        self.built: dict[int, tuple[Any, int, SourcePath]] = {}
        # nodes being built: meeting one again means an alias inside its own anchor
        self.building: set[int] = set()

    def where(self, node: yaml.Node) -> Position:
        mark = node.start_mark
        return Position(self.document.file, mark.line + 1, mark.column + 1)

    def fail(self, node: yaml.Node, message: str) -> SpecError:
        return SpecError.collect([Diagnostic(message, self.where(node))])

    def count(self, node: yaml.Node, size: int) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:  # checked per node: an alias bomb stops at its first excess
            raise self.fail(
                node,
                f"the spec expands to more than {MAX_NODES} YAML nodes "
                "(are aliases nested to multiply it?)",
            )

    def build(self, node: yaml.Node, path: SourcePath) -> Any:
        known = self.built.get(id(node))
        if known is not None:
            shared, size, anchor = known
            self.count(node, size)
            if anchor != path and path not in self.document.values:
                self.document.aliases[path] = anchor
            return shared  # shared: nothing downstream mutates spec data
        if id(node) in self.building:
            raise self.fail(
                node, "an alias refers to the value that contains it (a recursive value)"
            )
        if len(path) > MAX_DEPTH:
            raise self.fail(node, f"the spec nests deeper than {MAX_DEPTH} levels")
        if node.tag not in _ALLOWED_TAGS[type(node)]:
            raise self.fail(
                node,
                f"YAML tag {node.tag.replace(_YAML, '!!')!r} is not allowed in "
                "a spec (only plain mappings, lists, strings, numbers, booleans and null)",
            )
        start = self.nodes
        self.count(node, 1)
        self.document.values.setdefault(path, node.start_mark)
        value: Any
        self.building.add(id(node))
        if isinstance(node, yaml.MappingNode):
            value = self.build_mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            value = [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        else:
            value = self.scalar(node)
        self.building.discard(id(node))
        self.built[id(node)] = (value, self.nodes - start, path)
        return value

    def scalar(self, node: yaml.Node) -> Any:
        # the common cases directly; PyYAML's constructor handles 0x1F, 1_000, .inf and the rest
        if node.tag == _STR_TAG:
            return node.value
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_LENGTH:
            # PyYAML's int conversion is quadratic in length (1:59:59:...) and Python refuses
            # more than 4,300 digits; no size in a network needs a tenth of this
            raise self.fail(
                node,
                f"a number written with {len(node.value):,} characters; numbers in a spec "
                f"have at most {MAX_NUMBER_LENGTH}",
            )
        if (
            node.tag == _INT_TAG
            and node.value.isascii()
            and node.value.isdigit()
            and node.value[0] != "0"
        ):
            return int(node.value)
        return self.loader.construct_object(node)

    def build_mapping(self, node: yaml.MappingNode, path: SourcePath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        merges = [value for key, value in node.value if key.tag == _MERGE_TAG]
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                raise self.fail(key_node, "mapping keys must be plain names")
            key = str(self.scalar(key_node))
            if key in result:
                first = self.document.keys[(*path, key)]
                raise self.fail(
                    key_node, f"duplicate key {key!r} (first given at line {first.line + 1})"
                )
            self.document.keys.setdefault((*path, key), key_node.start_mark)
            result[key] = self.build(value_node, (*path, key))
        # merged after the explicit keys, so an overriding key keeps its own position
        for value_node in merges:
            merged.update(self.merge_source(value_node, path))
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def merge_source(self, node: yaml.Node, path: SourcePath) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(source, "a merge key '<<' takes a mapping or a list of mappings")
            merged.update(self.merged_mapping(source, path))
        return merged

    def merged_mapping(self, node: yaml.MappingNode, path: SourcePath) -> dict[str, Any]:
        """A mapping merged into `path`: built once and counted at every use, like an alias, so
        chains of merges cannot multiply work past the node budget."""
        known = self.built.get(id(node))
        if known is None:
            merged: dict[str, Any] = self.build(node, path)
            return merged
        value, size, anchor = known
        self.count(node, size)
        for key in value:
            if (*path, key) not in self.document.keys:
                self.document.aliases.setdefault((*path, key), (*anchor, key))
        return dict(value)
