"""Data-parallel training under `torchrun`: process group from the environment (gloo on CPU, NCCL on CUDA),
DistributedDataParallel wrappers, the rank's slice of the global batch, and gathering of samples and stats.

With one process (no WORLD_SIZE in the environment) every function is the identity, so one code path serves both.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch: every rank draws the same global batch from the same seeded
        generators and keeps its slice, so the union over ranks is the one-process batch."""
        if not self.enabled:
            return x
        n = x.shape[0] // self.world
        return x[self.rank * n:(self.rank + 1) * n]

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DDP around `module` (gradients averaged over ranks in backward); the module itself with one process."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP
        dev = next(module.parameters()).device
        if dev.type == "cuda":        # batch statistics over the global batch, as with one process
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return DDP(module, device_ids=[dev.index] if dev.type == "cuda" else None)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's equal-sized tensor along dim 0, in rank order."""
        if not self.enabled:
            return x
        parts = [torch.empty_like(x) for _ in range(self.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    def gather_with_grad(self, x: torch.Tensor) -> torch.Tensor:
        """`gather` through autograd: a loss computed identically on every rank from the gathered batch gets the
        one-process gradient (all_gather's backward sums the W identical copies; DDP's average divides by W)."""
        if not self.enabled:
            return x
        from torch.distributed.nn.functional import all_gather
        return torch.cat(all_gather(x.contiguous()))

    def mean_stats(self, stats: dict[str, float], device) -> dict[str, float]:
        """Average per-rank float stats over ranks (keys in sorted order, identical on every rank)."""
        if not self.enabled or not stats:
            return stats
        keys = sorted(stats)
        v = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(v)
        return {k: float(x) / self.world for k, x in zip(keys, v.tolist())}

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_from_env(device: str) -> tuple[DistContext, str]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); returns the
    context and the device this rank uses (cuda:LOCAL_RANK when `device` is cuda)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return DistContext(rank, world, local), device


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
