"""Training step of the compiled ResNet-50 against a hand-written one: time, saved tensors."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional

import archspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forward_speed import GOAL_RATIO, SPEC, seconds
from reference_models import resnet50

BATCH = 8
TOLERANCE = 1e-4  # on the loss of the first step: same weights, same arithmetic
MIB = 2**20
OUTSIDE = "(outside modules)"


def training_step(model: nn.Module, image: Tensor, target: Tensor) -> Callable[[], Tensor]:
    """One SGD step (momentum 0.9): forward, cross-entropy, backward, update; returns the loss."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(model(image), target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def step_ratio(compiled: nn.Module, reference: nn.Module, rounds: int) -> None:
    """Alternate the two models round by round (and which goes first), then compare medians."""
    image = torch.randn(BATCH, 3, 224, 224)
    target = torch.randint(0, 1000, (BATCH,))
    ours, theirs = training_step(compiled, image, target), training_step(reference, image, target)
    difference = abs(ours().item() - theirs().item())  # also the first warm-up step
    if difference > TOLERANCE:
        sys.exit(f"the two models' losses differ by {difference:.3g} > {TOLERANCE}")
    ours(), theirs()  # second warm-up: allocator, oneDNN primitives, momentum buffers
    a: list[float] = []
    b: list[float] = []
    for round_ in range(rounds):
        if round_ % 2:
            b.append(seconds(theirs))
            a.append(seconds(ours))
        else:
            a.append(seconds(ours))
            b.append(seconds(theirs))
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(
        f"training step, batch {BATCH} (losses differ by {difference:.2g}): archspec "
        f"{statistics.median(a) * 1e3:7.1f} ms, hand-written {statistics.median(b) * 1e3:7.1f} ms "
        f"(medians of {rounds}); median of per-round ratios {ratio:.3f} (from {min(ratios):.3f} "
        f"to {max(ratios):.3f}), goal <= {GOAL_RATIO}: {verdict}"
    )


@dataclass
class SavedTensors:
    """What autograd saves for backward over one forward, per storage and per tensor."""

    parameters: set[int]  # data_ptr of every parameter's storage
    storages: dict[int, int] = field(default_factory=dict)  # data_ptr -> nbytes
    tensors: int = 0  # plain sum of numel * element_size
    count: int = 0
    by_layer: Counter[str] = field(default_factory=Counter)  # the same sum per leaf-module call
    savers: dict[int, set[str]] = field(default_factory=dict)  # data_ptr -> leaf-module calls
    layer: str = OUTSIDE

    def pack(self, tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        self.tensors += tensor.numel() * tensor.element_size()
        self.by_layer[self.layer] += tensor.numel() * tensor.element_size()
        self.savers.setdefault(storage.data_ptr(), set()).add(self.layer)
        self.count += 1
        return tensor

    @property
    def storage_bytes(self) -> int:
        return sum(self.storages.values())

    @property
    def parameter_bytes(self) -> int:
        return sum(n for ptr, n in self.storages.items() if ptr in self.parameters)

    def alone(self, rename: Callable[[str], str]) -> Counter[str]:
        """Per leaf-module call, the bytes of storages that no other call saves."""
        layers = ((self.savers[ptr], n) for ptr, n in self.storages.items())
        return Counter({rename(next(iter(s))): n for s, n in layers if len(s) == 1})


def saved_tensors(model: nn.Module, image: Tensor) -> SavedTensors:
    """Run one forward under `saved_tensors_hooks`, noting the leaf module each tensor came from.

    A module called again in the same forward (a hand-written block's one ReLU) is `name#2`, ...
    """
    saved = SavedTensors({p.untyped_storage().data_ptr() for p in model.parameters()})
    calls: Counter[str] = Counter()

    def enter(name: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            calls[name] += 1
            saved.layer = name if calls[name] == 1 else f"{name}#{calls[name]}"

        return hook

    def leave(*_: object) -> None:
        saved.layer = OUTSIDE

    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    handles = [m.register_forward_pre_hook(enter(name)) for name, m in leaves]
    handles += [m.register_forward_hook(leave) for _, m in leaves]
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda tensor: tensor):
        model(image)  # the graph, and the saved tensors with it, go once counted
    for handle in handles:
        handle.remove()
    return saved


def saved_bytes(compiled: nn.Module, reference: nn.Module) -> None:
    image = torch.randn(BATCH, 3, 224, 224)
    ours, theirs = saved_tensors(compiled, image), saved_tensors(reference, image)
    print(f"saved for backward over one forward, batch {BATCH} (MiB):")
    print(f"  {'':<40}{'archspec':>10}{'hand-written':>14}")
    rows: tuple[tuple[str, Callable[[SavedTensors], int]], ...] = (
        ("distinct storages (untyped nbytes)", lambda s: s.storage_bytes),
        ("  of which parameters", lambda s: s.parameter_bytes),
        ("sum of numel * element_size", lambda s: s.tensors),
    )
    for label, value in rows:
        print(f"  {label:<40}{value(ours) / MIB:>10.2f}{value(theirs) / MIB:>14.2f}")
    print(f"  {'saved tensors':<40}{ours.count:>10}{theirs.count:>14}")
    same = ours.storage_bytes == theirs.storage_bytes and ours.tensors == theirs.tensors
    print(f"goal: equal bytes both ways: {'met' if same else 'NOT met'}")
    if not same:
        differing_layers(ours, theirs)


def spec_name(call: str) -> str:
    """`layer1.0.relu#2`, the hand-written block's ReLU called a second time -> `layer1.0.relu2`."""
    name, _, count = call.partition("#")
    if name.startswith("layer") and name.endswith(".relu"):
        return f"{name}{count or 1}"
    return call


def differing_layers(ours: SavedTensors, theirs: SavedTensors) -> None:
    """The leaf-module calls whose saved tensors differ, by name in the spec."""
    sums = ours.by_layer, Counter({spec_name(c): n for c, n in theirs.by_layer.items()})
    alone = ours.alone(str), theirs.alone(spec_name)
    print("  layers that differ (MiB): sum of numel * element_size, and bytes of the storages")
    print(f"  that layer alone saves; archspec then hand-written\n    {'':<24}", end="")
    print("".join(f"{h:>10}" for h in ("sum", "alone", "sum", "alone")))
    for name in sorted(sums[0].keys() | sums[1].keys() | alone[0].keys() | alone[1].keys()):
        a, b = (sums[0][name], alone[0][name]), (sums[1][name], alone[1][name])
        if a != b:
            print(f"    {name:<24}" + "".join(f"{n / MIB:>10.2f}" for n in (*a, *b)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="timed steps of each model")
    args = parser.parse_args(argv)
    print(
        f"ResNet-50, CPU, train mode, SGD momentum 0.9, {torch.get_num_threads()} threads; "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    torch.manual_seed(0)
    compiled = archspec.compile(SPEC).train()
    reference = resnet50().train()
    reference.load_state_dict(compiled.state_dict())  # same weights: same arithmetic
    saved_bytes(compiled, reference)
    step_ratio(compiled, reference, args.rounds)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
