"""gpugrad: PyTorch-style tensors with a recorded graph, reverse and forward mode autodiff,
custom CUDA kernels on NVIDIA GPUs (through CuPy) and NumPy + C++ kernels on the CPU."""
from __future__ import annotations

from gpugrad import autograd, cuda, data, func, nn, ops, optim, viz  # noqa: F401  (ops attaches Tensor methods)
from gpugrad import distributed  # noqa: F401  (never imports mpi4py: that waits for init_process_group)
from gpugrad import accelerator, utils  # noqa: F401  (torch's gg.accelerator and gg.utils.data)
from gpugrad.autograd.mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from gpugrad.backend import Device, backend_info
from gpugrad.backend import Device as device
from gpugrad.backend.threads import get_num_threads, set_num_threads
from gpugrad.creation import Generator  # noqa: F401  (torch.Generator's name)
from gpugrad.creation import (
    arange, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like, linspace,
    manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, tensor,
    zeros, zeros_like,
)
from gpugrad.dtypes import (
    bfloat16, bool_, double, float16, float32, float64, half, int8, int16, int32, int64, long,
    uint8,
)
from gpugrad.dtypes import dtype as dtype  # noqa: F401
from gpugrad.ops import *  # noqa: F401,F403
import gpugrad.linalg as linalg  # noqa: E402  (after the star import: gg.linalg is torch's, not ops.linalg)
from gpugrad.replay import capture
from gpugrad.serialization import load, save
from gpugrad.tensor import Tensor, is_tensor

bool = bool_  # noqa: A001  gg.bool, as torch.bool
float = float32  # noqa: A001
int = int32  # noqa: A001
__version__ = "0.1.0"
__all__ = ["Tensor", "tensor", "device", "Device", "no_grad", "enable_grad", "is_grad_enabled",
           "set_grad_enabled", "backend_info", "is_tensor", "manual_seed", "capture",
           "get_num_threads", "set_num_threads"]


def get_default_dtype():
    return float32
