"""Train an archspec network on synthetic data, in one process or many (DDP or FSDP2).

    torchrun --standalone --nproc_per_node=2 docs/train_distributed.py zoo:lenet5
    python docs/train_distributed.py zoo:lenet5    # one process: the reference

Every rank builds the network from the same seed, draws the same global batch at each step and
trains on its own slice of it. The ranks average their gradients, so N processes take the same
steps as one process on the whole batch, up to float rounding. Rank 0 saves the full state dict,
which `archspec.compile(spec, weights=...)` loads.

Batch norm breaks that equality: in training mode each rank normalises with the statistics of
its own slice. On GPUs, convert the norms with `nn.SyncBatchNorm.convert_sync_batchnorm(model)`
before wrapping. On CPU torch refuses SyncBatchNorm, so either freeze the norms (`freeze:` in the
spec keeps them in eval mode), use group_norm, or accept per-rank statistics.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

import archspec


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="a YAML spec of one output, or zoo:NAME")
    parser.add_argument("--steps", type=int, default=5, help="SGD steps (default: 5)")
    parser.add_argument("--batch", type=int, default=8, help="global batch size (default: 8)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default: 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and the data")
    parser.add_argument("--fsdp", action="store_true", help="shard with FSDP2 instead of DDP")
    parser.add_argument(
        "--out", type=Path, default=Path("params.pt"), help="rank 0 saves the state dict here"
    )
    return parser.parse_args()


def join() -> tuple[int, int, torch.device]:
    """(rank, world size, device): the process group torchrun describes, or one process."""
    cuda = torch.cuda.is_available()
    if "WORLD_SIZE" not in os.environ:  # plain `python`: no group, the whole batch
        return 0, 1, torch.device("cuda" if cuda else "cpu")
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{os.environ['LOCAL_RANK']}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def wrap(model: nn.Module, fsdp: bool) -> nn.Module:
    """The model as the ranks train it: DDP replicates it, FSDP2 shards each top-level layer."""
    if not dist.is_initialized():
        return model
    if not fsdp:
        return DistributedDataParallel(model)
    for layer in model.children():
        if list(layer.parameters()):
            fully_shard(layer)
    fully_shard(model)
    return model


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unwrapped model's state dict, whole, on rank 0's CPU (empty on the other ranks)."""
    if not dist.is_initialized():
        return model.state_dict()
    # a collective: under FSDP2 every rank takes part in gathering the shards
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def batches(
    report: archspec.Report, size: int, steps: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(size, *input) inputs and labels over the output's first axis, the same on every rank."""
    generator = torch.Generator().manual_seed(seed)
    classes, *rest = report.layer(report.outputs[0]).output_shape
    for _ in range(steps):
        inputs = torch.randn(size, *report.input_shape, generator=generator)
        yield inputs, torch.randint(classes, (size, *rest), generator=generator)


def main() -> None:
    args = parse_args()
    rank, world, device = join()
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} does not split into {world} equal slices")
    spec = archspec.load(args.spec)
    report = archspec.analyze(spec)
    if len(report.outputs) != 1:
        raise SystemExit(f"{args.spec}: this example trains networks of one output")
    torch.manual_seed(args.seed)  # the same weights on every rank: FSDP2 shards what each has
    model = wrap(archspec.compile(spec).to(device), args.fsdp)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    mine = slice(rank * args.batch // world, (rank + 1) * args.batch // world)
    data = batches(report, args.batch, args.steps, args.seed)
    for step, (inputs, labels) in enumerate(data):
        # the mean over equal slices, averaged over the ranks, is the mean over the global batch
        loss = F.cross_entropy(model(inputs[mine].to(device)), labels[mine].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        shown = loss.detach().clone()  # this rank's loss; averaged, the global batch's
        if dist.is_initialized():
            dist.all_reduce(shown, op=dist.ReduceOp.AVG)
        if rank == 0:
            print(f"step {step}: loss {shown.item():.6f}")
    state = full_state_dict(model)
    if rank == 0:
        torch.save(state, args.out)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
