"""gg.data: mini-batches over in-memory arrays (DataLoader) and the scikit-learn digits
dataset (bundled with scikit-learn, so it works offline) as ready-to-train tensors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from gpugrad import backend, creation
from gpugrad.tensor import Tensor

__all__ = ["DataLoader", "Digits", "load_digits"]


class DataLoader:
    """Iterate over tuples of tensor batches taken along dim 0 of every array.

    DataLoader(X, y, batch_size=64, shuffle=True, seed=0) yields (X_batch, y_batch) tuples
    (a 1-tuple for one array). Arrays keep their dtype and are moved to `device` once, at
    construction (default: where the first tensor lives, else the CPU). With shuffle, each pass
    draws a new permutation: from a private generator seeded by `seed` (reproducible on its
    own), or from gpugrad's generator when seed is None (then gg.manual_seed fixes it)."""

    def __init__(
        self,
        *arrays,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        device=None,
    ):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        if (
            not isinstance(batch_size, (int, np.integer))
            or isinstance(batch_size, bool)
            or batch_size <= 0
        ):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size!r}"
            )
        if device is None:
            device = next((a.device for a in arrays if isinstance(a, Tensor)), "cpu")
        self.device = backend.as_device(device)
        self.arrays = [self._to_array(i, a) for i, a in enumerate(arrays)]
        lengths = {a.shape[0] for a in self.arrays}
        if len(lengths) != 1:
            shapes = ", ".join(str(tuple(a.shape)) for a in self.arrays)
            raise ValueError(f"DataLoader: arrays differ in length along dim 0: {shapes}")
        self.size = lengths.pop()
        self.batch_size, self.shuffle, self.drop_last = (
            int(batch_size),
            bool(shuffle),
            bool(drop_last),
        )
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _to_array(self, i: int, data):
        if isinstance(data, Tensor):
            array = data.array
        elif isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__"):
            array = data
        else:
            array = creation.tensor(data).array  # lists etc.: torch's dtype inference
        if array.ndim == 0:
            raise ValueError(
                f"DataLoader: array {i} is a scalar; every array needs a batch dimension"
            )
        return backend.to_device(array, self.device)

    def __len__(self) -> int:
        """Batches per pass."""
        if self.drop_last:
            return self.size // self.batch_size
        return (self.size + self.batch_size - 1) // self.batch_size

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        rng = self._rng if self._rng is not None else creation.generator()
        return rng.permutation(self.size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = self._order()
        xp = backend.xp_for(self.device)
        if self.device.type == "cuda":
            order = backend.to_device(order, self.device)  # index on the GPU, no host round trip
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            with backend.on_device(self.device):
                batch_arrays = tuple(xp.take(array, index, axis=0) for array in self.arrays)
            yield tuple(Tensor._make(array) for array in batch_arrays)

    def __repr__(self) -> str:
        return (
            f"DataLoader(size={self.size}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, device='{self.device}')"
        )


class Digits(NamedTuple):
    """The digits split: float32 features in [0, 1] (N, 64) and int64 labels 0..9 (N,)."""

    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor


def load_digits(test_size: float = 0.2, seed: int = 0, device=None) -> Digits:
    """scikit-learn's 8x8 digits (1797 images), pixels / 16, split stratified by class with
    train_test_split(random_state=seed): the same seed gives the same split everywhere."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"load_digits: test_size must be in (0, 1), got {test_size}")
    data = sklearn_digits()
    features = (data.data / 16.0).astype(np.float32)
    labels = data.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    dev = backend.as_device(device)

    def put(array):
        return Tensor._make(backend.to_device(np.ascontiguousarray(array), dev))

    return Digits(put(X_train), put(y_train), put(X_test), put(y_test))
