"""Strategies and references of the spatial_nd family:
conv1d, conv3d, max/avg/adaptive pooling in 1-D and 3-D.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def references() -> dict[str, Any]:
    return {}
