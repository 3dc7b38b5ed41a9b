"""Load a state_dict into a compiled network, reporting what did not fit instead of raising torch's
raw error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from archspec.errors import ArchspecError

#: Keys listed per kind in a message before "and N more".
SHOWN = 5


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
    """A state_dict from a file, read with `weights_only=True` so the file cannot run code."""
    try:
        loaded = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise WeightsError(f"weights file {str(path)!r} does not exist") from error
    except Exception as error:  # torch raises many kinds for a file that is not a state_dict
        raise WeightsError(f"cannot read weights from {str(path)!r}: {error}") from error
    # checkpoints often wrap the state_dict with optimizer state and epoch counters
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise WeightsError(f"{str(path)!r} does not hold a state_dict (a mapping of tensors)")
    return loaded


def load_weights(
    module: nn.Module, weights: str | Path | Mapping[str, torch.Tensor], strict: bool = True
) -> WeightsReport:
    """Copy matching tensors into `module`. Strict: every key and shape must match, or nothing
    is loaded and WeightsError lists the differences; otherwise what fits is loaded."""
    state = read_state_dict(weights) if isinstance(weights, str | Path) else weights
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
