"""Process-group set-up for DeepSpeed: NCCL on GPUs, gloo on the CPU (CI)."""
from __future__ import annotations

import os
import socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed() -> tuple[int, int]:
    """Initialise ``torch.distributed`` through DeepSpeed and return ``(rank, world_size)``.

    Under ``torchrun`` / ``srun`` the launcher's environment is used as is. A plain ``python -m ...`` run becomes a
    one-process group on a free local port.
    """
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    import deepspeed
    import torch
    from deepspeed.accelerator import get_accelerator

    accelerator = get_accelerator()
    if accelerator.device_name() == "cpu":
        # DeepSpeed compiles a shared-memory all-reduce op on first CPU use (~90 s); gloo does not need it.
        builder = accelerator.create_op_builder("ShareMemCommBuilder")
        if builder is not None:
            deepspeed.ops.__compatible_ops__[builder.NAME] = False
    if not torch.distributed.is_initialized():
        backend = "nccl" if accelerator.device_name() == "cuda" else "gloo"
        deepspeed.init_distributed(dist_backend=backend)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def device() -> "torch.device":  # noqa: F821 - torch imported lazily
    import torch
    from deepspeed.accelerator import get_accelerator

    name = get_accelerator().device_name()
    if name == "cpu":
        return torch.device("cpu")
    return torch.device(name, int(os.environ.get("LOCAL_RANK", "0")))
