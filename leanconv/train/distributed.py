"""PyTorch DDP through torchrun: process group set-up, reductions, and the launcher.

``torchrun --nproc_per_node=N -m leanconv train ...`` sets ``RANK``/``WORLD_SIZE``; gloo on
CPU, nccl on CUDA, with a timeout (``LEANCONV_DIST_TIMEOUT`` seconds, default 120) so that a
rank that dies makes the others fail with an error instead of waiting forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_distributed(device: str) -> DistContext:
    """Join the torchrun process group if there is one (else a single-process context)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    rank = int(os.environ["RANK"])
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        timeout = timedelta(seconds=float(os.environ.get("LEANCONV_DIST_TIMEOUT", "120")))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo",
                                timeout=timeout)
    return DistContext(rank, world, device)


def shutdown(context: DistContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Sum a tensor over ranks (identity in a single process)."""
    if context.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def average_buffers(model: nn.Module, context: DistContext) -> None:
    """Average floating buffers (BN running statistics) over ranks: on CPU, where
    SyncBatchNorm does not run, each rank's statistics saw only its shard."""
    if not context.distributed:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(context.world)


def ranks_in_sync(model: nn.Module, context: DistContext) -> bool:
    """Whether every rank holds bit-identical parameters (checksums compared)."""
    if not context.distributed:
        return True
    with torch.no_grad():
        checksum = torch.stack([p.double().sum() for p in model.parameters()]).sum()
        local = torch.stack([checksum, checksum.new_tensor(float(context.rank))]).to(
            next(model.parameters()).device)
        gathered = [torch.zeros_like(local) for _ in range(context.world)]
        dist.all_gather(gathered, local)
    return all(torch.equal(g[0], gathered[0][0]) for g in gathered)


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``torchrun --nproc_per_node=nproc -m leanconv <argv>`` (as ``python -m
    torch.distributed.run``, the module behind torchrun) and return its exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "leanconv", *argv]
    return subprocess.call(command)
