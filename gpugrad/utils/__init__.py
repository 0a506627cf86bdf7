"""gg.utils.data: torch.utils.data's import path for gg.data (the same module object, so
`from gpugrad.utils.data import DataLoader, Dataset` gives gg.data's classes)."""

import sys

from gpugrad import data

sys.modules[__name__ + ".data"] = data

__all__ = ["data"]
