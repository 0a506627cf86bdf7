"""The engine and Tensor: worked backprop examples, accumulation, broadcasting, retain /
create_graph, hooks, no_grad, in-place versioning, custom Functions, errors, dtypes."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import gpugrad as gg


def leaf(value, dtype=gg.float64):
    return gg.tensor(value, dtype=dtype, requires_grad=True)


# ---- worked examples ------------------------------------------------------------------
def test_circuit_x_plus_y_times_z():
    x, y, z = leaf(-2.0), leaf(5.0), leaf(-4.0)
    f = (x + y) * z
    f.backward()
    assert f.item() == -12
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4, -4, 3)


def test_relu_routes_upstream_gradient():
    x = leaf([1.0, -2.0, 3.0, -1.0])
    gg.relu(x).backward(gg.tensor([4.0, -1.0, 5.0, 9.0], dtype=gg.float64))
    assert x.grad.tolist() == [4, 0, 5, 0]


def test_reused_tensor_accumulates_copy_gate():
    x = leaf(3.0)
    (x * x + x).backward()
    assert x.grad.item() == 7  # 2x + 1


def test_grads_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5, 5]


def test_broadcast_gradient_is_reduced_to_input_shape():
    a, b = leaf(np.ones((3, 4))), leaf(np.ones((4,)))
    c = leaf(np.ones((3, 1)))
    (a * b + c).sum().backward()
    assert b.grad.shape == (4,) and b.grad.tolist() == [3, 3, 3, 3]
    assert c.grad.shape == (3, 1) and c.grad.tolist() == [[4], [4], [4]]


def test_long_chain_is_iterative():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0000001**100_000)


def test_max_gate_routes_to_winner():
    x = leaf([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = x.max(1)
    values.sum().backward()
    assert indices.tolist() == [1, 0]
    assert x.grad.tolist() == [[0, 1, 0], [1, 0, 0]]


def test_full_max_splits_ties_like_torch():
    x = leaf([3.0, 1.0, 3.0])
    x.max().backward()
    assert x.grad.tolist() == [0.5, 0, 0.5]


# ---- retain / create graph, grad() ------------------------------------------------------
def test_second_backward_raises_clear_error():
    x = leaf(2.0)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = leaf(2.0)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 8


def test_create_graph_gives_second_derivative():
    x = leaf(3.0)
    y = x**3
    (g,) = gg.autograd.grad(y, x, create_graph=True)
    assert g.item() == 27
    (h,) = gg.autograd.grad(g, x)
    assert h.item() == 18


def test_backward_create_graph_keeps_grad_differentiable():
    x = leaf(2.0)
    (x**4).backward(create_graph=True)
    assert x.grad.requires_grad
    (g2,) = gg.autograd.grad(x.grad, x)
    assert g2.item() == 48  # 12 x^2


def test_grad_does_not_touch_dot_grad_and_checks_unused():
    x, y = leaf(1.0), leaf(2.0)
    out = x * 3
    with pytest.raises(RuntimeError, match="not used"):
        gg.autograd.grad(out, [x, y], retain_graph=True)
    gx, gy = gg.autograd.grad(out, [x, y], allow_unused=True)
    assert gx.item() == 3 and gy is None and x.grad is None


def test_grad_wrt_intermediate_tensor():
    x = leaf(2.0)
    h = x * 3
    y = h * h
    (gh,) = gg.autograd.grad(y, h)
    assert gh.item() == 12


def test_non_scalar_backward_needs_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="implicitly created only for scalar"):
        (x * 2).backward()


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gg.tensor([1.0]).sum().backward()


# ---- hooks, retain_grad, detach, no_grad -------------------------------------------------
def test_hooks_on_leaf_and_intermediate():
    x = leaf(2.0)
    seen = []
    x.register_hook(lambda g: seen.append(("x", g.item())))
    h = x * 3
    h.register_hook(lambda g: g * 10)  # replaces the gradient flowing into h
    (h * 1).backward()
    assert x.grad.item() == 30
    assert seen == [("x", 30)]


def test_hook_handle_removes():
    x = leaf(1.0)
    handle = x.register_hook(lambda g: g * 100)
    handle.remove()
    (x * 2).backward()
    assert x.grad.item() == 2


def test_retain_grad_on_non_leaf():
    x = leaf(2.0)
    h = x * 3
    h.retain_grad()
    (h * h).backward()
    assert h.grad.item() == 12
    assert h.retains_grad


def test_detach_cuts_the_graph_and_shares_data():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    y = x * 2 + d
    y.sum().backward()
    assert x.grad.tolist() == [2, 2]


def test_no_grad_and_enable_grad():
    x = leaf(1.0)
    with gg.no_grad():
        y = x * 2
        with gg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    assert gg.is_grad_enabled()

    @gg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_no_grad_is_thread_local():
    results = {}

    def worker():
        results["other"] = gg.is_grad_enabled()

    with gg.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        results["here"] = gg.is_grad_enabled()
    assert results == {"other": True, "here": False}


# ---- in-place ops and versions ---------------------------------------------------------
def test_inplace_bumps_version():
    x = gg.tensor([1.0, 2.0])
    v = x._version
    x += 1
    x.mul_(2)
    assert x._version == v + 2
    assert x.tolist() == [4, 6]


def test_modified_saved_tensor_raises_naming_the_op():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = gg.sigmoid(h)  # saves its output
    s = y.sum()
    with gg.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*SigmoidBackward"):
        s.backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x += 1
    with gg.no_grad():
        x += 1
    assert x.tolist() == [2]


def test_inplace_on_non_leaf_is_recorded():
    x = leaf([1.0, 2.0])
    y = x * 2
    y *= 3  # torch allows this: the graph continues through MulBackward
    y.sum().backward()
    assert x.grad.tolist() == [6, 6]


def test_setitem_records_index_put():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf(10.0)
    y = x * 1
    y[1] = v * 2
    y.sum().backward()
    assert x.grad.tolist() == [1, 0, 1]
    assert v.grad.item() == 2


def test_view_shares_version_counter():
    x = gg.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = x.reshape(4)
    x += 1
    assert v._version == x._version


# ---- custom Function ------------------------------------------------------------------
class Cube(gg.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return grad_output * 3 * x * x * ctx.scale, None

    @staticmethod
    def jvp(ctx, tangent, _scale):
        (x,) = ctx.saved_tensors
        return tangent * 3 * x * x * ctx.scale


def test_custom_function_backward_double_backward_and_jvp():
    x = leaf([1.0, 2.0])
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeBackward"
    (g,) = gg.autograd.grad(y.sum(), x, create_graph=True)
    assert g.tolist() == [6, 24]
    (h,) = gg.autograd.grad(g.sum(), x)
    assert h.tolist() == [12, 24]  # 12 x scale... d/dx 6x^2 = 12x
    assert gg.autograd.gradcheck(lambda t: Cube.apply(t, 2.0), (leaf([0.5, -1.5]),), check_forward_ad=True)


def _saved_tensors_identity(lib) -> tuple:
    """(saved input is the input, saved output sits where the output does) in lib's backward."""
    seen = []

    class KeepBoth(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x * 2
            ctx.save_for_backward(x, y)
            return y

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.saved_tensors)
            return g * 2

    h = lib.tensor([1.0, 2.0], requires_grad=True) * 3  # a non-leaf input
    out = KeepBoth.apply(h)
    out.sum().backward()
    [(x, y)] = seen
    return x is h, y.grad_fn is out.grad_fn


def test_saved_input_unpacks_to_the_input_itself_as_torch():
    """torch's SavedVariable keeps a saved input itself; a saved output comes back at that
    output's place in the graph."""
    torch = pytest.importorskip("torch")
    assert _saved_tensors_identity(gg) == _saved_tensors_identity(torch) == (True, True)


def test_custom_function_without_jvp_says_so():
    class NoJvp(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    fa = gg.autograd.forward_ad
    with fa.dual_level():
        d = fa.make_dual(gg.tensor([1.0]), gg.tensor([1.0]))
        with pytest.raises(NotImplementedError, match="NoJvp defines no jvp"):
            NoJvp.apply(d)


def test_custom_function_wrong_gradient_shape_is_reported():
    class Bad(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return gg.ones(5)

    with pytest.raises(RuntimeError, match="invalid gradient at index 0"):
        Bad.apply(leaf([1.0, 2.0])).sum().backward()


# ---- errors name the op, shapes and dtypes -----------------------------------------------
def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        gg.ones(2, 3) + gg.ones(4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align: 3 != 4"):
        gg.ones(2, 3) @ gg.ones(4, 5)


def test_non_numeric_data_raises():
    with pytest.raises(TypeError, match="numeric"):
        gg.tensor("hello")
    with pytest.raises(TypeError):
        gg.tensor([["a", "b"]])


def test_int_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        gg.tensor([1, 2], requires_grad=True)


def test_cross_entropy_bad_target_is_reported():
    with pytest.raises(IndexError, match="target 7 is out of bounds for 3 classes"):
        gg.nn.functional.cross_entropy(gg.zeros(2, 3), gg.tensor([0, 7]))


def test_failed_op_leaves_state_untouched():
    x = gg.tensor([1.0, 2.0])
    v = x._version
    with pytest.raises(ValueError, match="add: shapes"):
        x += gg.ones(3)
    assert x._version == v and x.tolist() == [1, 2]


# ---- dtypes and creation ---------------------------------------------------------------
def test_dtype_inference_like_torch():
    assert gg.tensor(1.5).dtype == gg.float32
    assert gg.tensor([1, 2]).dtype == gg.int64
    assert gg.tensor([True]).dtype == gg.bool
    assert gg.tensor(np.ones(2)).dtype == gg.float64
    assert gg.tensor(np.ones(2, dtype=np.float32)).dtype == gg.float32
    assert gg.tensor([1, 2.5]).dtype == gg.float32


@pytest.mark.parametrize("data", [
    [np.float64(1.0), np.float64(2.0)], [1.0, np.float64(2.0)], [[np.float64(1.0)], [2.0]],
    (np.float64(1.0),), [np.int32(1), 2], [np.int32(1), True], [np.float16(1.0), 1.0],
    [np.float16(1.0), 2], [np.float32(1.0), np.float64(1.0)], [np.int8(1), np.uint8(2)],
    [np.int64(1), 2.5], [np.int32(3)], [np.float32(1.0)], [[1, 2], [3, 4]],
])
def test_sequences_of_numpy_scalars_infer_their_dtype_as_torch(data):
    """A NumPy scalar in a list keeps its dtype, joined with the others by torch's promotion
    (a Python float is the default float, a Python int int64)."""
    torch = pytest.importorskip("torch")
    assert str(gg.tensor(data).dtype).split(".")[-1] == str(torch.tensor(data).dtype).split(".")[-1]


def test_promotion_like_torch():
    f32, f64, i64 = gg.ones(2), gg.ones(2, dtype=gg.float64), gg.tensor([1, 2])
    assert (f32 + f64).dtype == gg.float64
    assert (i64 + f32).dtype == gg.float32  # NumPy would say float64
    assert (i64 * 2.5).dtype == gg.float32
    assert (i64 + 1).dtype == gg.int64
    assert (f32 + gg.tensor(1.0, dtype=gg.float64)).dtype == gg.float32  # zero-dim: same category
    assert (i64 + gg.tensor(1.0, dtype=gg.float64)).dtype == gg.float64
    assert (i64 / 2).dtype == gg.float32


def test_creation_functions():
    gg.manual_seed(0)
    a = gg.randn(2, 3)
    gg.manual_seed(0)
    b = gg.randn((2, 3))
    assert a.tolist() == b.tolist() and a.dtype == gg.float32
    assert gg.zeros(2, 2).tolist() == [[0, 0], [0, 0]]
    assert gg.ones(3, dtype=gg.float64).dtype == gg.float64
    assert gg.full((2,), 7).dtype == gg.int64
    assert gg.arange(5).tolist() == [0, 1, 2, 3, 4] and gg.arange(5).dtype == gg.int64
    assert gg.arange(0, 1, 0.5).dtype == gg.float32
    assert 0 <= gg.rand(100).numpy().min() and gg.rand(100).numpy().max() < 1
    assert gg.zeros_like(a).shape == (2, 3)
    assert gg.eye(2).tolist() == [[1, 0], [0, 1]]


def test_numpy_and_dlpack_interop():
    arr = np.arange(4.0)
    t = gg.from_numpy(arr)
    arr[0] = 10
    assert t.tolist()[0] == 10  # shares memory
    back = gg.from_dlpack(t)
    assert back.tolist() == t.tolist()
    with pytest.raises(RuntimeError, match="requires grad"):
        leaf([1.0]).numpy()


def test_item_tolist_repr_len_iter():
    t = gg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert len(t) == 2
    assert [row.tolist() for row in t] == [[1, 2], [3, 4]]
    assert "requires_grad=True" in repr(t)
    assert "grad_fn=<MulBackward>" in repr(t * 2)
    assert gg.tensor(3.0).item() == 3.0
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(gg.ones(2))


def test_to_dtype_is_differentiable():
    x = leaf([1.0, 2.0])
    y = x.to(gg.float32) * 2
    assert y.dtype == gg.float32
    y.sum().backward()
    assert x.grad.dtype == gg.float64 and x.grad.tolist() == [2, 2]


def test_backend_info_reports_cpu():
    info = gg.backend_info()
    assert info["cpu"].startswith("numpy")
    assert "cuda_available" in info


@pytest.mark.parametrize("fn", [gg.tanh, gg.exp, gg.sqrt, gg.sigmoid, gg.log])
def test_zero_dim_outputs_saved_for_backward(fn):
    """NumPy returns scalars for 0-d results: what forward saved must still be the output."""
    x = leaf(0.7)
    y = fn(x)
    assert y.ndim == 0
    (g,) = gg.autograd.grad(y, x, create_graph=True)
    assert gg.autograd.gradcheck(fn, (leaf(0.7),))
    assert gg.autograd.gradgradcheck(fn, (leaf(0.7),))


def test_sum_of_bool_and_int_tensors_is_int64():
    correct = gg.tensor([1, 2, 3]) == gg.tensor([1, 0, 3])
    assert correct.sum().item() == 2 and correct.sum().dtype == gg.int64
    assert gg.tensor([1, 2], dtype=gg.int32).sum().dtype == gg.int64
    assert gg.tensor([1.5, 2.0]).sum(dtype=gg.float64).dtype == gg.float64


def test_leaf_grads_never_share_memory():
    """.grad is adopted from the engine without a copy only when nothing else holds it."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    seed = gg.tensor([1.0, 1.0], dtype=gg.float64)
    (a + b).backward(seed)  # Add hands the same gradient to both inputs
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    assert not np.shares_memory(a.grad.numpy(), seed.numpy())
    a.grad.mul_(10)
    assert b.grad.tolist() == [1, 1] and seed.tolist() == [1, 1]
    c = leaf([[1.0, 2.0]])
    d = leaf([1.0, 2.0])
    (c.reshape(2) + d).sum().backward()  # c's gradient is a view of d's
    assert not np.shares_memory(c.grad.numpy(), d.grad.numpy())


def test_second_backward_accumulates_in_place_without_touching_retained_grads():
    x = leaf([1.0, 2.0])
    h = x * 1
    h.retain_grad()
    (h + 0).sum().backward(retain_graph=True)
    (h + 0).sum().backward()
    assert x.grad.tolist() == [2, 2]
    assert h.grad.tolist() == [2, 2]


def test_matmul_promotes_mixed_dtypes():
    a = gg.ones(2, 3)
    b = gg.ones(3, 4, dtype=gg.float64)
    out = a @ b
    assert out.dtype == gg.float64 and out.shape == (2, 4)
