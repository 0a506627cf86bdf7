"""gg.autograd.functional (vjp, jvp, jacobian, hessian, vhp, hvp) against
torch.autograd.functional in float64: values, result structure (tensor vs tuples), create_graph,
strict mode and the argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")
TOL = {"rtol": 1e-12, "atol": 1e-12}


def scalar(x):
    return ((x**3).sin() * x).sum()


def two_in_one_out(x, y):
    return (x.exp() * y.tanh()).sum() + (x * y * y).sum()


def vector(x):
    return x.tanh() * x.sum()


def tuple_out(x, y):
    return x * y.sin(), (x**2).sum() * y


def _inputs(lib, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    return tuple(lib.tensor(a) for a in arrays)


def _same(ours, theirs):
    """Compare nested tuples of tensors, structure included (torch's forward-mode jacobian
    gives lists where reverse mode gives tuples; gpugrad gives tuples in both)."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            _same(a, b)
        return
    assert isinstance(ours, gg.Tensor) and tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **TOL)


def _both(fn_name, func, shapes, *, v_shapes=None, single=False, **options):
    results = []
    for lib in (gg, torch):
        inputs = _inputs(lib, *shapes)
        args = [func, inputs[0] if single else inputs]
        if v_shapes is not None:
            v = _inputs(lib, *v_shapes, seed=1)
            args.append(v[0] if single else v)
        results.append(getattr(lib.autograd.functional, fn_name)(*args, **options))
    _same(*results)
    return results


@pytest.mark.parametrize("create_graph", [False, True])
def test_vjp_and_jvp(create_graph):
    _both("vjp", vector, [(4,)], v_shapes=[(4,)], single=True, create_graph=create_graph)
    _both("vjp", scalar, [(3,)], single=True)  # v omitted: a single-element output
    _both("vjp", tuple_out, [(3,), (3,)], v_shapes=[(3,), (3,)], create_graph=create_graph)
    _both("jvp", vector, [(4,)], v_shapes=[(4,)], single=True, create_graph=create_graph)
    _both("jvp", tuple_out, [(3,), (3,)], v_shapes=[(3,), (3,)])
    _both("jvp", lambda x: x * 3, [(1,)], single=True)  # v omitted: a single-element input


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_jacobian_structures(strategy):
    options = {"strategy": strategy, "vectorize": strategy == "forward-mode"}
    _both("jacobian", vector, [(4,)], single=True, **options)
    _both("jacobian", two_in_one_out, [(2, 2), (2, 2)], **options)
    _both("jacobian", tuple_out, [(3,), (3,)], **options)
    _both("jacobian", lambda x: (x.sin(), x.sum()), [(2, 3)], single=True, **options)


def test_hessian_vhp_hvp():
    _both("hessian", scalar, [(3,)], single=True)
    _both("hessian", two_in_one_out, [(2,), (2,)])
    _both(
        "hessian",
        two_in_one_out,
        [(2,), (2,)],
        outer_jacobian_strategy="forward-mode",
        vectorize=True,
    )
    for name in ("vhp", "hvp"):
        _both(name, scalar, [(3,)], v_shapes=[(3,)], single=True)
        _both(name, two_in_one_out, [(2,), (2,)], v_shapes=[(2,), (2,)])


def test_create_graph_results_are_differentiable_like_torch():
    grads = []
    for lib in (gg, torch):
        (x,) = _inputs(lib, (3,))
        x.requires_grad_()
        _, hv = lib.autograd.functional.hvp(
            scalar, x, lib.ones(3, dtype=lib.float64), create_graph=True
        )
        jac = lib.autograd.functional.jacobian(vector, x, create_graph=True)
        grads.append(lib.autograd.grad((hv.sum() + jac.sum()), x)[0])
    np.testing.assert_allclose(grads[0].numpy(), grads[1].numpy(), **TOL)
    out, v = gg.autograd.functional.vjp(vector, _inputs(gg, (3,))[0], gg.ones(3, dtype=gg.float64))
    assert not out.requires_grad and not v.requires_grad  # detached without create_graph


def test_strict_and_independent_inputs():
    def ignores_y(x, y):
        return (x * 2).sum()

    x, y = _inputs(gg, (2,), (2,))
    _, (gx, gy) = gg.autograd.functional.vjp(ignores_y, (x, y))
    assert gy.tolist() == [0.0, 0.0] and gx.tolist() == [2.0, 2.0]
    jac = gg.autograd.functional.jacobian(ignores_y, (x, y))
    assert jac[1].tolist() == [0.0, 0.0]
    for call in (
        lambda: gg.autograd.functional.vjp(ignores_y, (x, y), strict=True),
        lambda: gg.autograd.functional.jacobian(ignores_y, (x, y), strict=True),
    ):
        with pytest.raises(
            RuntimeError, match="independent of input 1. This is not allowed in strict mode"
        ):
            call()
    with pytest.raises(RuntimeError, match="independent of input 0"):
        gg.autograd.functional.vjp(lambda x: gg.ones(2), x, gg.ones(2), strict=True)


def test_errors_like_torch():
    f = gg.autograd.functional
    (x,) = _inputs(gg, (3,))
    cases = [
        (
            RuntimeError,
            "The vector v can only be None if the user-provided function returns a single Tensor",
            lambda: f.vjp(vector, x),
        ),
        (
            RuntimeError,
            "v can only be None if the input to the user-provided function is a single Tensor",
            lambda: f.jvp(vector, x),
        ),
        (
            RuntimeError,
            r"v has invalid size: should be \(3,\) but got \(2,\)",
            lambda: f.vjp(vector, x, gg.ones(2)),
        ),
        (
            RuntimeError,
            "v is a tuple of invalid length: should be 2 but got 1",
            lambda: f.jvp(tuple_out, (x, x), (x,)),
        ),
        (
            TypeError,
            "The inputs given to jacobian must be either a Tensor or a tuple of Tensors but the "
            "given inputs has type",
            lambda: f.jacobian(vector, [x]),
        ),
        (
            TypeError,
            "outputs of the user-provided function given to vjp must be either a Tensor",
            lambda: f.vjp(lambda t: t.tolist(), x),
        ),
        (
            RuntimeError,
            "The Tensor returned by the function given to hessian should contain a single element",
            lambda: f.hessian(vector, x),
        ),
        (
            RuntimeError,
            "The function given to hvp should return a single Tensor",
            lambda: f.hvp(tuple_out, (x, x), (x, x)),
        ),
        (ValueError, "strategy must be", lambda: f.jacobian(vector, x, strategy="sideways")),
        (
            NotImplementedError,
            'create_graph=True` and `strategy="forward-mode"',
            lambda: f.jacobian(vector, x, create_graph=True, strategy="forward-mode"),
        ),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
