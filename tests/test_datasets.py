"""torch.utils.data's surface in gg.data (datasets, samplers, collation, DataLoader options) and
the file readers of gpugrad.datasets (MNIST / Fashion-MNIST IDX, CSV, NPZ) on small files the
tests write; collation and split sizes are checked against torch."""

from __future__ import annotations

import gzip
import struct
from collections import namedtuple

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)

torch = pytest.importorskip("torch")
Pair = namedtuple("Pair", ["x", "y"])


class Squares(Dataset):
    def __init__(self, n, kind="tuple"):
        self.n, self.kind = n, kind

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = np.array([i, i * i], dtype=np.float32)
        if self.kind == "dict":
            return {"x": x, "y": i % 3, "name": f"s{i}", "w": 0.5 * i}
        if self.kind == "namedtuple":
            return Pair(x, i)
        return x, i


def _as_np(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


@pytest.mark.parametrize("kind", ["tuple", "dict", "namedtuple"])
def test_default_collate_matches_torch(kind):
    samples = [Squares(5, kind)[i] for i in range(3)]
    ours, theirs = default_collate(samples), torch.utils.data.default_collate(samples)
    if kind == "dict":
        assert list(ours) == list(theirs) and ours["name"] == theirs["name"]
        pairs = [(ours[k], theirs[k]) for k in ("x", "y", "w")]
    else:
        assert type(ours) is type(theirs)
        pairs = list(zip(ours, theirs, strict=True))
    for a, b in pairs:
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_array_equal(_as_np(a), b.numpy())
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="batch must contain"):
        default_collate([object()])


def test_dataset_loader_options_like_torch():
    data = Squares(10)
    loader = DataLoader(
        data, 4, True, generator=gg.Generator().manual_seed(0)
    )  # torch's positional order
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and isinstance(batches[0], list)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    order = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    again = np.concatenate(
        [b[1].numpy() for b in DataLoader(data, 4, True, generator=gg.Generator().manual_seed(0))]
    )
    np.testing.assert_array_equal(order, again)  # the generator fixes the order
    assert len(DataLoader(data, batch_size=4, drop_last=True)) == 2
    single = list(DataLoader(data, batch_size=None))
    assert len(single) == 10 and single[3][0].shape == (2,) and single[3][1] == 3
    by_batches = DataLoader(
        data, batch_sampler=BatchSampler(SequentialSampler(data), 3, drop_last=True)
    )
    assert [b[1].tolist() for b in by_batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    custom = DataLoader(data, batch_size=5, collate_fn=lambda batch: len(batch))
    assert list(custom) == [5, 5]
    assert len(DataLoader(data, batch_size=2).dataset) == 10
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(data, shuffle=True, sampler=SequentialSampler(data))
    with pytest.raises(ValueError, match="mutually exclusive with batch_size"):
        DataLoader(
            data, batch_size=2, batch_sampler=BatchSampler(SequentialSampler(data), 3, False)
        )
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(data, batch_size=0)


def test_tensor_dataset_subset_concat_and_fast_path():
    X, y = gg.arange(20, dtype=gg.float32).reshape(10, 2), gg.arange(10)
    data = TensorDataset(X, y)
    assert len(data) == 10 and data[3][1].item() == 3
    subset = Subset(data, [9, 0, 4])
    x_batch, y_batch = next(iter(DataLoader(subset, batch_size=3)))
    assert y_batch.tolist() == [9, 0, 4] and x_batch.tolist()[0] == [18.0, 19.0]
    both = data + Squares(2)
    assert len(both) == 12 and isinstance(both, ConcatDataset) and both[11][1] == 1
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(gg.zeros(3), gg.zeros(4))
    batch = next(
        iter(DataLoader([(gg.ones(2), 1), (gg.zeros(2), 0)], batch_size=2))
    )  # a list dataset
    assert batch[0].shape == (2, 2) and batch[1].tolist() == [1, 0]


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.25, 0.25, 0.5], [0.34, 0.33, 0.33]])
def test_random_split_sizes_as_torch(lengths):
    ours = random_split(range(10), lengths, generator=gg.Generator().manual_seed(1))
    theirs = torch.utils.data.random_split(
        range(10), lengths, generator=torch.Generator().manual_seed(1)
    )
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert sorted(i for s in ours for i in s.indices) == list(range(10))
    again = random_split(range(10), lengths, generator=gg.Generator().manual_seed(1))
    assert [s.indices for s in ours] == [s.indices for s in again]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(range(10), [3, 3])


def test_iterable_dataset():
    class Count(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    assert [b.tolist() for b in DataLoader(Count(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(list(DataLoader(Count(), batch_size=3, drop_last=True))) == 2
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Count(), shuffle=True)


# ---- files ----------------------------------------------------------------------------------
def _idx(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    header = bytes([0, 0, type_byte, array.ndim]) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(folder, n_train=6, n_test=4, zipped=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 3, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        arrays[prefix] = (images, labels)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            payload = _idx(array)
            name = f"{prefix}-{kind}-ubyte"
            if zipped:
                (folder / (name + ".gz")).write_bytes(gzip.compress(payload))
            else:
                (folder / name).write_bytes(payload)
    return arrays


@pytest.mark.parametrize("zipped", [False, True])
def test_mnist_reader_raw_and_gz(tmp_path, zipped):
    arrays = _write_mnist(tmp_path, zipped=zipped)
    train, test = gg.data.MNIST(tmp_path), gg.data.MNIST(tmp_path, train=False)
    assert len(train) == 6 and len(test) == 4
    image, label = train[2]
    assert image.shape == (1, 3, 3) and image.dtype == gg.float32 and isinstance(label, int)
    np.testing.assert_allclose(image.numpy()[0], arrays["train"][0][2] / 255, rtol=1e-6)
    assert label == int(arrays["train"][1][2]) and train.targets.dtype == gg.int64
    fast = next(iter(DataLoader(train, batch_size=6)))
    slow = next(iter(DataLoader(gg.data.MNIST(tmp_path, transform=lambda x: x), batch_size=6)))
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert a.dtype == b.dtype


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    _write_mnist(tmp_path / "FashionMNIST" / "raw", zipped=True)
    data = gg.data.FashionMNIST(tmp_path, train=False, target_transform=lambda t: t + 100)
    assert len(data) == 4 and data[0][1] >= 100 and data.classes[9] == "Ankle boot"


def test_mnist_missing_and_corrupt_files(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"train-images-idx3-ubyte \(or train-images-idx3-ubyte.gz\) "
        r"not found in .*t10k-labels-idx1-ubyte .* into",
    ):
        gg.data.MNIST(tmp_path)
    with pytest.raises(FileNotFoundError, match="download=True is not supported"):
        gg.data.MNIST(tmp_path, download=True)
    images = _idx(np.zeros((2, 3, 3), dtype=np.uint8))
    cases = {
        b"\x08\x03" + images[2:]: "is not an IDX file",
        images[:2] + b"\x07" + images[3:]: "unknown IDX data type byte 0x07",
        images[:-1]: r"declares shape \(2, 3, 3\) \(18 bytes of data\) but holds 17",
        images[:9]: "truncated inside its header",
        b"\x1f\x8b\x08broken": "damaged gzip",
    }
    for payload, message in cases.items():
        (tmp_path / "bad").write_bytes(payload)
        with pytest.raises(ValueError, match=message):
            gg.data.read_idx(tmp_path / "bad")
    floats = np.arange(6, dtype=np.float32).reshape(2, 3)
    (tmp_path / "f32").write_bytes(_idx(floats, 0x0D))
    read = gg.data.read_idx(tmp_path / "f32")
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, floats)


def test_csv_tables(tmp_path):
    path = tmp_path / "iris.csv"
    path.write_text("sepal,petal,species\n1.0,2.5,setosa\n\n3,4e-1,virginica\n0.5,1,setosa\n")
    data = gg.data.CSVDataset(path, target="species")
    assert data.columns == ["sepal", "petal"] and data.classes == ["setosa", "virginica"]
    assert data.features.dtype == gg.float32 and data.targets.tolist() == [0, 1, 0]
    np.testing.assert_allclose(
        data.features.numpy(), [[1.0, 2.5], [3.0, 0.4], [0.5, 1.0]], rtol=1e-7
    )
    (tmp_path / "plain.csv").write_text("1;2;0\n3;4;1\n5;6;2\n")
    plain = gg.data.CSVDataset(tmp_path / "plain.csv", delimiter=";")
    assert (
        plain.targets.dtype == gg.int64
        and plain.targets.tolist() == [0, 1, 2]
        and plain.classes is None
    )
    regression = gg.data.CSVDataset(tmp_path / "plain.csv", target=0, delimiter=";")
    assert regression.targets.tolist() == [1, 3, 5] and regression.features.shape == (3, 2)
    (tmp_path / "real.csv").write_text("a,b\n1,0.5\n2,1.5\n")
    assert gg.data.CSVDataset(tmp_path / "real.csv").targets.dtype == gg.float32
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,0\n1,x2,1\n")
    with pytest.raises(ValueError, match=r"line 3, column 'b': 'x2' is not a number"):
        gg.data.CSVDataset(tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(ValueError, match="line 3 has 1 cells, the header 2"):
        gg.data.CSVDataset(tmp_path / "ragged.csv")
    with pytest.raises(ValueError, match="no column named 'label'"):
        gg.data.CSVDataset(path, target="label")


def test_npz_tables(tmp_path):
    np.savez(tmp_path / "t.npz", X=np.ones((4, 3)), labels=np.arange(4), other=np.zeros(2))
    data = gg.data.NPZDataset(tmp_path / "t.npz")
    assert data.features.dtype == gg.float32 and data.targets.dtype == gg.int64 and len(data) == 4
    only = gg.data.NPZDataset(tmp_path / "t.npz", features="other", target=None)
    assert len(only.tensors) == 1
    with pytest.raises(ValueError, match=r"no array 'z' in .* it holds \['X', 'labels', 'other'\]"):
        gg.data.NPZDataset(tmp_path / "t.npz", target="z")
    np.savez(tmp_path / "u.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="no features array"):
        gg.data.NPZDataset(tmp_path / "u.npz")
