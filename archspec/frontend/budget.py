"""Bounds on expansion: a short spec cannot expand without end, nor take long to refuse."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archspec.errors import SpecError
from archspec.frontend.spec import BlockLayer, GroupLayer, LayerEntry, OpLayer, SpecDocument
from archspec.validation import SourcePath

if TYPE_CHECKING:
    from archspec.frontend.source import SourceDocument

#: Bound on expanded layers and on block nesting: a `repeat: 1000000000` is an error, not a hang.
MAX_LAYERS = 200_000
MAX_BLOCK_DEPTH = 32
#: Entries visited per layer allowed: groups, block instances and left-out layers count too.
INSTANCES_PER_LAYER = 4


class ExpansionBudget:
    """Counts what expansion visits and refuses repeats that would certainly pass the limits."""

    def __init__(self, document: SpecDocument, source: SourceDocument) -> None:
        self.document = document
        self.source = source
        self.entries = 0
        self.fewest_by_block: dict[str, int] = {}

    def count_entry(self, path: SourcePath) -> None:
        # groups, blocks and left-out entries count too, so that repeats of left-out layers or of
        # empty blocks cannot spin forever
        self.entries += 1
        if self.entries > INSTANCES_PER_LAYER * MAX_LAYERS:
            message = (
                f"the spec expands to more than {INSTANCES_PER_LAYER * MAX_LAYERS:,} entries "
                "(layers, groups, block instances and left-out layers)"
            )
            raise SpecError.collect([self.source.error(path, message)])

    def too_large(self, path: SourcePath) -> SpecError:
        message = f"the spec expands to more than {MAX_LAYERS} layers"
        return SpecError.collect([self.source.error(path, message)])

    def check_repeat(self, entry: LayerEntry, path: SourcePath, count: int, layers: int) -> None:
        """Fail before expanding `count` copies that would certainly pass the layer limit, with
        `layers` expanded so far."""
        if layers + count * self.fewest_layers(entry, set()) > MAX_LAYERS:
            raise self.too_large((*path, "repeat"))

    def fewest_layers(self, entry: LayerEntry, visiting: set[str]) -> int:
        """A lower bound of the layers one copy of `entry` expands to (conditional ones count 0)."""
        if isinstance(entry, OpLayer):
            return 1
        if isinstance(entry, GroupLayer):
            return self._fewest_in(entry.layers, visiting)
        if (
            entry.block not in self.document.blocks
            or entry.block in visiting
            or len(visiting) > MAX_BLOCK_DEPTH
        ):
            return 0  # still a lower bound; expanding will say what is wrong
        # blocks that instantiate each other twice per level would make this exponential
        known = self.fewest_by_block.get(entry.block)
        if known is None:
            known = self._fewest_in(
                self.document.blocks[entry.block].layers, visiting | {entry.block}
            )
            self.fewest_by_block[entry.block] = known
        return known

    def _fewest_in(self, children: list[LayerEntry], visiting: set[str]) -> int:
        total = 0
        for child in children:
            if child.when is None:
                copies = child.repeat if isinstance(child, GroupLayer | BlockLayer) else None
                total += (copies if isinstance(copies, int) else 1) * self.fewest_layers(
                    child, visiting
                )
        return total
