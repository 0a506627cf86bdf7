"""gg.data: DataLoader batching and shuffling, load_digits."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.data import DataLoader, load_digits


def _rows(loader):
    return np.concatenate([x.numpy() for x, *_ in loader])


def test_batches_in_order_with_sizes_and_len():
    X, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    loader = DataLoader(X, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert all(isinstance(t, gg.Tensor) for b in batches for t in b)
    np.testing.assert_array_equal(_rows(loader), X)
    assert batches[0][1].tolist() == [0, 1, 2, 3]
    assert batches[0][0].dtype == gg.float32 and batches[0][1].dtype == gg.int64


def test_drop_last():
    loader = DataLoader(np.zeros((10, 1)), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [b[0].shape[0] for b in loader] == [4, 4]
    assert len(DataLoader(np.zeros((8, 1)), batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(np.zeros((3, 1)), batch_size=4, drop_last=True)) == 0
    assert len(DataLoader(np.zeros((3, 1)), batch_size=4)) == 1


def test_shuffle_reproducible_with_seed_and_new_order_each_epoch():
    X = np.arange(50)
    first = DataLoader(X, batch_size=8, shuffle=True, seed=3)
    second = DataLoader(X, batch_size=8, shuffle=True, seed=3)
    epoch1, epoch2 = _rows(first), _rows(first)
    np.testing.assert_array_equal(epoch1, _rows(second))
    np.testing.assert_array_equal(epoch2, _rows(second))
    assert not np.array_equal(epoch1, X) and not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(np.sort(epoch1), X)  # a permutation: every row once
    assert not np.array_equal(epoch1, _rows(DataLoader(X, batch_size=8, shuffle=True, seed=4)))


def test_shuffle_without_seed_follows_manual_seed():
    X = np.arange(30)
    gg.manual_seed(11)
    a = _rows(DataLoader(X, batch_size=7, shuffle=True))
    gg.manual_seed(11)
    b = _rows(DataLoader(X, batch_size=7, shuffle=True))
    np.testing.assert_array_equal(a, b)


def test_rows_stay_paired_when_shuffled():
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.arange(20) * 10
    for xb, yb in DataLoader(X, gg.tensor(y), batch_size=6, shuffle=True, seed=0):
        np.testing.assert_array_equal(xb.numpy()[:, 0] / 2 * 10, yb.numpy())


def test_accepts_tensors_and_lists_and_checks_arguments():
    loader = DataLoader(gg.ones(5, 3), [1, 2, 3, 4, 5], batch_size=2)
    x, y = next(iter(loader))
    assert x.shape == (2, 3) and y.tolist() == [1, 2] and y.dtype == gg.int64
    with pytest.raises(ValueError, match="differ in length"):
        DataLoader(np.zeros(5), np.zeros(6))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros(5), batch_size=0)
    with pytest.raises(ValueError, match="at least one"):
        DataLoader()


def test_batches_do_not_alias_the_dataset():
    X = np.zeros((4, 2))
    (batch,) = next(iter(DataLoader(X, batch_size=2)))
    batch.array[...] = 1
    assert not X.any()


def test_load_digits_split_scaling_and_dtypes():
    data = load_digits()
    X_train, y_train, X_test, y_test = data
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert X_train.dtype == gg.float32 and y_train.dtype == gg.int64
    assert 0.0 <= X_train.numpy().min() and X_train.numpy().max() == 1.0
    assert data.y_test is y_test and data.X_train is X_train
    # stratified: every class keeps its share in the test set
    counts = np.bincount(y_test.numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    again = load_digits()
    np.testing.assert_array_equal(again.X_test.numpy(), X_test.numpy())
    other = load_digits(seed=1)
    assert not np.array_equal(other.y_test.numpy(), y_test.numpy())
    assert load_digits(test_size=0.5).X_test.shape == (899, 64)
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=1.5)
