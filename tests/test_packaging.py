"""What travels with the package: the zoo as `zoo:NAME`, `init`'s starter spec and schema, and
the version check against the unrelated `archspec` project on PyPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from commands import run

import archspec
from archspec import zoo
from archspec.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


# -- the zoo ------------------------------------------------------------------------------------


def test_zoo_holds_every_packaged_spec():
    on_disk = sorted(path.stem for path in (ROOT / "archspec" / "zoo").glob("*.yaml"))
    assert list(zoo.names()) == on_disk
    assert len(on_disk) >= 27


def test_the_wheel_carries_the_zoo_and_the_starter():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["archspec"]
    assert {"zoo/*.yaml", "cli/starter.yaml", "py.typed"} <= set(package_data)


def test_zoo_reference_loads_like_the_file():
    by_name = archspec.analyze("zoo:resnet18")
    by_path = archspec.analyze(ROOT / "archspec" / "zoo" / "resnet18.yaml")
    assert by_name.totals == by_path.totals


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("zoo:resnet5", "no spec 'resnet5' in the zoo (did you mean 'resnet50'?)"),
        ("zoo:../../etc/passwd", "no spec '../../etc/passwd' in the zoo"),
        ("zoo:", "no spec '' in the zoo"),
        ("zoo:__init__", "no spec '__init__' in the zoo"),
    ],
)
def test_unknown_zoo_names_are_refused_with_a_suggestion(reference, message):
    with pytest.raises(UsageError, match="archspec zoo` lists them") as error:
        archspec.load(reference)
    assert message in error.value.message


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "zoo:lenet5"],
        ["analyze", "zoo:lenet5", "--format", "json"],
        ["graph", "zoo:lenet5", "-o", "{tmp}/g.mmd"],
        ["compile", "zoo:lenet5", "--set", "num_classes=3", "-o", "{tmp}/m.py"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_command_takes_a_zoo_name(capsys, tmp_path, argv):
    code, out, err = run(capsys, *(word.format(tmp=tmp_path) for word in argv))
    assert code == 0, err
    assert out


def test_zoo_command_lists_names_and_figures(capsys):
    code, out, _ = run(capsys, "zoo")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["zoo:NAME", "Model", "Input", "Params", "MACs", "Variants"]
    resnet50 = next(line for line in lines if line.startswith("zoo:resnet50 "))
    assert "ResNet-50" in resnet50
    assert "25.56 M" in resnet50
    assert "4.09 G" in resnet50
    assert lines[-1].startswith(f"{len(zoo.names())} specs;")


def test_zoo_json_has_exact_figures(capsys):
    code, out, _ = run(capsys, "zoo", "--format", "json")
    assert code == 0
    by_name = {entry["name"]: entry for entry in json.loads(out)}
    assert set(by_name) == set(zoo.names())
    assert by_name["resnet18"]["params"] == 11_689_512
    assert by_name["vit_b_16"]["variants"] == ["b_32", "l_16", "l_32", "h_14"]


# -- init ---------------------------------------------------------------------------------------


def _schema_validator(folder: Path) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        json.loads((folder / "archspec.schema.json").read_text())
    )


def test_init_writes_a_starter_that_validates_and_its_schema(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "init", "mynet")
    assert code == 0
    assert out.splitlines()[-1] == "next: archspec analyze mynet.yaml"
    text = (tmp_path / "mynet.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=archspec.schema.json"
    assert _schema_validator(tmp_path).iter_errors(yaml.safe_load(text)).__next__ is not None
    assert list(_schema_validator(tmp_path).iter_errors(yaml.safe_load(text))) == []
    report = archspec.analyze(tmp_path / "mynet.yaml")
    assert report.name == "mynet"
    assert report.layer("fc").output_shape == (10,)


def test_init_from_the_zoo_renames_and_points_at_the_local_schema(capsys, tmp_path):
    target = tmp_path / "nested" / "r.yaml"
    code, _, err = run(capsys, "init", "my_resnet", "--from", "zoo:resnet18", "-o", str(target))
    assert code == 0, err
    text = target.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=archspec.schema.json"
    assert "\nname: my_resnet\n" in text
    assert list(_schema_validator(target.parent).iter_errors(yaml.safe_load(text))) == []
    assert archspec.analyze(target).totals.params == 11_689_512


def test_init_refuses_to_overwrite_and_bad_names(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "init", "a")[0] == 0
    before = (tmp_path / "a.yaml").read_text()
    code, _, err = run(capsys, "init", "a", "--from", "zoo:lenet5")
    assert code == 2
    assert "'a.yaml' exists; --force replaces it" in err
    assert (tmp_path / "a.yaml").read_text() == before
    assert run(capsys, "init", "a", "--from", "zoo:lenet5", "--force")[0] == 0
    code, _, err = run(capsys, "init", "9lives")
    assert code == 2
    assert "does not start with a digit" in err


@pytest.mark.parametrize(
    ("where", "reason"),
    [("/proc/nowhere/n.yaml", "cannot make folder '/proc/nowhere'"), ("{tmp}", "it is a folder")],
)
def test_init_where_nothing_can_be_written_is_an_error(capsys, tmp_path, where, reason):
    code, out, err = run(capsys, "init", "n", "-o", where.format(tmp=tmp_path))
    assert code == 2
    assert out == ""
    assert reason in err


def test_init_from_a_broken_spec_writes_nothing(capsys, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: b\ninput: [3, 8, 8]\nlayers:\n  - {op: conv2d, kernel: 3}\n")
    code, _, err = run(capsys, "init", "b2", "--from", str(broken), "-o", str(tmp_path / "b2.yaml"))
    assert code == 2
    # at its own line, not the copy's
    assert err.startswith(f"{broken}:4:5: error: layer '0': conv2d field 'out_channels'")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.yaml"]


# -- the name on PyPI, and the other archspec ---------------------------------------------------


def test_distribution_name_and_version_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == archspec.__distribution__ == "archspec-nn"
    assert project["scripts"]["archspec"] == "archspec_launcher:main"


def test_version_names_the_distribution(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out == (
        f"archspec-nn {archspec.__version__} (import archspec: {Path(archspec.__file__).parent})\n"
    )


def _python(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{ROOT}"}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=path,  # not the checkout, whose archspec `python -c` would find first
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_warns_when_the_other_archspec_is_installed_too(tmp_path):
    info = tmp_path / "archspec-0.2.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: archspec\nVersion: 0.2.7\n")
    child = _python(
        "import sys, archspec.cli; sys.exit(archspec.cli.main(['--version']))", tmp_path
    )
    assert child.returncode == 0
    assert child.stdout.startswith(f"archspec-nn {archspec.__version__} ")
    assert "the package 'archspec' 0.2.7 (CPU microarchitectures" in child.stderr
    assert "environment of its own" in child.stderr


def test_the_command_explains_when_import_archspec_is_the_other_project(tmp_path):
    # the other project's __init__.py, first on the path, as after `pip install archspec`
    (tmp_path / "archspec").mkdir()
    (tmp_path / "archspec" / "__init__.py").write_text('__version__ = "0.2.7"\n')
    child = _python("import sys, archspec_launcher; sys.exit(archspec_launcher.main())", tmp_path)
    assert child.returncode == 2
    assert "`import archspec` finds" in child.stderr
    assert str(tmp_path / "archspec" / "__init__.py") in child.stderr
    assert "Traceback" not in child.stderr


# -- extras: what needs torch, onnx or matplotlib says so first --------------------------------

HIDDEN = """\
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
import archspec.cli
sys.exit(archspec.cli.main({argv!r}))
"""


@pytest.mark.parametrize(
    ("hidden", "argv", "feature", "extra"),
    [
        (["torch"], ["compile", "zoo:lenet5", "-o", "m.py"], "compiling a network", "torch"),
        (["onnxscript"], ["export", "zoo:lenet5", "-o", "m.onnx"], "exporting ONNX", "onnx"),
        (["matplotlib"], ["analyze", "zoo:lenet5", "--plot", "p.png"], "--plot", "plot"),
    ],
    ids=["compile", "export", "plot"],
)
def test_a_missing_extra_is_one_line_before_any_output(tmp_path, hidden, argv, feature, extra):
    child = subprocess.run(
        [sys.executable, "-c", HIDDEN.format(hidden=set(hidden), argv=argv)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 2
    assert child.stdout == ""
    assert child.stderr.splitlines() == [
        f"archspec: error: {feature} needs {hidden[0]}, which is not installed: "
        f"pip install 'archspec-nn[{extra}]'"
    ]
    assert list(tmp_path.iterdir()) == []


def test_analysis_needs_none_of_the_extras(tmp_path):
    argv = ["analyze", "zoo:resnet50", "--depth", "1"]
    child = subprocess.run(
        [sys.executable, "-c", HIDDEN.format(hidden={"torch", "onnx", "matplotlib"}, argv=argv)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert "Total" in child.stdout


def test_pre_commit_hook_validates_specs():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "archspec-validate"
    assert hook["entry"] == "archspec validate"
    assert hook["language"] == "python"
    # pre-commit installs the package itself: the hook must not pull torch
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [name for name in dependencies if name.startswith(("torch", "onnx"))]
