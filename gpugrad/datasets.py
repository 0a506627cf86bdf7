"""Datasets read from local files (nothing is downloaded): MNIST and Fashion-MNIST from their
IDX files (raw or .gz), and tables from CSV or NPZ files. Each is a gg.data.Dataset; without
transforms a DataLoader batches them by one gather per batch. Also gg.data.MNIST etc."""

from __future__ import annotations

import csv
import gzip
import os

import numpy as np

from gpugrad.data import Dataset, TensorDataset
from gpugrad.tensor import Tensor

__all__ = ["MNIST", "CSVDataset", "FashionMNIST", "NPZDataset", "read_idx"]

# IDX type byte -> big-endian NumPy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (MNIST's format: 0, 0, a type byte, the number of dimensions,
    then each dimension as a big-endian uint32, then the data), plain or gzip-compressed."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"read_idx: {path} is a damaged gzip file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"read_idx: {path} is not an IDX file (its header {raw[:4]!r} does not start with two "
            "zero bytes)"
        )
    kind, ndim = raw[2], raw[3]
    if kind not in _IDX_TYPES:
        raise ValueError(f"read_idx: {path} has an unknown IDX data type byte 0x{kind:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated inside its header ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[kind])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"read_idx: {path} declares shape {shape} ({expected} bytes of data) but holds "
            f"{len(raw) - header} bytes after its header"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


class MNIST(Dataset):
    """MNIST from its four IDX files in a local folder: root itself, or root/MNIST/raw (the
    layout torchvision downloads to). Samples are (image, label): a float32 (1, 28, 28) tensor
    in [0, 1] (what torchvision's ToTensor gives) and an int; .data (uint8) and .targets
    (int64) hold them all. download=True is refused: put the files there yourself."""

    folder = "MNIST"
    classes = [
        f"{d} - {name}"
        for d, name in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
    ]
    files = {
        True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def __init__(
        self,
        root,
        train: bool = True,
        transform=None,
        target_transform=None,
        download: bool = False,
    ):
        self.root, self.train = os.fspath(root), bool(train)
        self.transform, self.target_transform = transform, target_transform
        image_file, label_file = (self._find(name, download) for name in self.files[self.train])
        images, labels = read_idx(image_file), read_idx(label_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{type(self).__name__}: {image_file} holds images of shape {images.shape} and "
                f"{label_file} labels of shape {labels.shape}; expected (N, H, W) and (N,)"
            )
        if images.dtype != np.uint8:
            raise ValueError(
                f"{type(self).__name__}: {image_file} holds {images.dtype}, not uint8 pixels"
            )
        self.data = Tensor._make(np.ascontiguousarray(images))
        self.targets = Tensor._make(labels.astype(np.int64))

    def _find(self, name: str, download: bool) -> str:
        folders = [
            self.root,
            os.path.join(self.root, self.folder, "raw"),
            os.path.join(self.root, "raw"),
        ]
        for folder in folders:
            for suffix in ("", ".gz"):
                path = os.path.join(folder, name + suffix)
                if os.path.isfile(path):
                    return path
        every = ", ".join(n for pair in self.files.values() for n in pair)
        refused = "download=True is not supported: " if download else ""
        raise FileNotFoundError(
            f"{type(self).__name__}: {name} (or {name}.gz) not found in {self.root}. {refused}"
            f"gpugrad does not download datasets; put the IDX files {every} (raw or .gz, as "
            f"the dataset's site serves them) into {self.root} or {folders[1]}"
        )

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int):
        image = Tensor._make((self.data.array[index].astype(np.float32) / 255)[None])
        label = int(self.targets.array[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    @property
    def _batch(self):
        """Batched gathering, only when no transform has to see each sample."""
        if self.transform is not None or self.target_transform is not None:
            raise AttributeError("_batch")
        return self._gather

    def _gather(self, indices) -> list[Tensor]:
        images = self.data.array[indices].astype(np.float32) / 255
        return [Tensor._make(images[:, None]), Tensor._make(self.targets.array[indices])]

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (
            f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
            f"    Root location: {self.root}\n    Split: {split}"
        )


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando's clothing images, MNIST's format and file names), read from a
    local folder: root itself or root/FashionMNIST/raw."""

    folder = "FashionMNIST"
    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None


class CSVDataset(TensorDataset):
    """A table from a CSV file: (features, target) samples, features float32 (dtype) from every
    column but `target` (a header name or a column index; default: the last column; None: no
    target). A header row is detected (a cell that is not a number) unless header=True/False.
    A numeric target of whole numbers becomes int64 class labels, other numbers float32; a text
    target becomes class indices into .classes (sorted). A non-numeric feature cell is an error
    naming its line and column."""

    def __init__(self, path, target=-1, delimiter: str = ",", header="infer", dtype=np.float32):
        self.path = os.fspath(path)
        with open(self.path, newline="") as f:
            rows = [row for row in csv.reader(f, delimiter=delimiter)]
        lines = [i + 1 for i, row in enumerate(rows) if any(cell.strip() for cell in row)]
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows:
            raise ValueError(f"CSVDataset: {self.path} holds no rows")
        if header == "infer":
            header = any(_number(cell) is None for cell in rows[0])
        names = (
            [c.strip() for c in rows[0]] if header else [f"column {i}" for i in range(len(rows[0]))]
        )
        body, lines = (rows[1:], lines[1:]) if header else (rows, lines)
        if not body:
            raise ValueError(f"CSVDataset: {self.path} has a header but no data rows")
        width = len(names)
        for line, row in zip(lines, body, strict=True):
            if len(row) != width:
                raise ValueError(
                    f"CSVDataset: {self.path} line {line} has {len(row)} cells, the header {width}"
                )
        self.target_index = self._target_column(target, names)
        self.columns = [n for i, n in enumerate(names) if i != self.target_index]
        self.target_name = None if self.target_index is None else names[self.target_index]
        features = np.empty((len(body), width - (self.target_index is not None)), dtype=np.float64)
        keep = [i for i in range(width) if i != self.target_index]
        for r, (line, row) in enumerate(zip(lines, body, strict=True)):
            for c, i in enumerate(keep):
                value = _number(row[i])
                if value is None:
                    raise ValueError(
                        f"CSVDataset: {self.path} line {line}, column {names[i]!r}: {row[i]!r} is "
                        "not a number"
                    )
                features[r, c] = value
        tensors = [Tensor._make(features.astype(dtype))]
        self.classes = None
        if self.target_index is not None:
            tensors.append(self._targets([row[self.target_index] for row in body]))
        super().__init__(*tensors)
        self.features = tensors[0]
        self.targets = tensors[1] if len(tensors) > 1 else None

    def _target_column(self, target, names: list) -> int | None:
        if target is None:
            return None
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            if not -len(names) <= target < len(names):
                raise ValueError(
                    f"CSVDataset: target column {target} is out of range for {len(names)} columns"
                )
            return int(target) % len(names)
        if target in names:
            return names.index(target)
        raise ValueError(
            f"CSVDataset: no column named {target!r} in {self.path}; its columns: {names}"
        )

    def _targets(self, cells: list) -> Tensor:
        values = [_number(cell) for cell in cells]
        if any(v is None for v in values):  # text labels: class indices
            self.classes = sorted({cell.strip() for cell in cells})
            index = {name: i for i, name in enumerate(self.classes)}
            return Tensor._make(np.array([index[c.strip()] for c in cells], dtype=np.int64))
        values = np.array(values)
        if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            return Tensor._make(values.astype(np.int64))
        return Tensor._make(values.astype(np.float32))


class NPZDataset(TensorDataset):
    """(features, target) samples from two arrays of a .npz file: `features` (default: the
    first of x, X, features, data, inputs) cast to dtype, and `target` (default: the first of
    y, Y, target, targets, labels, label; None for none): int64 when integral, else float32."""

    _FEATURES = ("x", "X", "features", "data", "inputs")
    _TARGETS = ("y", "Y", "target", "targets", "labels", "label")

    def __init__(
        self, path, features: str | None = None, target: str | None = "infer", dtype=np.float32
    ):
        self.path = os.fspath(path)
        with np.load(self.path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        x_key = self._key("features", features, self._FEATURES, arrays)
        y_key = (
            None
            if target is None
            else self._key("target", None if target == "infer" else target, self._TARGETS, arrays)
        )
        x = arrays[x_key]
        if x.dtype.kind not in "biuf":
            raise ValueError(
                f"NPZDataset: array {x_key!r} in {self.path} has dtype {x.dtype}, not numbers"
            )
        tensors = [Tensor._make(x.astype(dtype))]
        if y_key is not None:
            y = arrays[y_key]
            if y.dtype.kind not in "biuf":
                raise ValueError(
                    f"NPZDataset: array {y_key!r} in {self.path} has dtype {y.dtype}, not numbers"
                )
            integral = y.dtype.kind in "biu" or bool(np.all(y == np.round(y)))
            tensors.append(Tensor._make(y.astype(np.int64 if integral else np.float32)))
        super().__init__(*tensors)
        self.features, self.targets = tensors[0], tensors[1] if len(tensors) > 1 else None

    def _key(self, what: str, given, defaults, arrays) -> str:
        if given is not None:
            if given not in arrays:
                raise ValueError(
                    f"NPZDataset: no array {given!r} in {self.path}; it holds {sorted(arrays)}"
                )
            return given
        for key in defaults:
            if key in arrays:
                return key
        raise ValueError(
            f"NPZDataset: no {what} array in {self.path} (looked for {', '.join(defaults)}; "
            "it holds "
            f"{sorted(arrays)}); name it with {what}="
        )
