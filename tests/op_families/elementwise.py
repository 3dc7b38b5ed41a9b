"""Strategies and references of the elementwise family:
mul, broadcasting add, hardsigmoid, mish, elu, prelu, softplus, mean, dropout2d, stochastic_depth.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def references() -> dict[str, Any]:
    return {}
