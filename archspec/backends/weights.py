"""Load a state_dict into a compiled network, reporting what did not fit instead of raising torch's
raw error."""

from __future__ import annotations

import re
import reprlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import torch
from torch import nn

from archspec.errors import ArchspecError
from archspec.files import UnreadableFile, open_regular

#: Keys listed per kind in a message before "and N more".
SHOWN = 5
#: torch's reasons for refusing a file run to paragraphs; a message keeps this many characters.
REASON_LIMIT = 300
#: What a stat mode is, for a path that is not a regular file.
_INTEGERS = frozenset(
    {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}
    | {torch.uint16, torch.uint32, torch.uint64}
)
_UNPICKLER = "WeightsUnpickler error:"
#: Keys as a message shows them: whole parameter names, a hostile key cut short.
_KEYS = reprlib.Repr()
_KEYS.maxstring = _KEYS.maxother = 120
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class WeightsError(ArchspecError):
    """A weights file cannot be read, or does not fit the network under strict loading."""


@dataclass(frozen=True)
class WeightsReport:
    """What loading a state_dict did: keys loaded, and keys left out with the reason."""

    loaded: tuple[str, ...]
    missing: tuple[str, ...]  # in the network, not in the file: left at their initial values
    unexpected: tuple[str, ...]  # in the file, not in the network: ignored
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # key, network, file

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def lines(self) -> list[str]:
        """One line per kind of problem, naming the first keys."""
        found = []
        if self.mismatched:
            shapes = [
                f"{key} (network {list(ours)}, file {list(theirs)})"
                for key, ours, theirs in self.mismatched
            ]
            found.append(f"{len(self.mismatched)} of different shape: {_some(shapes)}")
        if self.missing:
            found.append(f"{len(self.missing)} missing from the file: {_some(self.missing)}")
        if self.unexpected:
            found.append(f"{len(self.unexpected)} not in the network: {_some(self.unexpected)}")
        return found


def read_state_dict(path: str | Path) -> Mapping[str, torch.Tensor]:
    """A state_dict from a regular file, read with `weights_only=True` so the file cannot run
    code; checkpoints that wrap one (`{"state_dict": ...}`, `{"model": ...}`) are unwrapped."""
    with _open_regular(Path(path)) as file:
        try:
            # torch's deprecation notes (TypedStorage, ...) are about torch, not the file
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many kinds for a file that is not a state_dict
            raise WeightsError(
                f"cannot read weights from {str(path)!r}: {_reason(error)}"
            ) from error
    # checkpoints often wrap the state_dict with optimizer state and epoch counters
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    return check_state_dict(loaded, f"{str(path)!r}: ")


def check_state_dict(state: object, where: str = "") -> Mapping[str, torch.Tensor]:
    """`state` itself, once it is a mapping of names to dense real tensors with values (not on
    the meta device); `where` prefixes the message, which names the first key that is not."""
    if not isinstance(state, Mapping):
        raise WeightsError(
            f"{where}weights are {_kind(state)}, not a state_dict (a mapping of names to tensors)"
        )
    for key, value in state.items():
        if not isinstance(key, str):
            raise WeightsError(
                f"{where}weights key {_short(key)} is {_kind(key)}, not a string; "
                "a state_dict is keyed by parameter names"
            )
        problem = _tensor_problem(value)
        if problem:
            raise WeightsError(f"{where}weights {_short(key)} is {problem}")
    return cast("Mapping[str, torch.Tensor]", state)


def _tensor_problem(value: object) -> str | None:
    """What keeps `value` out of a state_dict, or None when it is a dense real tensor."""
    if not isinstance(value, torch.Tensor):
        return f"{_kind(value)}, not a tensor"
    if value.is_nested:
        return "a nested tensor; a state_dict holds dense tensors"
    if value.layout != torch.strided:
        return f"{_layout(value.layout)}; a state_dict holds dense tensors"
    if value.is_quantized:
        return f"a quantized tensor ({value.dtype}); a state_dict holds dense real tensors"
    if value.is_meta:
        return "on the meta device, which has shapes but no values"
    if value.is_complex():
        # copying complex into a real parameter would drop the imaginary part
        return f"complex ({value.dtype}); network weights are real"
    if not (value.is_floating_point() or value.dtype in _INTEGERS or value.dtype == torch.bool):
        return f"of dtype {value.dtype}, not a floating, integer or bool dtype"
    return None


def _layout(layout: torch.layout) -> str:
    name = str(layout).removeprefix("torch.").lstrip("_")
    return f"a sparse tensor ({name})" if name.startswith("sparse") else f"a {name} tensor"


def _short(key: object) -> str:
    return _KEYS.repr(key)


def _kind(value: object) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _open_regular(path: Path) -> BinaryIO:
    """torch.load would block forever on a FIFO and read /dev/zero until memory runs out."""
    try:
        return open_regular(path)
    except UnreadableFile as error:
        raise WeightsError(f"cannot read weights from {str(path)!r}: {error.reason}") from error


def _reason(error: Exception) -> str:
    """torch's message on one line of at most REASON_LIMIT characters. For a refused pickle,
    only what was refused: the rest is advice about weights_only=False, which archspec never
    takes."""
    text = _ANSI.sub("", str(error))
    if _UNPICKLER in text:
        text = re.split(r"\.\s|\n\n", text.split(_UNPICKLER, 1)[1].strip(), maxsplit=1)[0]
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def load_weights(
    module: nn.Module, weights: str | Path | Mapping[str, torch.Tensor], strict: bool = True
) -> WeightsReport:
    """Copy matching tensors into `module`. Strict: every key and shape must match, or nothing
    is loaded and WeightsError lists the differences; otherwise what fits is loaded."""
    state = (
        read_state_dict(weights) if isinstance(weights, str | Path) else check_state_dict(weights)
    )
    own = module.state_dict()
    mismatched = tuple(
        (key, tuple(own[key].shape), tuple(value.shape))
        for key, value in state.items()
        if key in own and own[key].shape != value.shape
    )
    bad = {key for key, _, _ in mismatched}
    report = WeightsReport(
        loaded=tuple(key for key in own if key in state and key not in bad),
        missing=tuple(key for key in own if key not in state),
        unexpected=tuple(key for key in state if key not in own),
        mismatched=mismatched,
    )
    if strict and not report.complete:
        problems = "; ".join(report.lines())
        raise WeightsError(
            f"weights do not fit the network: {problems} "
            "(load with strict=False / --no-strict to load what fits)"
        )
    module.load_state_dict({key: state[key] for key in report.loaded}, strict=False)
    return report


def _some(keys: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(keys[:SHOWN])
    return shown + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")
