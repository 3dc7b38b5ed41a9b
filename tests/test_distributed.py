"""docs/train_distributed.py: two processes (DDP, FSDP2) train as one process on the whole batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archspec

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "train_distributed.py"

# A small conv net whose batch norm is frozen: in eval mode it normalises every sample alike,
# whatever slice of the batch a rank holds, so two processes can match one exactly.
SPEC = """\
name: tiny
input: [3, 16, 16]
freeze: [bn1]
layers:
  - {name: conv1, op: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}
  - {name: bn1, op: batchnorm2d}
  - {name: relu1, op: relu}
  - {name: pool1, op: max_pool2d, kernel: 2}
  - {name: conv2, op: conv2d, out_channels: 16, kernel: 3, padding: 1}
  - {name: relu2, op: relu}
  - {name: pool, op: adaptive_avg_pool2d, output_size: 1}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out_features: 5}
"""

# The runs differ only in the order float32 adds up each gradient: one sum over 8 samples, or
# two sums over 4 that the ranks then add and halve. That changes each update by a few ulps of
# the weights (|w| < 0.3, an ulp at 0.25 is 3e-8); measured, 2e-8 apart after 5 steps. 1e-6
# leaves 50x that, and is 400x below the smallest real difference measured: batch norm in
# training mode, 4e-4 (gradients left unsynchronised, 1.7e-2; one sample per rank left out,
# 1.3e-2). The weights are all of one size, so the bound is absolute.
TOLERANCE = {"rtol": 0.0, "atol": 1e-6}
STEPS = 5  # the script's default, passed so the tolerance above stays tied to it
MOVED = 1e-3  # training moves some weight further than this: the comparison is not vacuous


def train(
    spec: Path, out: Path, *flags: str, ranks: int = 1, torchrun: bool = False
) -> dict[str, torch.Tensor]:
    """Run the script as `ranks` processes, and load what rank 0 saved into the spec's network:
    strictly, so the keys are the spec's names (no `module.` prefix, no shards).

    With `torchrun`, the documented launcher starts the ranks; otherwise they are started as
    torchrun starts them, with its environment variables, without its agent (which only
    supervises, at the cost of a third interpreter importing torch)."""
    # one thread per process on two cores, as torchrun would choose; warnings fail, as in pytest
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}
    script = [str(SCRIPT), str(spec), "--steps", str(STEPS), "--out", str(out), *flags]
    if torchrun:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
        commands = [([sys.executable, *launcher, *script], env)]
    else:
        group = {"WORLD_SIZE": str(ranks), "LOCAL_WORLD_SIZE": str(ranks)}
        group |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
        commands = [
            (
                [sys.executable, *script],
                {**env, **group, "RANK": str(rank), "LOCAL_RANK": str(rank)} if ranks > 1 else env,
            )
            for rank in range(ranks)
        ]
    argv = commands[0][0]
    children = [
        subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command, environment in commands
    ]
    try:
        errors = [child.communicate(timeout=120)[1] for child in children]
    except subprocess.TimeoutExpired:
        # torchrun's workers run in sessions of their own: SIGTERM, not SIGKILL, lets torchrun
        # stop them before it exits, so that none is left behind
        for child in children:
            child.terminate()
            child.communicate(timeout=60)
        pytest.fail(f"{' '.join(argv)} took over 120 s")
    for child, err in zip(children, errors, strict=True):
        assert child.returncode == 0, err
    return archspec.compile(spec, weights=out).state_dict()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("distributed") / "tiny.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec: Path) -> dict[str, torch.Tensor]:
    """One plain process on the whole global batch, shared by the tests on this worker."""
    return train(spec, spec.with_name("reference.pt"))


@pytest.mark.parametrize(
    ("flags", "torchrun"), [([], True), (["--fsdp"], False)], ids=["ddp-torchrun", "fsdp2"]
)
def test_two_processes_train_as_one(spec, reference, tmp_path, flags, torchrun):
    trained = train(spec, tmp_path / "params.pt", *flags, ranks=2, torchrun=torchrun)
    torch.testing.assert_close(trained, reference, **TOLERANCE)

    with torch.random.fork_rng():
        torch.manual_seed(0)  # the script's default seed, so its starting weights
        start = archspec.compile(spec).state_dict()
    assert max((reference[k] - start[k]).abs().max().item() for k in start) > MOVED
    assert torch.equal(trained["bn1.running_mean"], start["bn1.running_mean"])  # frozen
