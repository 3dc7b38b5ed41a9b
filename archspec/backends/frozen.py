"""Layers pinned to eval mode: frozen norms whose running statistics must hold while training."""

from __future__ import annotations

from typing import Self

from torch import nn

#: `EvalModeBatchNorm2d` is `nn.BatchNorm2d` pinned to eval mode.
PREFIX = "EvalMode"


class EvalMode(nn.Module):
    """Mixin: `train(mode)` always sets eval mode, so `model.train()` leaves the layer alone."""

    def train(self, mode: bool = True) -> Self:
        return super().train(False)


_CLASSES: dict[type[nn.Module], type[nn.Module]] = {}


def pin_eval_mode(module: nn.Module) -> nn.Module:
    """`module`, now an instance of its class's EvalMode subclass and in eval mode.

    Only the class changes: parameters, buffers and state_dict keys stay as they are.
    """
    module.__class__ = eval_mode_class(type(module))
    return module.eval()


def eval_mode_class(cls: type[nn.Module]) -> type[nn.Module]:
    """`EvalMode<Name>(EvalMode, torch.nn.<Name>)`, one class per torch.nn class."""
    if cls not in _CLASSES:
        # pickle finds the class again by its name in this module (see __getattr__)
        if getattr(nn, cls.__name__, None) is not cls:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not in torch.nn")
        name = PREFIX + cls.__name__
        namespace = {
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"nn.{cls.__name__}, always in eval mode.",
        }
        # setdefault: two threads building the same class still share the first one
        _CLASSES.setdefault(cls, type(name, (EvalMode, cls), namespace))
    return _CLASSES[cls]


def plain_class(module: nn.Module) -> type[nn.Module]:
    """The class of `module` without the EvalMode pin: `nn.BatchNorm2d`."""
    return next(
        cls
        for cls in type(module).__mro__
        if issubclass(cls, nn.Module) and not issubclass(cls, EvalMode)
    )


def pinned(module: nn.Module) -> tuple[str, ...]:
    """Dotted names of the submodules of `module` pinned to eval mode."""
    return tuple(name for name, child in module.named_modules() if isinstance(child, EvalMode))


def __getattr__(name: str) -> type[nn.Module]:
    # unpickling looks `EvalModeBatchNorm2d` up here: build it again from nn.BatchNorm2d
    base = getattr(nn, name.removeprefix(PREFIX), None) if name.startswith(PREFIX) else None
    if not (isinstance(base, type) and issubclass(base, nn.Module)):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return eval_mode_class(base)
