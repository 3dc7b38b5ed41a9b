"""Memory budgets: what compiling or exporting will allocate, checked before anything is."""

from __future__ import annotations

import os
import re
from pathlib import Path

from archspec.errors import ArchspecError, UsageError

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,6})?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


class ResourceError(ArchspecError):
    """The work asked for would need more memory than the process may use."""


def parse_size(text: str) -> int:
    """`512M`, `8G`, `1.5GiB`, `1000000` (bytes) -> bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise UsageError(f"expected a size such as 512M or 8G, got {text[:40]!r}")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def format_size(size: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of free RAM, its cgroup's room and its
    address-space and data limits. None where none of them can be read."""
    bounds = [bound for bound in (_free_ram(), _cgroup_room(), _rlimit_room()) if bound is not None]
    return max(0, min(bounds)) if bounds else None


def check_memory(need: int, what: str, ceiling: int | None = None) -> None:
    """ResourceError when `need` bytes for `what` exceed `ceiling` (default: what is available).

    A ceiling given by the user (--max-memory) replaces the measured one: they know better.
    """
    room = ceiling if ceiling is not None else available_memory()
    if room is None or need <= room:
        return
    source = "the --max-memory ceiling" if ceiling is not None else "available to this process"
    raise ResourceError(
        f"{what} needs about {format_size(need)} of memory, and {format_size(room)} is "
        f"{source}; nothing was allocated. If it does fit, raise the ceiling with --max-memory "
        f"(max_memory= in Python)"
    )


def _free_ram() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        pages = _sysconf("SC_AVPHYS_PAGES")
        size = _sysconf("SC_PAGE_SIZE")
        return pages * size if pages is not None and size is not None else None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def _sysconf(name: str) -> int | None:
    try:
        value = os.sysconf(name)
    except (AttributeError, ValueError, OSError):
        return None
    return value if value > 0 else None


def _cgroup_room() -> int | None:
    """The room left under a cgroup (v2 or v1) memory limit, if the process is under one."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, group = line.split(":", 2)
        root = Path("/sys/fs/cgroup")
        if controllers == "":
            files = (
                root / group.lstrip("/") / "memory.max",
                root / group.lstrip("/") / "memory.current",
            )
        elif "memory" in controllers.split(","):
            base = root / "memory" / group.lstrip("/")
            files = (base / "memory.limit_in_bytes", base / "memory.usage_in_bytes")
        else:
            continue
        try:
            limit, usage = (file.read_text().strip() for file in files)
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 2**60:
            return int(limit) - int(usage)
    return None


def _rlimit_room() -> int | None:
    """Room under RLIMIT_AS and RLIMIT_DATA: a tensor needs address space before it needs RAM."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    rooms = []
    for limit_name, status_key in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        limit = getattr(resource, limit_name, None)
        if limit is None:
            continue
        soft, _ = resource.getrlimit(limit)
        if soft == resource.RLIM_INFINITY:
            continue
        rooms.append(soft - (_status_bytes(status_key) or 0))
    return min(rooms) if rooms else None


def _status_bytes(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None
