"""Golden error messages: `archspec validate` on every spec in tests/bad_specs/.

Each `NAME.yaml` there is a small bad spec whose first line says what it exercises; `NAME.expected`
holds exactly what `archspec validate tests/bad_specs/NAME.yaml` prints on stderr, run from the
repository root. `pytest --update-goldens` rewrites the .expected files from the current output
(except for the known-bad cases below, whose .expected holds what archspec *should* print).
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import pytest

from archspec.cli import EXIT_INVALID, main

ROOT = Path(__file__).resolve().parent.parent
BAD_SPECS = ROOT / "tests" / "bad_specs"
SPECS = sorted(BAD_SPECS.glob("*.yaml"))

#: Cases whose message is wrong today: their .expected holds the message archspec should print,
#: and the test is a strict xfail, so it fails loudly (XPASS) once the message is fixed; then
#: delete the entry here. `--update-goldens` leaves these .expected files alone.
KNOWN_BAD: dict[str, str] = {}

#: An alias bomb must be refused in well under the 5 s a user would wait for a hang.
BOMB_BUDGET_SECONDS = 2.0


def _case(spec: Path) -> object:
    reason = KNOWN_BAD.get(spec.stem)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(spec, id=spec.stem, marks=marks)


def _validate(spec: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `archspec validate` in-process on `spec`, named relative to the repository root."""
    code = main(["validate", spec.relative_to(ROOT).as_posix()])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("at_root")
@pytest.mark.parametrize("spec", [_case(spec) for spec in SPECS])
def test_error_message_matches_golden(
    spec: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    code, out, err = _validate(spec, capsys)
    assert "Traceback" not in err
    assert out == ""
    assert code == EXIT_INVALID
    golden = spec.with_suffix(".expected")
    if request.config.getoption("--update-goldens") and spec.stem not in KNOWN_BAD:
        golden.write_text(err)
        return
    assert err == golden.read_text()


def test_every_bad_spec_has_a_golden_and_a_purpose() -> None:
    assert SPECS, f"no bad specs found in {BAD_SPECS}"
    for spec in SPECS:
        assert spec.with_suffix(".expected").is_file(), f"{spec.name} has no .expected file"
        assert spec.read_text().startswith("# "), f"{spec.name} must start with a comment"
    orphans = {golden.stem for golden in BAD_SPECS.glob("*.expected")} - {s.stem for s in SPECS}
    assert not orphans, f".expected files without a spec: {sorted(orphans)}"


def test_known_bad_cases_exist() -> None:
    assert set(KNOWN_BAD) <= {spec.stem for spec in SPECS}


@pytest.mark.usefixtures("at_root")
def test_python_tag_runs_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def record(command: str) -> int:
        calls.append(command)
        return 0

    monkeypatch.setattr(os, "system", record)
    for name in ("python_tag", "python_tag_scalar"):
        code, _, _ = _validate(BAD_SPECS / f"{name}.yaml", capsys)
        assert code == EXIT_INVALID
    assert calls == []


@pytest.mark.usefixtures("at_root")
def test_alias_bomb_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    importlib.import_module("archspec.analysis")  # time the parse, not the first import
    start = time.perf_counter()
    code, _, _ = _validate(BAD_SPECS / "alias_bomb.yaml", capsys)
    elapsed = time.perf_counter() - start
    assert code == EXIT_INVALID
    assert elapsed < BOMB_BUDGET_SECONDS, f"took {elapsed:.1f} s"
