"""Weights: hostile files and state_dicts are refused with the key and the problem named."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest
import torch
from timing import within
from torch import nn

import archspec
from archspec.backends.weights import WeightsError, check_state_dict, read_state_dict

TINY = "name: t\ninput: [3, 8, 8]\nlayers:\n  - {op: conv2d, out_channels: 4, kernel: 3}\n"


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return archspec.compile(TINY).state_dict()


@pytest.mark.parametrize("form", ["path", "str", "mapping", "checkpoint"])
def test_a_good_state_dict_still_loads(form, state, tmp_path):
    path = tmp_path / "good.pt"
    # checkpoints wrapping the state_dict with training state are unwrapped
    torch.save({"epoch": 3, "state_dict": state} if form == "checkpoint" else state, path)
    weights = {"path": path, "str": str(path), "mapping": state, "checkpoint": path}[form]
    module = archspec.compile(TINY, weights=weights)
    assert module.weights_report is not None
    assert module.weights_report.complete
    assert all(torch.equal(module.state_dict()[key], state[key]) for key in state)


def _nested() -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested tensors are a prototype, and torch says so
        return torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])


def _quantized() -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates quantized tensors, and says so
        return torch.quantize_per_tensor(torch.zeros(4, 3, 3, 3), 0.1, 0, torch.qint8)


HOSTILE_FILES = {
    "sparse": (
        lambda: {"0.weight": torch.eye(3).to_sparse()},
        r"weights '0\.weight' is a sparse tensor",
    ),
    "int key": (lambda: {0: torch.zeros(2)}, r"weights key 0 is an int, not a string"),
    "complex": (
        lambda: {"0.weight": torch.zeros(2, dtype=torch.complex64)},
        r"weights '0\.weight' is complex \(torch\.complex64\)",
    ),
    "list": (lambda: {"0.weight": [1.0, 2.0]}, r"weights '0\.weight' is a list, not a tensor"),
    "none": (lambda: {"0.bias": None}, r"weights '0\.bias' is None, not a tensor"),
    "nested": (lambda: {"0.weight": _nested()}, r"weights '0\.weight' is a nested tensor"),
    "meta": (
        lambda: {"0.weight": torch.zeros(2, device="meta")},
        r"weights '0\.weight' is on the meta device",
    ),
    "quantized": (lambda: {"0.weight": _quantized()}, r"weights '0\.weight' is a quantized"),
    "not a mapping": (lambda: [torch.zeros(2)], r"weights are a list, not a state_dict"),
}


@pytest.mark.parametrize(("make", "message"), HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_a_file_that_is_not_a_state_dict_names_the_key(make, message, tmp_path):
    path = tmp_path / "hostile.pt"
    torch.save(make(), path)
    with pytest.raises(WeightsError, match=rf"^error: '{re.escape(str(path))}': {message}"):
        archspec.compile(TINY, weights=path)


HOSTILE_VALUES = {
    "sparse": (lambda: torch.eye(3).to_sparse(), r"is a sparse tensor \(sparse_coo\); a state_"),
    "quantized": (_quantized, r"is a quantized tensor \(torch\.qint8\)"),
    "complex": (lambda: torch.zeros(4, 3, 3, 3, dtype=torch.cfloat), r"is complex"),
    "module": (lambda: nn.ReLU(), r"is a ReLU, not a tensor"),
    "string": (lambda: "weights", r"is a str, not a tensor"),
    "bits": (
        lambda: torch.zeros(2, dtype=torch.uint8).view(torch.bits8),
        r"is of dtype torch\.bits8, not a",
    ),
}


@pytest.mark.parametrize(("make", "message"), HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_a_state_dict_from_python_is_checked_like_a_file(make, message, state):
    hostile = {**state, "0.weight": make()}
    with pytest.raises(WeightsError, match=rf"^error: weights '0\.weight' {message}"):
        archspec.compile(TINY, weights=hostile)


def test_keys_that_are_not_names_are_refused_and_shown_short():
    with pytest.raises(WeightsError, match=r"weights key \(1, 2\) is a tuple, not a string"):
        check_state_dict({(1, 2): torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"weights 'xxx.*\.\.\.xxx.*' is None") as refused:
        check_state_dict({"x" * 10_000: None})
    assert len(str(refused.value)) < 300


def test_integer_and_bool_tensors_are_weights():
    state = {"a": torch.zeros(2, dtype=torch.int64), "b": torch.ones(2, dtype=torch.bool)}
    assert check_state_dict(state) is state


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    with within(5), pytest.raises(WeightsError, match=r"is a FIFO, not a regular"):
        read_state_dict(fifo)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(WeightsError, match=r"from '.*': it is a directory, not a regular file"):
        archspec.compile(TINY, weights=tmp_path)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_character_device_is_refused_without_reading_it(device):
    if not Path(device).exists():
        pytest.skip(f"{device} does not exist here")
    with within(5), pytest.raises(WeightsError, match=r"is a character device, not a regular"):
        read_state_dict(device)


def test_torchs_reasons_are_one_bounded_line(state, tmp_path):
    path = tmp_path / "truncated.pt"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[:200])  # torch explains a broken zip over 350 characters
    with pytest.raises(WeightsError, match=r"^error: cannot read weights from '.*': ") as refused:
        read_state_dict(path)
    reason = str(refused.value).split(": ", 2)[2]
    assert "\n" not in reason
    assert len(reason) == 300
    assert reason.startswith("PytorchStreamReader failed reading zip archive")
    assert reason.endswith("...")


def test_a_refused_pickle_says_what_was_refused_and_not_how_to_run_it(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": nn.ReLU()}, path)
    with pytest.raises(
        WeightsError, match=r"Unsupported global: GLOBAL torch\.nn\.modules\.activation\.ReLU"
    ) as refused:
        read_state_dict(path)
    message = str(refused.value)
    assert "weights_only" not in message
    assert "\x1b" not in message
    assert "\n" not in message
