"""GPUs asked are GPUs used: count the GPUs a job can see and refuse, in one line, a device it does not have.

A training rule asks ``setok.launch`` for G GPUs per node and a prediction, calibration or scoring rule passes
``--device cuda`` (or ``--device cpu`` where the config's ``compute.allow_cpu`` says so). A job that finds fewer GPUs
than it asked for stops at once with a :class:`DeviceError` whose message is one line naming what it asked, what it
sees and how to allow the CPU; no job falls back to the CPU by itself (docs/cluster.md, "GPUs asked are GPUs used").
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from setok.io import DataError


class DeviceError(DataError):
    """The machine lacks the device the job asks for; the message is one line (asked, visible, how to allow CPU)."""


def _hidden_by_env(env: Mapping[str, str]) -> int | None:
    """How many devices ``CUDA_VISIBLE_DEVICES`` lets through, or None when it is unset (every device).

    An empty value, or one starting with a negative index, hides every device (CUDA stops at the first invalid
    entry); otherwise it is a comma-separated list of indices or UUIDs.
    """
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    entries = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        entries.append(entry)
    return len(entries)


def _nvidia_smi_count() -> int | None:
    """GPUs the NVIDIA driver lists (``nvidia-smi -L``), or None when there is no nvidia-smi or it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))


def _torch_count() -> int:
    """CUDA devices torch sees (0 when torch is missing or has no CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    try:
        return int(torch.cuda.device_count())
    except RuntimeError:
        return 0


def visible_gpu_count(env: Mapping[str, str] | None = None) -> int:
    """CUDA GPUs this process can use, counted without importing torch where possible.

    ``CUDA_VISIBLE_DEVICES`` empty (or ``-1``): 0. Else the GPUs ``nvidia-smi -L`` lists, capped by the number
    ``CUDA_VISIBLE_DEVICES`` names. Without a working nvidia-smi, torch is asked: Slurm's GRES sets
    ``CUDA_VISIBLE_DEVICES`` on nodes whose "GPUs" are placeholders (the one-node test cluster), and only CUDA
    itself can say none of them is real.
    """
    env = os.environ if env is None else env
    allowed = _hidden_by_env(env)
    if allowed == 0:
        return 0
    listed = _nvidia_smi_count()
    if listed is None:
        return _torch_count()  # torch applies CUDA_VISIBLE_DEVICES itself
    return listed if allowed is None else min(listed, allowed)


def require_device(device: str, *, available: int | None = None, flag: str = "--device") -> str:
    """``device`` when this process has it, else a one-line :class:`DeviceError`.

    ``"cpu"`` is always there (the workflow passes it only where ``compute.allow_cpu`` is true); ``"cuda"`` and
    ``"cuda:N"`` need ``N + 1`` visible CUDA devices (``available``; default: ``torch.cuda.device_count()``).
    """
    name = device.strip()
    kind, _, index = name.partition(":")
    if kind == "cpu" and not index:
        return name
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceError(f"{flag} {device!r}: expected 'cuda', 'cuda:N' or 'cpu'")
    needed = int(index) + 1 if index else 1
    seen = _torch_count() if available is None else available
    if seen < needed:
        shown = "" if "CUDA_VISIBLE_DEVICES" not in os.environ else \
            f" (CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r})"
        raise DeviceError(f"{flag} {name} asks for {needed} CUDA GPU(s) but {seen} are visible{shown}; "
                          f"no CPU fallback: pass {flag} cpu to run on the CPU, which the workflow does only where "
                          f"compute.allow_cpu is true")
    return name


def add_device_argument(parser: "argparse.ArgumentParser") -> None:  # noqa: F821 - argparse only for the hint
    """``--device`` of a CLI that runs a model: ``cuda`` unless told ``cpu`` (never a silent fallback)."""
    parser.add_argument("--device", default="cuda",
                        help="cuda (default), cuda:N or cpu; a CUDA device that is not there is a one-line error, "
                             "the CPU runs only when asked (the workflow passes cpu where compute.allow_cpu is true)")
