"""Backends lower an analysed spec to a runtime: torch (an fx GraphModule)."""
