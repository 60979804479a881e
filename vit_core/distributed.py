"""Training on several processes with PyTorch's DistributedDataParallel (DDP).

Launch any script that calls `train.fit` with `torchrun --nproc_per_node=N script.py`: torchrun
starts N copies; `init_from_env()` joins them into one process group (gloo on the CPU, NCCL on
CUDA, one GPU per process; torch.distributed reads torchrun's settings, this module reads none). Inside a process group `fit`
wraps the model in DDP, gives each process its share of every global batch, sums the loss and
accuracy over processes, and lets only process 0 write checkpoints, history and progress. Without
a process group nothing here changes anything.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, number of processes): (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True in process 0, the one that writes files and prints (and in a plain process)."""
    return rank_and_world()[0] == 0


def init_from_env(device_type: str = "cpu") -> bool:
    """Join torchrun's process group when this process was started by torchrun; on CUDA each
    process takes its own GPU (one machine: rank modulo GPUs). True inside a group."""
    if not dist.is_available():
        return False
    if not dist.is_initialized():
        if not dist.is_torchelastic_launched():
            return False
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(device_for("cuda"))
    return True


def device_for(device_type: str) -> torch.device:
    """This process's device: its own GPU inside a process group on CUDA, else `device_type`."""
    if device_type == "cuda" and rank_and_world()[1] > 1:
        return torch.device("cuda", rank_and_world()[0] % torch.cuda.device_count())
    return torch.device(device_type)


def sum_over_processes(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over every process (in place); `t` itself without a process group."""
    if rank_and_world()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def wait_for_all() -> None:
    """A barrier: every process waits here until all have arrived (no-op alone)."""
    if rank_and_world()[1] > 1:
        dist.barrier()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in DDP inside a process group (its gradients are averaged over processes
    during backward), else the model itself."""
    if rank_and_world()[1] == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
