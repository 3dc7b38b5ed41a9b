"""Strategies and references of the resampling family:
upsample, conv_transpose2d, pixel_shuffle, adaptive_max_pool2d.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def references() -> dict[str, Any]:
    return {}
