"""torch.distributed helpers: one code path for a single process and for torchrun (DDP)."""
from __future__ import annotations

import os
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn


def launch_size() -> int:
    """Processes this run was launched with (torchrun's WORLD_SIZE; 1 otherwise), known before
    ``setup``."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str) -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); no-op otherwise."""
    if launch_size() > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def local_device(device: str) -> str:
    """Pin each torchrun process to its own GPU (LOCAL_RANK); CPU stays CPU."""
    if device.startswith("cuda") and active():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    return device


def wrap(module: nn.Module, device: str) -> nn.Module:
    """DistributedDataParallel around ``module`` when distributed, the module itself otherwise."""
    if not active():
        return module
    ids: Optional[list] = [torch.device(device).index] if device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on at least one (e.g. Ctrl-C seen by one)."""
    if not active():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def replicas_identical(module: nn.Module) -> bool:
    """Whether every rank holds exactly the same parameters and buffers."""
    if not active():
        return True
    flat = torch.cat([t.detach().double().reshape(-1).cpu() for t in module.state_dict().values()
                      if t.is_floating_point()])
    stats = torch.stack([flat.sum(), (flat * torch.arange(flat.numel(), dtype=flat.dtype)).sum()])
    gathered = [torch.zeros_like(stats) for _ in range(world_size())]
    dist.all_gather(gathered, stats)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def average_gradients(params) -> None:
    """All-reduce the gradients of ``params`` to their mean over ranks (modules outside DDP)."""
    if not active():
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world_size()


def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (BN running statistics) over ranks."""
    if not active():
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= world_size()
