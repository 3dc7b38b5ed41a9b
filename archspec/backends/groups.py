"""The container of a group of layers (`layer1`, `layer1.0`): it holds the layers' modules under
their dotted names, and prints as a summary, with runs of equal children folded as torch's
ModuleList folds them."""

from __future__ import annotations

from torch import nn


def regroup(network: nn.Module) -> None:
    """Make the network's containers Groups again: fx rebuilds them as plain modules, which
    print as `Module(` and say nothing of what they hold. Group adds no state, only printing."""
    for module in network.modules():
        if type(module) is nn.Module:
            module.__class__ = Group


def is_group(module: nn.Module) -> bool:
    """A container of layers: a Group, or the plain module fx makes for a dotted path."""
    return isinstance(module, Group) or type(module) is nn.Module


class Group(nn.Module):
    """Layers under one dotted prefix; no forward of its own (the network's graph calls them)."""

    def extra_repr(self) -> str:
        count = sum(parameter.numel() for parameter in self.parameters())
        return f"{len(self._modules)} children, {count:,} params"

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        children = [(key, repr(child)) for key, child in self._modules.items() if child]
        start = 0
        while start < len(children):
            end = start + 1
            while end < len(children) and children[end][1] == children[start][1]:
                end += 1
            keys = (
                children[start][0]
                if end - start == 1
                else (f"{children[start][0]}-{children[end - 1][0]}")
            )
            times = "" if end - start == 1 else f"{end - start} x "
            text = children[start][1].replace("\n", "\n  ")
            lines.append(f"  ({keys}): {times}{text}")
            start = end
        return "\n".join(lines) + "\n)"
