"""Strategies and value references of the op families, one module per family.

Each module defines STRATEGIES (op name -> hypothesis strategy of OpCase) and REFERENCES (op name
-> reference computing the op's output from its fields and lowered module, independently of the
lowering: `reference(op, lowered, *inputs) -> tensor`). tests/strategies.py and
tests/test_op_oracles.py merge them into their tables.
"""

from __future__ import annotations

from typing import Any

from op_families import elementwise, plumbing, resampling, spatial_nd, tokens

_FAMILIES = (elementwise, plumbing, resampling, spatial_nd, tokens)

FAMILY_STRATEGIES: dict[str, Any] = {}
for _family in _FAMILIES:
    FAMILY_STRATEGIES.update(_family.STRATEGIES)


def family_references() -> dict[str, Any]:
    """Imported lazily: the references import torch, the strategies must not need to."""
    references: dict[str, Any] = {}
    for family in _FAMILIES:
        references.update(family.references())
    return references
