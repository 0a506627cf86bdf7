"""gg.data: mini-batches over in-memory arrays (DataLoader) and the scikit-learn digits
dataset (bundled with scikit-learn, so it works offline) as ready-to-train tensors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from gpugrad import backend, creation
from gpugrad.tensor import Tensor

__all__ = ["DataLoader", "Digits", "DistributedSampler", "load_digits"]


class DataLoader:
    """Iterate over tuples of tensor batches taken along dim 0 of every array.

    DataLoader(X, y, batch_size=64, shuffle=True, seed=0) yields (X_batch, y_batch) tuples
    (a 1-tuple for one array). Arrays keep their dtype and are moved to `device` once, at
    construction (default: where the first tensor lives, else the CPU). With shuffle, each pass
    draws a new permutation: from a private generator seeded by `seed` (reproducible on its
    own), or from gpugrad's generator when seed is None (then gg.manual_seed fixes it). A
    `sampler` (such as DistributedSampler) gives the order instead of shuffle."""

    def __init__(
        self,
        *arrays,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        device=None,
        sampler=None,
    ):
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
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
        self.seed, self.sampler = seed, sampler
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
        size = self.size if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return size // self.batch_size
        return (size + self.batch_size - 1) // self.batch_size

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter(self.sampler, dtype=np.int64)
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


class DistributedSampler:
    """The indices of one rank's shard of a dataset (torch.utils.data.DistributedSampler).

    Every pass, all ranks draw the same order (a permutation seeded by seed + epoch: call
    set_epoch(epoch) before each pass, or shuffle=False for 0..N-1); the order is padded by
    repeating its start so that it splits evenly (with drop_last, its tail is dropped instead),
    and rank r takes positions r, r + num_replicas, r + 2 * num_replicas, ... Use it as
    DataLoader(X, y, batch_size=..., sampler=DistributedSampler(X)). num_replicas and rank
    default to gg.distributed's world size and rank."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        from gpugrad import distributed

        if num_replicas is None:
            num_replicas = distributed.get_world_size()
        if rank is None:
            rank = distributed.get_rank()
        if not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas!r}")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.size = len(dataset)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        if self.drop_last and self.size % self.num_replicas:
            self.num_samples = (self.size - self.num_replicas) // self.num_replicas + 1
        else:
            self.num_samples = -(-self.size // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Seed the next pass's order (all ranks must pass the same epoch)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(self.size)
        else:
            order = np.arange(self.size)
        if self.total_size > self.size:  # pad with the start, repeated as often as needed
            order = np.resize(order, self.total_size)
        order = order[: self.total_size]
        return iter(order[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


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
