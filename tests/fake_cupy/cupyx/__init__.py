"""cupyx for the fake CuPy (tests/fake_cupy/cupy): the scatter functions gpugrad uses."""
from __future__ import annotations

import cupy
import numpy as np


def _host(a):
    return a._a if isinstance(a, cupy.ndarray) else a


def _index(slices):
    if isinstance(slices, tuple):
        return tuple(_host(s) for s in slices)
    return _host(slices)


def scatter_add(a, slices, value):
    """a[slices] += value with repeated indices accumulating, in place, as CuPy's."""
    if not isinstance(a, cupy.ndarray):
        raise TypeError("cupyx.scatter_add: `a` must be a cupy.ndarray")
    cupy._on_current_device([a, slices, value], "cupyx.scatter_add")
    cupy._enqueue(lambda: np.add.at(a._a, _index(slices), _host(value)))


def scatter_max(a, slices, value):
    cupy._enqueue(lambda: np.maximum.at(a._a, _index(slices), _host(value)))


def scatter_min(a, slices, value):
    cupy._enqueue(lambda: np.minimum.at(a._a, _index(slices), _host(value)))
