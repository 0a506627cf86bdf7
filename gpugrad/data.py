"""gg.data (also importable as gg.utils.data, torch's path): datasets (Dataset, TensorDataset,
Subset, ConcatDataset, random_split), samplers, default_collate and DataLoader with torch's
arguments; the scikit-learn digits dataset (bundled, offline) as ready-to-train tensors; and,
from gpugrad.datasets, readers for MNIST / Fashion-MNIST IDX files and CSV / NPZ tables."""

from __future__ import annotations

import collections.abc
import math
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from gpugrad import backend, creation
from gpugrad.tensor import Tensor

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "Digits",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "default_collate",
    "load_digits",
    "random_split",
]


# ---- datasets ------------------------------------------------------------------------------------
class Dataset:
    """A map-style dataset: subclasses give __getitem__(index) -> sample and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream-style dataset: subclasses give __iter__() yielding samples."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class TensorDataset(Dataset):
    """Samples are the index-th rows of each tensor (all with the same first dimension)."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor"
                )
            if t.ndim == 0:
                raise ValueError(
                    f"TensorDataset: tensor {i} is 0-d; every tensor needs a first dimension"
                )
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"Size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _batch(self, indices) -> list[Tensor]:
        """The rows at `indices` of every tensor, gathered in one take per tensor (copies)."""
        out = []
        for t in self.tensors:
            with backend.device_guard(t.array):
                xp = backend.xp_of(t.array)
                index = indices if not t.is_cuda else backend.to_device(indices, t.device)
                out.append(Tensor._make(xp.take(t.array, index, axis=0)))
        return out


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def _batch(self, indices) -> list[Tensor]:
        return self.dataset._batch(np.asarray(self.indices, dtype=np.int64)[indices])


class ConcatDataset(Dataset):
    """Datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        if which == len(self.datasets):
            raise IndexError(f"index {index} is out of range for a dataset of length {len(self)}")
        start = 0 if which == 0 else self.cumulative_sizes[which - 1]
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split into non-overlapping random Subsets of the given lengths (or fractions summing to
    1: each gets floor(fraction * n), the remainder going one by one to the first splits)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(
                    f"Length of split at index {i} is 0. This might result in an empty dataset.",
                    stacklevel=2,
                )
        lengths = counts
    if any(not isinstance(k, (int, np.integer)) or k < 0 for k in lengths):
        raise ValueError(
            f"random_split: lengths must be non-negative integers or fractions, got {lengths}"
        )
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = creation._rng_of(generator).permutation(n).tolist()
    splits, start = [], 0
    for k in lengths:
        splits.append(Subset(dataset, order[start : start + k]))
        start += k
    return splits


# ---- samplers ------------------------------------------------------------------------------------
class Sampler:
    """Yields dataset indices; a DataLoader groups them into batches."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new random permutation every pass (or num_samples draws with replacement), from
    `generator` when given, else from gpugrad's global generator (gg.manual_seed)."""

    def __init__(
        self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None
    ):
        if not isinstance(replacement, bool):
            raise TypeError(
                f"replacement should be a boolean value, but got replacement={replacement}"
            )
        self.data_source, self.replacement, self._num_samples = (
            data_source,
            replacement,
            num_samples,
        )
        self.generator = generator
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                "num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        rng, n = creation._rng_of(self.generator), len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        full, rest = divmod(self.num_samples, n)
        order = [rng.permutation(n) for _ in range(full)]
        if rest:
            order.append(rng.permutation(n)[:rest])
        return iter(np.concatenate(order).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a new random order every pass."""

    def __init__(self, indices, generator=None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self) -> Iterator[int]:
        order = creation._rng_of(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order)

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler` (the last shorter, or dropped with drop_last)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


# ---- collation -----------------------------------------------------------------------------------
def default_collate(batch):
    """Stack a list of samples into a batch, as torch's default_collate: tensors and NumPy
    arrays are stacked, floats become a float64 tensor and ints an int64 one, dicts and
    sequences are collated per key / position (a tuple sample gives a list), strings stay."""
    from gpugrad.ops.shape import stack

    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(
                "default_collate: stack expects each tensor to be equal size, but got "
                f"{sorted(shapes)}"
            )
        return stack([t.detach() for t in batch])
    if isinstance(elem, (np.ndarray, np.number, np.bool_)):
        if isinstance(elem, np.ndarray) and elem.dtype.kind not in "biuf":
            raise TypeError(f"default_collate: can't collate NumPy arrays of dtype {elem.dtype}")
        return Tensor._make(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, float):
        return creation.tensor(batch, dtype=np.float64)
    if isinstance(elem, (bool, int)):
        return creation.tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        if len({len(b) for b in batch}) != 1:
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(samples)) for samples in zip(*batch, strict=True)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


def default_convert(sample):
    """A sample as the DataLoader yields it without batching: NumPy arrays become tensors."""
    if isinstance(sample, np.ndarray) and sample.dtype.kind in "biuf":
        return Tensor._make(sample)
    if isinstance(sample, collections.abc.Mapping):
        return {key: default_convert(value) for key, value in sample.items()}
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(default_convert(v) for v in sample))
    if isinstance(sample, (list, tuple)):
        return [default_convert(v) for v in sample]
    return sample


# ---- the loader ----------------------------------------------------------------------------------
_TORCH_POSITIONAL = (
    "batch_size",
    "shuffle",
    "sampler",
    "batch_sampler",
    "num_workers",
    "collate_fn",
    "pin_memory",
    "drop_last",
    "timeout",
    "worker_init_fn",
)


def _is_dataset(obj) -> bool:
    if isinstance(obj, Dataset):
        return True
    if isinstance(obj, (Tensor, np.ndarray, str, bytes)) or hasattr(
        obj, "__cuda_array_interface__"
    ):
        return False
    if isinstance(obj, (list, tuple)):  # a list of (x, y) pairs or of dicts is a dataset
        return bool(obj) and isinstance(obj[0], (tuple, list, collections.abc.Mapping, Tensor))
    return hasattr(obj, "__getitem__") and hasattr(obj, "__len__")


class DataLoader:
    """Batches of a dataset, as torch.utils.data.DataLoader.

    DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
    collate_fn=None, drop_last=False, generator=None, ...) yields default_collate(samples) per
    batch (a list [x, y] for a dataset of (x, y) pairs); batch_size=None yields single samples.
    shuffle draws a new permutation each pass from `generator`, or from gpugrad's generator
    (gg.manual_seed). num_workers, pin_memory, timeout and the other process options are
    accepted and ignored: loading runs in this process.

    gpugrad's array form, DataLoader(X, y, batch_size=64, shuffle=True, seed=0, device=None),
    batches in-memory arrays along dim 0 and yields (X_batch, y_batch) tuples (a 1-tuple for
    one array); the arrays keep their dtype and move to `device` once (default: where the first
    tensor lives). TensorDatasets (and Subsets of them) are batched by one gather per tensor,
    not sample by sample."""

    def __init__(
        self,
        *args,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn=None,
        generator=None,
        seed: int | None = None,
        device=None,
        dataset=None,
        **ignored,
    ):
        if dataset is not None or (len(args) >= 1 and _is_dataset(args[0])):
            if dataset is None:
                dataset, args = args[0], args[1:]
            if len(args) > len(_TORCH_POSITIONAL):
                raise TypeError("DataLoader: too many positional arguments")
            options = dict(zip(_TORCH_POSITIONAL, args, strict=False))  # torch's order
            given = {
                "batch_size": batch_size,
                "shuffle": shuffle,
                "sampler": sampler,
                "batch_sampler": batch_sampler,
                "collate_fn": collate_fn,
                "drop_last": drop_last,
            }
            given.update({k: v for k, v in options.items() if k in given})
            self._arrays_mode = False
            self.device = None
        else:
            if not args:
                raise ValueError("DataLoader needs a dataset or at least one array")
            if batch_sampler is not None or collate_fn is not None:
                raise ValueError(
                    "DataLoader: batch_sampler and collate_fn need a dataset, not arrays"
                )
            device = (
                device
                if device is not None
                else next((a.device for a in args if isinstance(a, Tensor)), "cpu")
            )
            self.device = backend.as_device(device)
            tensors = [Tensor._make(self._to_array(i, a)) for i, a in enumerate(args)]
            lengths = {t.shape[0] for t in tensors}
            if len(lengths) != 1:
                shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
                raise ValueError(f"DataLoader: arrays differ in length along dim 0: {shapes}")
            dataset = TensorDataset(*tensors)
            given = {
                "batch_size": batch_size,
                "shuffle": shuffle,
                "sampler": sampler,
                "batch_sampler": None,
                "collate_fn": None,
                "drop_last": drop_last,
            }
            self._arrays_mode = True
            if seed is not None and generator is None:
                generator = creation.Generator().manual_seed(seed)
        self.dataset, self.generator, self.seed = dataset, generator, seed
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self._setup(**given)

    def _setup(self, batch_size, shuffle, sampler, batch_sampler, collate_fn, drop_last) -> None:
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size <= 0
        ):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size!r}"
            )
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        iterable = isinstance(self.dataset, IterableDataset)
        if iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError(
                "DataLoader with IterableDataset: expected unspecified shuffle, sampler and "
                "batch_sampler"
            )
        if sampler is None and not iterable:
            sampler = (
                RandomSampler(self.dataset, generator=self.generator)
                if shuffle
                else SequentialSampler(self.dataset)
            )
        if batch_sampler is None and batch_size is not None and not iterable:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        batched = batch_sampler is not None or (iterable and batch_size is not None)
        self.collate_fn = (
            collate_fn
            if collate_fn is not None
            else (default_collate if batched else default_convert)
        )
        self._fast = collate_fn is None and hasattr(self.dataset, "_batch")

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

    @property
    def size(self) -> int:
        """Samples in the dataset."""
        return len(self.dataset)

    def __len__(self) -> int:
        """Batches per pass."""
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        if isinstance(self.dataset, IterableDataset):
            raise TypeError("a DataLoader over an IterableDataset has no length")
        return len(self.sampler)

    def __iter__(self) -> Iterator:
        if isinstance(self.dataset, IterableDataset):
            yield from self._iterable_batches()
            return
        if self.batch_sampler is None:  # batch_size=None: one sample at a time
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])
            return
        for indices in self.batch_sampler:
            if self._fast:
                batch = self.dataset._batch(np.asarray(indices, dtype=np.int64))
                yield tuple(batch) if self._arrays_mode else batch
            else:
                yield self.collate_fn([self.dataset[i] for i in indices])

    def _iterable_batches(self) -> Iterator:
        if self.batch_size is None:
            yield from (self.collate_fn(sample) for sample in self.dataset)
            return
        batch = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __repr__(self) -> str:
        where = f", device='{self.device}'" if self.device is not None else ""
        return (
            f"DataLoader(size={len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}{where})"
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


from gpugrad.datasets import (  # noqa: E402  (they build on the classes above)
    MNIST,
    CSVDataset,
    FashionMNIST,
    NPZDataset,
    read_idx,
)

__all__ += ["CSVDataset", "FashionMNIST", "MNIST", "NPZDataset", "read_idx"]
