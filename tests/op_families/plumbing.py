"""Strategies and references of the plumbing family:
split/chunk, channel_shuffle, pad, crop, group_norm, instance_norm, batchnorm1d/3d.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def references() -> dict[str, Any]:
    return {}
