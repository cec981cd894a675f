"""The order images are visited in: per-epoch shuffles sharded over DDP ranks, and batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def shard_order(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1,
                shuffle: bool = True) -> torch.Tensor:
    """This rank's indices for ``epoch``, like ``DistributedSampler``: one permutation seeded
    by (seed, epoch), padded by repetition to a multiple of ``world``, then strided."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10007 + epoch))
    else:
        order = torch.arange(n)
    if world > 1:
        padded = -(-n // world) * world
        order = torch.cat([order, order[: padded - n]])[rank::world]
    return order


def batches(order: torch.Tensor, batch_size: int, drop_last: bool) -> Iterator[torch.Tensor]:
    """Index tensors of ``batch_size`` (the last one shorter unless ``drop_last``)."""
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]
