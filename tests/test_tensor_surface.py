"""The Tensor / torch.* names of PyTorch MLP scripts beyond the op table (tests/opinfo.py holds
the differentiable ones): constructors off a tensor, in-place fills, sorting indices, masks,
integer paths and the errors, each against torch."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")


def pair(array, requires_grad=False):
    array = np.asarray(array)
    return (
        gg.tensor(array, requires_grad=requires_grad),
        torch.tensor(array, requires_grad=requires_grad),
    )


def same(ours, theirs):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = ours.detach().numpy() if isinstance(ours, gg.Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours, theirs)
    np.testing.assert_array_equal(ours, theirs)


def test_new_constructors_take_dtype_and_device_from_self():
    x, tx = pair(np.ones((2, 3)))
    for name in ("new_zeros", "new_ones"):
        same(getattr(x, name)(4, 2), getattr(tx, name)(4, 2))
        same(getattr(x, name)((1, 2), dtype=gg.int64), getattr(tx, name)((1, 2), dtype=torch.int64))
    same(x.new_full((2,), 7), tx.new_full((2,), 7))
    assert x.new_empty(3, 1).shape == (3, 1) and x.new_empty(3, 1).dtype == gg.float64
    same(x.new_tensor([1, 2]), tx.new_tensor([1, 2]))
    assert x.new_zeros(2, requires_grad=True).requires_grad


def test_type_and_type_as():
    x, tx = pair(np.ones(2, dtype=np.float32))
    assert x.type() == tx.type() == "torch.FloatTensor"
    assert x.long().type() == "torch.LongTensor"
    assert x.type(gg.float64).dtype == gg.float64
    assert x.type("torch.LongTensor").dtype == gg.int64
    assert x.type_as(gg.zeros(1, dtype=gg.int64)).dtype == gg.int64
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.NoSuchTensor")


def test_inplace_fills_and_updates():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x, tx = pair(a)
    for ours, theirs in ((x, tx),):
        ours.add_(gg.tensor(a), alpha=0.5), theirs.add_(torch.tensor(a), alpha=0.5)
        ours.clamp_(-0.5, 0.7), theirs.clamp_(-0.5, 0.7)
        ours.masked_fill_(ours > 0.2, -3.0), theirs.masked_fill_(theirs > 0.2, -3.0)
        ours.tril_(1), theirs.tril_(1)
        same(ours, theirs)
        ours.fill_(2.5), theirs.fill_(2.5)
        same(ours, theirs)
        ours.zero_(), theirs.zero_()
        same(ours, theirs)
    gg.manual_seed(0)
    n = gg.zeros(2000, dtype=gg.float64).normal_(1.0, 2.0)
    u = gg.zeros(2000, dtype=gg.float64).uniform_(-1.0, 3.0)
    assert abs(n.mean().item() - 1) < 0.2 and abs(n.std().item() - 2) < 0.2
    assert -1 <= u.min().item() and u.max().item() < 3 and abs(u.mean().item() - 1) < 0.1


def test_masked_fill_dtype_broadcast_and_errors():
    x, tx = pair(np.arange(6).reshape(2, 3))
    mask = np.array([True, False, True])
    # an int tensor stays int: the value is cast to it
    same(x.masked_fill(gg.tensor(mask), 2.7), tx.masked_fill(torch.tensor(mask), 2.7))
    big = np.ones((4, 2, 3), dtype=bool)
    same(x.masked_fill(gg.tensor(big), 1), tx.masked_fill(torch.tensor(big), 1))
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        x.masked_fill(gg.ones(3), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        x.masked_fill(gg.tensor(mask), gg.ones(2))
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        x.masked_fill_(gg.tensor(big), 1)


def test_sorting_indices_ties_and_nan_as_torch():
    a = np.array([[3.0, 1.0, np.nan, 1.0, -np.inf, 3.0], [0.0, -0.5, 2.0, 2.0, np.inf, 0.0]])
    x, tx = pair(a)
    for descending in (False, True):
        ours, theirs = (
            x.sort(dim=1, descending=descending, stable=True),
            tx.sort(dim=1, descending=descending, stable=True),
        )
        same(ours.values, theirs.values)
        same(ours.indices, theirs.indices)
        same(
            x.argsort(dim=0, descending=descending, stable=True),
            tx.argsort(dim=0, descending=descending, stable=True),
        )
    ints, tints = pair(np.array([[5, 2, 9, 2], [1, 1, 0, 7]]))
    same(ints.sort(1).values, tints.sort(1).values)
    distinct = np.random.default_rng(1).permutation(12).reshape(3, 4).astype(np.float64)
    d, td = pair(distinct)
    for largest in (True, False):
        same(d.topk(3, 1, largest=largest).indices, td.topk(3, 1, largest=largest).indices)
        same(gg.topk(d, 2, 0, largest=largest)[1], torch.topk(td, 2, 0, largest=largest)[1])
    same(gg.msort(d), torch.msort(td))
    with pytest.raises(RuntimeError, match="k out of range"):
        d.topk(5)


def test_reductions_scans_and_indices_on_integers_and_bools():
    a = np.array([[0, 3, -1], [2, 0, 0]])
    x, tx = pair(a)
    same(x.cumsum(1), tx.cumsum(1))
    same(gg.cumsum(x > 0, 0), torch.cumsum(tx > 0, 0))  # bool accumulates in int64
    same(x.cumsum(0, dtype=gg.float64), tx.cumsum(0, dtype=torch.float64))
    same(x.nonzero(), tx.nonzero())
    for ours, theirs in zip(x.nonzero(as_tuple=True), tx.nonzero(as_tuple=True), strict=True):
        same(ours, theirs)
    same(gg.argwhere(x), torch.argwhere(tx))
    same(gg.tensor(3.0).nonzero(), torch.tensor(3.0).nonzero())
    same(x.all(1, keepdim=True), tx.all(1, keepdim=True))
    same(gg.any(x, 0), torch.any(tx, 0))
    same(x.repeat(2, 2), tx.repeat(2, 2))
    same(x.flip(1), tx.flip(1))
    same(x.triu(), tx.triu())
    same(x > 0, tx > 0)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        same(getattr(x, name)(0), getattr(tx, name)(0))


def test_norm_special_cases():
    zero = gg.zeros(3, dtype=gg.float64, requires_grad=True)
    zero.norm().backward()
    assert zero.grad.tolist() == [0.0, 0.0, 0.0]  # torch's 2-norm gradient at 0
    x, tx = pair(np.array([[0.0, 2.0, -1.0], [0.0, 0.0, 3.0]]))
    same(x.norm(0, dim=1), tx.norm(0, dim=1))
    same(x.norm(float("-inf")), tx.norm(float("-inf")))
    np.testing.assert_allclose(gg.norm(x, "fro").item(), torch.norm(tx, "fro").item(), rtol=1e-15)
    with pytest.raises(RuntimeError, match="floating point"):
        gg.norm(gg.tensor([1, 2]))
    with pytest.raises(ValueError, match="p must be a number"):
        x.norm("nuc")


def test_pieces_and_shapes_errors_as_torch():
    x = gg.zeros(2, 3)
    cases = [
        (lambda: x.chunk(0), "chunk expects `chunks` to be greater than 0"),
        (lambda: x.split([1, 1], 1), "split_with_sizes expects split_sizes to sum exactly to 3"),
        (lambda: x.repeat(2), "can not be smaller than number of dimensions"),
        (lambda: gg.tril(gg.ones(3)), "at least 2 dimensions"),
        (lambda: gg.diag(gg.ones(2, 2, 2)), "Supports 1D or 2D tensors. Got 3D"),
        (lambda: gg.outer(gg.ones(2, 2), gg.ones(2)), "Expected 1-D argument self"),
        (lambda: gg.bmm(gg.ones(2, 3), gg.ones(2, 3)), "batch1 must be a 3D tensor"),
        (lambda: gg.bmm(gg.ones(2, 3, 4), gg.ones(3, 4, 3)), r"to be: \[2, 4\] but got: \[3, 4\]"),
        (
            lambda: gg.addmm(gg.ones(3), gg.ones(2, 3), gg.ones(4, 3)),
            r"cannot be multiplied \(2x3 and 4x3\)",
        ),
        (lambda: gg.addmm(gg.ones(3, 3), gg.ones(2, 3), gg.ones(3, 4)), "cannot be broadcast"),
        (lambda: gg.dot(gg.ones(2), gg.ones(3)), "inconsistent tensor size"),
        (lambda: gg.roll(x, (1, 2)), "shifts must be a single number"),
        (lambda: gg.roll(x, (1, 2), 0), "shifts and dimensions must align"),
        (
            lambda: gg.einsum("ij,jk->il", gg.ones(2, 3), gg.ones(3, 4)),
            "output subscript l does not appear",
        ),
        (
            lambda: gg.einsum("ij,jk", gg.ones(2, 3), gg.ones(4, 4)),
            "subscript j has size 4 for operand 1",
        ),
        (lambda: gg.einsum("ij", gg.ones(2)), "number of subscripts in the equation"),
        (lambda: gg.einsum("i,i", gg.ones(2)), "fewer operands"),
    ]
    for call, message in cases:
        with pytest.raises(RuntimeError, match=message):
            call()
    with pytest.raises(IndexError, match="exceeds dimension 1"):
        x.narrow(1, 2, 2)
    with pytest.raises(TypeError, match="1-D integer tensor"):
        x.index_select(0, gg.zeros(1))


def test_einsum_more_equations_against_torch():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 3))
    cases = [
        ("bij->bji", (a,)),
        ("bij,jk->bik", (a, rng.standard_normal((4, 2)))),
        ("...ij,jk->...ik", (a, rng.standard_normal((4, 5)))),
        ("ij,ij->", (b, b)),
        ("ji", (b,)),
        ("bij,bij->b", (a, a)),
        ("ij,kl->ijkl", (b[:2, :2], b[:2, :2])),
        ("i,i->i", (b[0], b[0])),
        ("b...,b->...", (a, rng.standard_normal(2))),
    ]
    for equation, arrays in cases:
        ours = gg.einsum(equation, *[gg.tensor(x) for x in arrays])
        theirs = torch.einsum(equation, *[torch.tensor(x) for x in arrays])
        np.testing.assert_allclose(
            ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12, err_msg=equation
        )
    assert gg.einsum("ij,jk", [gg.ones(2, 3), gg.ones(3, 1)]).shape == (2, 1)  # a list of operands


def test_randint_two_argument_form():
    gg.manual_seed(0)
    draw = gg.randint(10, (3,))
    assert draw.shape == (3,) and draw.dtype == gg.int64
    assert 0 <= draw.min().item() and draw.max().item() < 10


def test_porting_aliases():
    from gpugrad.utils.data import DataLoader  # torch.utils.data's import path

    assert DataLoader is gg.data.DataLoader
    assert gg.utils.data is gg.data
    # the quickstart's device choice
    device = gg.accelerator.current_accelerator().type if gg.accelerator.is_available() else "cpu"
    assert device == ("cuda" if gg.cuda.is_available() else "cpu")
    assert gg.accelerator.device_count() == gg.cuda.device_count()
