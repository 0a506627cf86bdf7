"""The op table, driven through every check: forward vs NumPy, gradcheck, jvp (vs finite
differences and vs reverse mode), gradgradcheck, float32 smoke, and parity with torch."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import function as function_module
from gpugrad.autograd.function import Function
from gpugrad.backend import kernels
from tests.opinfo import OPS

ids = [op.name for op in OPS]


def make_inputs(op, dtype=gg.float64, requires_grad=True, seed=0):
    arrays = op.sample(np.random.default_rng(seed))
    out = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            out.append(gg.tensor(a, dtype=dtype, requires_grad=requires_grad and i not in op.nondiff))
        else:
            out.append(gg.tensor(a))
    return arrays, out


def call(op, inputs):
    return op.fn(gg, *inputs)


@pytest.mark.parametrize("dtype", [gg.float32, gg.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op", OPS, ids=ids)
def test_forward_matches_numpy(op, dtype):
    arrays, inputs = make_inputs(op, dtype, requires_grad=False)
    out = call(op, inputs)
    expected = op.ref(*[np.asarray(a) for a in arrays])
    assert out.dtype == dtype
    tol = 1e-5 if dtype == gg.float32 else 1e-10
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("op", OPS, ids=ids)
def test_gradcheck(op):
    _, inputs = make_inputs(op)
    assert gg.autograd.gradcheck(lambda *xs: call(op, xs), inputs)


@pytest.mark.parametrize("op", [op for op in OPS if op.jvp], ids=[op.name for op in OPS if op.jvp])
def test_jvp_matches_finite_differences(op):
    _, inputs = make_inputs(op)
    assert gg.autograd.gradcheck(lambda *xs: call(op, xs), inputs, check_forward_ad=True,
                                 check_backward_ad=False)


@pytest.mark.parametrize("op", [op for op in OPS if op.jvp], ids=[op.name for op in OPS if op.jvp])
def test_jvp_agrees_with_vjp(op):
    """<J t, v> == <t, J^T v> for random t and v."""
    _, inputs = make_inputs(op)
    rng = np.random.default_rng(1)
    diff = [x for x in inputs if x.requires_grad]
    tangents = [gg.tensor(rng.standard_normal(x.shape), dtype=x.dtype) for x in diff]
    out = call(op, inputs)
    v = gg.tensor(rng.standard_normal(out.shape), dtype=out.dtype)
    vjps = gg.autograd.grad(out, diff, v, allow_unused=True)
    with gg.autograd.forward_ad.dual_level():
        duals = iter([gg.autograd.forward_ad.make_dual(x, t) for x, t in zip(diff, tangents)])
        dual_inputs = [next(duals) if x.requires_grad else x for x in inputs]
        jt = gg.autograd.forward_ad.unpack_dual(call(op, dual_inputs)).tangent
    lhs = float((jt.detach().numpy() * v.numpy()).sum())
    rhs = sum(float((t.numpy() * g.numpy()).sum()) for t, g in zip(tangents, vjps) if g is not None)
    assert lhs == pytest.approx(rhs, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("op", [op for op in OPS if op.gradgrad], ids=[op.name for op in OPS if op.gradgrad])
def test_gradgradcheck(op):
    _, inputs = make_inputs(op)
    assert gg.autograd.gradgradcheck(lambda *xs: call(op, xs), inputs)


@pytest.mark.parametrize("op", OPS, ids=ids)
def test_float32_backward_close_to_float64(op):
    _, inputs64 = make_inputs(op, gg.float64)
    _, inputs32 = make_inputs(op, gg.float32)
    grads = []
    for inputs in (inputs64, inputs32):
        out = call(op, inputs)
        diff = [x for x in inputs if x.requires_grad]
        seed = gg.ones_like(out)
        grads.append(gg.autograd.grad(out, diff, seed, allow_unused=True))
    for g64, g32 in zip(*grads):
        if g64 is None:
            continue
        assert g32.dtype == gg.float32
        np.testing.assert_allclose(g32.numpy(), g64.numpy(), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("op", [op for op in OPS if op.torch], ids=[op.name for op in OPS if op.torch])
def test_matches_torch(op):
    torch = pytest.importorskip("torch")
    arrays, inputs = make_inputs(op)
    t_inputs = [
        torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=i not in op.nondiff)
        if np.asarray(a).dtype.kind == "f" else torch.tensor(np.asarray(a)) for i, a in enumerate(arrays)
    ]
    out, t_out = call(op, inputs), op.fn(torch, *t_inputs)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    seed = np.random.default_rng(2).standard_normal(tuple(t_out.shape))
    diff = [x for x in inputs if x.requires_grad]
    t_diff = [x for x in t_inputs if x.requires_grad]
    grads = gg.autograd.grad(out, diff, gg.tensor(seed, dtype=gg.float64), allow_unused=True)
    t_grads = torch.autograd.grad(t_out, t_diff, torch.tensor(seed), allow_unused=True)
    for i, (g, tg) in enumerate(zip(grads, t_grads)):
        if tg is None:
            assert g is None or not np.any(g.numpy()), f"input {i}: torch gives no gradient"
            continue
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=op.torch_rtol, atol=1e-12, err_msg=f"input {i}")


def _function_classes():
    import gpugrad.autograd.forward_ad as fad
    import gpugrad.ops as ops_pkg

    found = set()
    for module in (ops_pkg.elementwise, ops_pkg.activation, ops_pkg.reduce, ops_pkg.shape, ops_pkg.linalg,
                   ops_pkg.loss, ops_pkg.sparse, ops_pkg.normalization, ops_pkg.sorting, fad):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Function) and obj is not Function and obj.__module__ == module.__name__:
                found.add(obj)
    return found


def test_every_function_is_exercised_by_the_table():
    """Guard: each Function subclass in gpugrad.ops is run (forward and backward) by some entry."""
    seen = set()

    def observe(node, outputs):
        seen.add(node.fn)

    function_module.forward_observers.append(observe)
    try:
        for op in OPS:
            _, inputs = make_inputs(op)
            out = call(op, inputs)
            diff = [x for x in inputs if x.requires_grad]
            grads = gg.autograd.grad(out, diff, gg.ones_like(out), create_graph=True, allow_unused=True)
            with gg.autograd.forward_ad.dual_level():
                d = [gg.autograd.forward_ad.make_dual(x, gg.ones_like(x)) if x.requires_grad else x for x in inputs]
                call(op, d)
            del grads
        # the engine's own cast and device copies, exercised directly:
        x = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
        x.to(gg.float32).sum().backward()
    finally:
        function_module.forward_observers.remove(observe)
    missing = {cls.__name__ for cls in _function_classes()} - {cls.__name__ for cls in seen}
    missing -= {"ToDevice"}  # needs a GPU: covered by tests/test_cuda.py
    missing -= {"Unary", "FusedActivation", "ActivationBackward"}  # bases: subclasses run
    assert not missing, f"Functions not exercised by tests/opinfo.py: {sorted(missing)}"


PUBLIC_OPS = """add sub mul div neg pow exp log sqrt abs sin cos tanh sigmoid relu maximum minimum clamp
where sum mean max min logsumexp var reshape transpose permute unsqueeze squeeze expand flatten cat
stack matmul""".split()
FUNCTIONAL = """relu sigmoid tanh leaky_relu gelu softplus softmax log_softmax linear cross_entropy
nll_loss mse_loss binary_cross_entropy_with_logits multi_margin_loss""".split()


def test_every_public_op_exists_and_is_in_the_table():
    names = " ".join(op.name for op in OPS)
    for name in PUBLIC_OPS:
        assert callable(getattr(gg, name)), name
        assert name in names or name in ("pow",), f"{name} missing from tests/opinfo.py"
    for name in FUNCTIONAL:
        assert callable(getattr(gg.nn.functional, name)), name
    short = {"binary_cross_entropy_with_logits": "bce_with_logits"}
    for name in FUNCTIONAL:
        assert short.get(name, name) in names, f"{name} missing from tests/opinfo.py"


# ---- NaN and signed zeros: torch's values and gradients, bit for bit, at every kernel level ----
NAN, INF = float("nan"), float("inf")
SPECIAL = np.array([NAN, -0.0, 0.0, 1.5, -1.5, INF, -INF, 0.25, -0.25, 3.0, -3.0])
PAIR_A = np.array([NAN, 1.0, NAN, 2.0, -0.0, 0.0, 3.0, -3.0, 0.5])
PAIR_B = np.array([1.0, NAN, NAN, 2.0, 0.0, -0.0, -3.0, 3.0, 0.5])
NAN_ROWS = np.array([[1.0, NAN, 3.0, NAN], [2.0, 5.0, -1.0, 5.0], [NAN, NAN, 0.0, 1.0]])
LEVELS = ["reference"] + (["native"] if kernels.native_cpu() is not None else [])


def _linear_act_relu(m, x, w, b):
    if m.__name__ == "gpugrad":
        return m.nn.functional.linear_act(x, w, b, "relu")
    return m.relu(m.nn.functional.linear(x, w, b))


# name -> (fn(m, *inputs), inputs, signed): `signed` also compares the sign of zeros (torch's
# maximum / minimum pick either zero depending on its vector width, so those compare values only)
NAN_CASES = {
    "relu": (lambda m, x: m.relu(x), [SPECIAL], True),
    "F.relu": (lambda m, x: m.nn.functional.relu(x), [SPECIAL.reshape(1, -1)], True),
    "relu_method": (lambda m, x: x.relu(), [SPECIAL], True),
    "leaky_relu": (lambda m, x: m.nn.functional.leaky_relu(x, 0.1), [SPECIAL], True),
    # x = 0, so the pre-activation is the bias exactly: NaN and inf reach the fused relu alone
    "linear_act_relu": (_linear_act_relu, [np.zeros((2, 3)), np.arange(3.0 * SPECIAL.size).reshape(-1, 3) / 7,
                                           SPECIAL], False),
    "clamp": (lambda m, x: m.clamp(x, -0.5, 0.5), [SPECIAL], True),
    "clamp_zero": (lambda m, x: m.clamp(x, 0.0, 1.0), [SPECIAL], True),
    "clamp_min": (lambda m, x: m.clamp(x, min=0.0), [SPECIAL], True),
    "clamp_max": (lambda m, x: m.clamp(x, max=0.0), [SPECIAL], True),
    "clamp_tensors": (lambda m, x, lo, hi: m.clamp(x, lo, hi), [PAIR_A, PAIR_B - 1.0, PAIR_B + 1.0], False),
    "clamp_tensor_ties": (lambda m, x, lo, hi: m.clamp(x, lo, hi), [PAIR_A, PAIR_B, PAIR_B], False),
    "clamp_tensor_min": (lambda m, x, lo: m.clamp(x, min=lo), [PAIR_A, PAIR_B], False),
    "clamp_tensor_max": (lambda m, x, hi: m.clamp(x, max=hi), [PAIR_A, PAIR_B], False),
    "maximum": (lambda m, a, b: m.maximum(a, b), [PAIR_A, PAIR_B], False),
    "minimum": (lambda m, a, b: m.minimum(a, b), [PAIR_A, PAIR_B], False),
    "max_all": (lambda m, x: x.max(), [NAN_ROWS], True),
    "min_all": (lambda m, x: m.min(x), [NAN_ROWS], True),
    "max_all_no_nan": (lambda m, x: x.max(), [NAN_ROWS[1:2]], True),
    "max_dim": (lambda m, x: m.max(x, 1)[0], [NAN_ROWS], True),
    "min_dim": (lambda m, x: x.min(0).values, [NAN_ROWS], True),
    "amax": (lambda m, x: m.amax(x, 1), [NAN_ROWS], True),
    "amin_all": (lambda m, x: m.amin(x), [NAN_ROWS], True),
}


# Known gap, not of these ops: forward mode gives a constant operand (leaky_relu's slope) a
# materialized zero tangent, so x * slope has tangent t * slope + x * 0 = NaN at x = +-inf or
# NaN, where torch (no tangent at all) gives t * slope. It is the engine's (autograd/function.py
# _forward_tangents) and hits every binary op with a constant; compared at finite inputs only.
TANGENT_FINITE_ONLY = {"leaky_relu"}


def _assert_same(actual, expected, signed, what, rtol=0.0):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    if rtol:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)  # NaN == NaN here
    if signed:
        zero = expected == 0
        np.testing.assert_array_equal(np.signbit(actual[zero]), np.signbit(expected[zero]),
                                      err_msg=what + ": sign of zero")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NaN in, on purpose
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", list(NAN_CASES))
def test_nan_and_signed_zero_match_torch(name, level):
    """Forward values, reverse gradients and forward-mode tangents equal torch's where inputs
    hold NaN, +-inf, -0.0 and ties (gradients at NaN follow torch's masks, not a convention)."""
    torch = pytest.importorskip("torch")
    fn, arrays, signed = NAN_CASES[name]
    rng = np.random.default_rng(3)
    inputs = [gg.tensor(a, dtype=gg.float64, requires_grad=True) for a in arrays]
    t_inputs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    with kernels.use(level):
        out = fn(gg, *inputs)
        seed = rng.standard_normal(out.shape)
        grads = gg.autograd.grad(out, inputs, gg.tensor(seed), allow_unused=True)
        with gg.autograd.forward_ad.dual_level():
            duals = [gg.autograd.forward_ad.make_dual(x.detach(), gg.tensor(t)) for x, t in zip(inputs, tangents)]
            tangent_out = gg.autograd.forward_ad.unpack_dual(fn(gg, *duals)).tangent
    t_out = fn(torch, *t_inputs)
    t_grads = torch.autograd.grad(t_out, t_inputs, torch.tensor(seed), allow_unused=True)
    with torch.autograd.forward_ad.dual_level():
        t_duals = [torch.autograd.forward_ad.make_dual(x.detach(), torch.tensor(t)) for x, t in zip(t_inputs, tangents)]
        t_tangent_out = torch.autograd.forward_ad.unpack_dual(fn(torch, *t_duals)).tangent

    _assert_same(out.detach().numpy(), t_out.detach().numpy(), signed, f"{name}: forward")
    gemm = 1e-12 if name == "linear_act_relu" else 0.0  # torch's and NumPy's BLAS round differently
    for i, (g, tg) in enumerate(zip(grads, t_grads)):
        expected = np.zeros(arrays[i].shape) if tg is None else tg.numpy()
        actual = np.zeros(arrays[i].shape) if g is None else g.numpy()
        _assert_same(actual, expected, False, f"{name}: gradient {i}", rtol=gemm)
    tangent, t_tangent = tangent_out.numpy(), t_tangent_out.numpy()
    if name in TANGENT_FINITE_ONLY:
        finite = np.isfinite(arrays[0])
        tangent, t_tangent = tangent[finite], t_tangent[finite]
    # torch's jvp rules are written as tb + s * (ta - tb): they round where gpugrad's select exactly
    _assert_same(tangent, t_tangent, False, f"{name}: tangent", rtol=gemm or 1e-15)
