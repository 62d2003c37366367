"""Sharding across processes started by `torchrun` or `accelerate launch` (both set RANK / WORLD_SIZE)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None = None) -> str:
        import torch

        if requested:
            return requested
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"


def init() -> DistInfo:
    """Read the launcher's environment and join the process group (gloo: it serves only barriers here)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1:
        import torch.distributed

    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return info


def barrier(info: DistInfo):
    if info.world_size > 1:
        import torch.distributed

        torch.distributed.barrier()


def shutdown(info: DistInfo):
    if info.world_size > 1:
        import torch.distributed

    if info.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
