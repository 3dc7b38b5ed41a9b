"""The packaged zoo: the specs shipped with archspec, addressed as `zoo:NAME` by every command."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from archspec.errors import UsageError, shown, suggest

#: What names a zoo spec: `zoo:resnet50`.
PREFIX = "zoo:"
_NAME = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class ZooEntry:
    """One packaged spec: its name, file and the title its leading comment gives."""

    name: str
    path: Path
    title: str


def names() -> tuple[str, ...]:
    """Every zoo spec's name, sorted."""
    folder = resources.files(__name__)
    return tuple(
        sorted(
            item.name[: -len(".yaml")] for item in folder.iterdir() if item.name.endswith(".yaml")
        )
    )


def is_zoo_reference(text: str) -> bool:
    return text.startswith(PREFIX)


def zoo_path(reference: str) -> Path:
    """The file of `zoo:NAME`; UsageError naming the zoo (and the nearest name) for another."""
    name = reference.removeprefix(PREFIX)
    known = names()
    if _NAME.fullmatch(name) is None or name not in known:
        raise UsageError(
            f"no spec {shown(name)} in the zoo{suggest(name, known)}; `archspec zoo` lists them: "
            + ", ".join(known)
        )
    return _file(name)


def _file(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(f"{name}.yaml")))


def entries() -> tuple[ZooEntry, ...]:
    """Every zoo spec with its title, read from the comment that opens it."""
    # the folder is listed once: zoo_path would list it again for every name it checks
    return tuple(
        ZooEntry(name, path := _file(name), _title(path.read_text("utf-8"))) for name in names()
    )


def _title(text: str) -> str:
    """`ResNet-50` from `# ResNet-50 (He et al., 2016), named as ...`: the comment's subject."""
    for line in text.splitlines():
        comment = line.removeprefix("#").strip()
        if line.startswith("#") and not comment.startswith("yaml-language-server"):
            return re.split(r" \(|: |, |\. ", comment, maxsplit=1)[0].rstrip(".,")
    return ""
