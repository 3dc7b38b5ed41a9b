"""The `archspec` command's entry point. It lives outside the `archspec` package so that it still
runs, and says what is wrong, when `import archspec` finds the unrelated project of that name."""

from __future__ import annotations

import sys
from importlib import metadata

#: This project's name on PyPI; its import package and command are `archspec`.
DISTRIBUTION = "archspec-nn"
EXIT_INVALID = 2


def main() -> int:
    try:
        import archspec
        from archspec.cli import main as run
    except Exception:  # the other project's files, or a mix of both, may fail in any way
        return _explain()
    if getattr(archspec, "__distribution__", None) != DISTRIBUTION:
        return _explain()
    return run()


def _explain() -> int:
    import importlib.util

    found = importlib.util.find_spec("archspec")
    where = found.origin if found is not None else "nowhere"
    try:
        other = f"the package 'archspec' {metadata.version('archspec')}"
    except metadata.PackageNotFoundError:
        other = "another package"
    print(
        f"archspec: error: `import archspec` finds {other} at {where}, not {DISTRIBUTION}. "
        "The 'archspec' package on PyPI (CPU microarchitectures, which conda and Spack use) has "
        f"the same import name. Install {DISTRIBUTION} in an environment of its own: "
        f"python -m venv .venv && .venv/bin/pip install {DISTRIBUTION}",
        file=sys.stderr,
    )
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
