"""Forward mode and higher order: forward_ad semantics, gg.func against torch.func, and
the three worked examples (gradient penalty, Newton, sensitivity)."""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.autograd import forward_ad as fwad

ROOT = pathlib.Path(__file__).resolve().parents[1]
rng = np.random.default_rng(0)
W = rng.standard_normal((3, 4))
X = rng.standard_normal(4)


def scalar_fn(m, x):
    w = (m.tensor if m is gg else lambda a: m.tensor(a))(W)
    h = m.sigmoid(w @ x)
    return (h * h).sum() + m.logsumexp(x * 2, 0)


def vector_fn(m, x):
    w = (m.tensor if m is gg else lambda a: m.tensor(a))(W)
    return m.tanh(w @ x) * x[:3]


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- forward_ad semantics -------------------------------------------------------------
def test_make_dual_needs_a_level_and_tangents_die_with_it():
    x, t = gg.tensor([1.0, 2.0]), gg.tensor([1.0, 0.0])
    with pytest.raises(RuntimeError, match="dual_level"):
        fwad.make_dual(x, t)
    with fwad.dual_level():
        d = fwad.make_dual(x, t)
        y = d * d
        primal, tangent = fwad.unpack_dual(y)
        assert tangent.tolist() == [2, 0]
        assert fwad.unpack_dual(x).tangent is None
    assert fwad.unpack_dual(y).tangent is None


def test_tangent_shape_mismatch_is_an_error():
    with fwad.dual_level(), pytest.raises(ValueError, match="does not match"):
        fwad.make_dual(gg.ones(2), gg.ones(3))


def test_forward_and_reverse_compose():
    x = gg.tensor([0.5, -1.0], dtype=gg.float64, requires_grad=True)
    with fwad.dual_level():
        d = fwad.make_dual(x, gg.tensor([1.0, 0.0], dtype=gg.float64))
        y = (d**3).sum()
        tangent = fwad.unpack_dual(y).tangent
    tangent.backward()  # d/dx of (J t) = H t = [6 x0, 0]
    assert x.grad.tolist() == pytest.approx([3.0, 0.0])


# ---- gg.func against torch.func -----------------------------------------------------------
def _t(torch, a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def test_grad_vjp_jvp_hvp_match_torch():
    torch = pytest.importorskip("torch")
    x = gg.tensor(X)
    tx = _t(torch, X)
    v = rng.standard_normal(4)

    np.testing.assert_allclose(gg.func.grad(lambda a: scalar_fn(gg, a))(x).numpy(),
                               torch.func.grad(lambda a: scalar_fn(torch, a))(tx).numpy(), rtol=1e-10)
    out, vjp_fn = gg.func.vjp(lambda a: vector_fn(gg, a), x)
    t_out, t_vjp = torch.func.vjp(lambda a: vector_fn(torch, a), tx)
    cot = rng.standard_normal(3)
    np.testing.assert_allclose(out.numpy(), t_out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(vjp_fn(gg.tensor(cot))[0].numpy(), t_vjp(_t(torch, cot))[0].numpy(), rtol=1e-10)
    out, tangent = gg.func.jvp(lambda a: vector_fn(gg, a), (x,), (gg.tensor(v),))
    t_out, t_tangent = torch.func.jvp(lambda a: vector_fn(torch, a), (tx,), (_t(torch, v),))
    np.testing.assert_allclose(tangent.numpy(), t_tangent.numpy(), rtol=1e-10)
    value, hv = gg.func.hvp(lambda a: scalar_fn(gg, a), (x,), (gg.tensor(v),))
    t_value, t_hv = torch.autograd.functional.hvp(lambda a: scalar_fn(torch, a), tx, _t(torch, v))
    assert value.item() == pytest.approx(t_value.item())
    np.testing.assert_allclose(hv.numpy(), t_hv.numpy(), rtol=1e-9)


@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobians_match_torch(transform):
    torch = pytest.importorskip("torch")
    ours = getattr(gg.func, transform)(lambda a: vector_fn(gg, a))(gg.tensor(X))
    theirs = getattr(torch.func, transform)(lambda a: vector_fn(torch, a))(_t(torch, X))
    assert ours.shape == tuple(theirs.shape) == (3, 4)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10)


def test_hessian_matches_torch_and_is_symmetric():
    torch = pytest.importorskip("torch")
    ours = gg.func.hessian(lambda a: scalar_fn(gg, a))(gg.tensor(X)).numpy()
    theirs = torch.func.hessian(lambda a: scalar_fn(torch, a))(_t(torch, X)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours, ours.T, atol=1e-12)


def test_grad_argnums_and_has_aux():
    def f(a, b):
        return (a * b).sum(), "aux"

    ga, gb = gg.func.grad(lambda a, b: f(a, b)[0], argnums=(0, 1))(gg.tensor([1.0, 2.0]), gg.tensor([3.0, 4.0]))
    assert ga.tolist() == [3, 4] and gb.tolist() == [1, 2]
    g, aux = gg.func.grad(f, has_aux=True)(gg.tensor([1.0, 2.0]), gg.tensor([3.0, 4.0]))
    assert g.tolist() == [3, 4] and aux == "aux"


def test_results_are_detached_when_inputs_need_no_grad():
    h = gg.func.hessian(lambda a: (a**3).sum())(gg.tensor([1.0, 2.0]))
    assert not h.requires_grad and h.tolist() == [[6, 0], [0, 12]]


# ---- the examples -------------------------------------------------------------------------
def test_gradient_penalty_example_trains_the_penalty_down():
    hist = load_example("gradient_penalty").train(steps=40)
    (loss0, reg0), (loss1, reg1) = hist[0], hist[-1]
    assert loss1 < loss0 * 0.5
    assert reg1 < reg0 * 0.1


def test_newton_example_converges_in_a_handful_of_steps():
    mod = load_example("newton")
    f = mod.make_problem()
    w, norms = mod.newton(f, gg.zeros(3, dtype=gg.float64), steps=6)
    assert norms[4] < 1e-10  # quadratic convergence
    assert all(b <= a for a, b in zip(norms[:4], norms[1:5]))


def test_sensitivity_example_matches_finite_differences():
    mod = load_example("sensitivity")
    theta = gg.tensor(2.0, dtype=gg.float64)
    _, dxs = gg.func.jvp(mod.simulate, (theta,), (gg.ones((), dtype=gg.float64),))
    eps = 1e-6
    plus = mod.simulate(gg.tensor(2.0 + eps, dtype=gg.float64)).numpy()
    minus = mod.simulate(gg.tensor(2.0 - eps, dtype=gg.float64)).numpy()
    np.testing.assert_allclose(dxs.numpy(), (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-9)
    # and it agrees with reverse mode, one output at a time
    jac = gg.func.jacrev(mod.simulate)(theta)
    np.testing.assert_allclose(jac.numpy(), dxs.numpy(), rtol=1e-10)


@pytest.mark.cuda
def test_forward_mode_and_hessian_on_cuda():
    x = gg.tensor(X, device="cuda")
    h_gpu = gg.func.hessian(lambda a: (gg.sigmoid(a) ** 2).sum())(x)
    h_cpu = gg.func.hessian(lambda a: (gg.sigmoid(a) ** 2).sum())(gg.tensor(X))
    np.testing.assert_allclose(h_gpu.cpu().numpy(), h_cpu.numpy(), rtol=1e-9)
    _, t = gg.func.jvp(lambda a: gg.tanh(a) * a, (x,), (gg.ones_like(x),))
    _, t_cpu = gg.func.jvp(lambda a: gg.tanh(a) * a, (gg.tensor(X),), (gg.ones(4, dtype=gg.float64),))
    np.testing.assert_allclose(t.cpu().numpy(), t_cpu.numpy(), rtol=1e-9)
