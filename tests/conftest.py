"""Shared pytest configuration: command-line options and hypothesis profiles."""

from __future__ import annotations

import compileall
import contextlib
import ctypes
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Each xdist worker gets its share of the cores for torch's threads, set before torch starts
# its pool. torch's default, a thread per core in every worker, runs twice as many busy-waiting
# threads as cores, and each forward waits on the other worker's: half the suite's speed.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files (tests/bad_specs/*.expected, tests/golden/*) from the current "
        "output instead of comparing against them",
    )


# Hypothesis profiles, chosen by the HYPOTHESIS_PROFILE environment variable (default `dev`):
# `dev` keeps local runs quick, `ci` draws more examples. Torch timings vary from run to run, so
# neither has a deadline.
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True, scope="module")
def _return_memory_after_each_module() -> Iterator[None]:
    """Give the C allocator's free pages back after each test file: a worker runs many files,
    and the zoo's large models would otherwise add up past the suite's 2.5 GiB."""
    yield
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile archspec once, as installing it would: the suite starts hundreds of
    `python -m archspec` processes, and where PYTHONDONTWRITEBYTECODE is set (this machine) each
    one would compile every module again, a third of its run."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "archspec", quiet=1)
