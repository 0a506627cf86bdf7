"""gg.accelerator: torch.accelerator's questions (is there one, which), answered with CUDA, the
only accelerator gpugrad drives; PyTorch's quickstart picks its device through it."""
from __future__ import annotations

from gpugrad import cuda
from gpugrad.backend import Device


def is_available() -> bool:
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> Device | None:
    """Device('cuda') when gpugrad can use a GPU (the accelerator type it drives), else None."""
    return Device("cuda") if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()


def synchronize(device=None) -> None:
    cuda.synchronize(device)
