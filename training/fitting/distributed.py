"""Data-parallel training across processes and machines: torch.distributed under ``torchrun``.

Pipeline step 3 of 5 (corpus -> dataset -> train -> evaluate -> ship): train.

``torchrun --nproc-per-node N -m training.train ...`` sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``; :func:`join_world` joins the process group (NCCL on GPUs, gloo on
CPUs) and the model is wrapped in ``DistributedDataParallel``, so gradients are
all-reduced (averaged) after each backward pass. Without those variables nothing
changes: one process, no process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from rtdenoise.models import StreamingModel


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def join_world(device: str = "auto") -> World:
    """This process's place: joins the process group when launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return World()
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    on_gpu = torch.cuda.is_available() and device in ("auto", "cuda")
    if on_gpu:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if on_gpu else "gloo")
    return world


def finish_together(world: World) -> None:
    """Wait until every rank is done (rank 0 writes after the last step) before any tears the group down."""
    if world.distributed:
        dist.barrier()


def leave_world(world: World) -> None:
    if world.distributed:
        dist.destroy_process_group()


def device_of(world: World, asked: str) -> torch.device:
    """The device this rank trains on (``cuda:LOCAL_RANK`` under torchrun on GPUs)."""
    if asked == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", world.local_rank) if world.distributed else torch.device("cuda")
        return torch.device("cpu")
    return torch.device(asked)


def agreed_max(value: float, world: World, device: torch.device) -> float:
    """The largest ``value`` over all ranks (so every rank takes the same decision: stop, lr)."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


class ChunkedForward(nn.Module):
    """Runs a streaming model over a batch in truncated-BPTT chunks (state carried, detached between).

    One ``forward`` per training step, which is what ``DistributedDataParallel`` needs to
    all-reduce the gradients of the whole chunk loop.
    """

    def __init__(self, model: StreamingModel, chunk: int | None) -> None:
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        state = self.model.init_state(noisy.shape[0], noisy.device)
        chunk = self.chunk or noisy.shape[-1]
        estimates = []
        for start in range(0, noisy.shape[-1], chunk):
            estimate, state = self.model.step(noisy[:, start:start + chunk], state)
            state = tuple(s.detach() for s in state)  # carried across chunks, not back-propagated through
            estimates.append(estimate)
        return torch.cat(estimates, dim=-1)


def wrap_for_training(model: StreamingModel, chunk: int | None, world: World, device: torch.device) -> nn.Module:
    """The chunk loop, under DistributedDataParallel when there are several ranks."""
    trainer = ChunkedForward(model, chunk)
    if not world.distributed:
        return trainer
    # static_graph: the same parameters take part every step (a gains-only band model leaves its
    # deep-filter weights out every time), which DDP then handles without a search per step
    return nn.parallel.DistributedDataParallel(trainer, device_ids=[device.index] if device.type == "cuda" else None,
                                               static_graph=True)


def shard_indices(count: int, world: World, seed: int, epoch: int) -> list[int]:
    """This rank's share of ``count`` lab pairs for ``epoch`` (a DistributedSampler over them)."""
    sampler = torch.utils.data.DistributedSampler(range(count), num_replicas=world.size, rank=world.rank,
                                                  shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    return list(sampler)
