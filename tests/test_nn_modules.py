"""The nn layers, containers, losses, hooks and nn.utils a PyTorch MLP script uses, each against
torch.nn in float64 (same weights, same inputs): values, gradients, buffers and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpugrad as gg

torch = pytest.importorskip("torch")
TOL = {"rtol": 1e-12, "atol": 1e-12}


def close(ours, theirs, **tol):
    np.testing.assert_allclose(
        np.asarray(ours.detach().numpy() if isinstance(ours, gg.Tensor) else ours),
        theirs.detach().numpy(),
        **(tol or TOL),
    )


def copy_weights(ours: gg.nn.Module, theirs):
    for (name, p), (tname, tp) in zip(
        ours.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert name == tname
        p.data = gg.tensor(tp.detach().numpy().copy())


def twins(rng, *shape):
    a = rng.standard_normal(shape)
    return gg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def run_both(ours, theirs, x, tx):
    """Forward, then backward of a random projection; compare output, input and weight grads."""
    out, tout = ours(x), theirs(tx)
    close(out, tout)
    seed = np.random.default_rng(9).standard_normal(tuple(tout.shape))
    out.backward(gg.tensor(seed))
    tout.backward(torch.tensor(seed))
    close(x.grad, tx.grad)
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        close(p.grad, tp.grad), name


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.LayerNorm(4),
        lambda nn: nn.LayerNorm([2, 4], eps=1e-3, elementwise_affine=False),
        lambda nn: nn.LayerNorm(4, bias=False),
        lambda nn: nn.SiLU(),
        lambda nn: nn.ELU(alpha=0.5),
        lambda nn: nn.Softplus(beta=2.0, threshold=3.0),
        lambda nn: nn.Mish(),
        lambda nn: nn.Hardtanh(-0.5, 0.5),
        lambda nn: nn.ReLU6(),
        lambda nn: nn.LogSigmoid(),
        lambda nn: nn.PReLU(),
        lambda nn: nn.PReLU(2, init=0.1),
        lambda nn: nn.Unflatten(2, (2, 2)),
        lambda nn: nn.SELU(),
        lambda nn: nn.CELU(alpha=0.5),
        lambda nn: nn.Hardswish(),
        lambda nn: nn.Softsign(),
        lambda nn: nn.Tanhshrink(),
        lambda nn: nn.Threshold(0.1, 20.0),
        lambda nn: nn.Hardshrink(0.3),
        lambda nn: nn.Softshrink(),
        lambda nn: nn.Softmin(dim=1),
        lambda nn: nn.GLU(),
    ],
    ids=[
        "layernorm",
        "layernorm_2d",
        "layernorm_nobias",
        "silu",
        "elu",
        "softplus",
        "mish",
        "hardtanh",
        "relu6",
        "logsigmoid",
        "prelu",
        "prelu_channels",
        "unflatten",
        "selu",
        "celu",
        "hardswish",
        "softsign",
        "tanhshrink",
        "threshold",
        "hardshrink",
        "softshrink",
        "softmin",
        "glu",
    ],
)
def test_layers_match_torch(make):
    ours, theirs = make(gg.nn).double(), make(torch.nn).double()
    copy_weights(ours, theirs)
    rng = np.random.default_rng(0)
    x, tx = twins(rng, 3, 2, 4)
    if any(p.numel() > 0 for p in ours.parameters()):  # make the affine part non-trivial
        for p, tp in zip(ours.parameters(), theirs.parameters(), strict=True):
            values = rng.standard_normal(tuple(tp.shape))
            p.data, tp.data = gg.tensor(values), torch.tensor(values)
    run_both(ours, theirs, x, tx)
    assert repr(ours).replace("gpugrad.", "torch.") == repr(theirs)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2)])
def test_batchnorm1d_training_running_stats_and_eval(momentum, shape):
    ours = gg.nn.BatchNorm1d(3, momentum=momentum).double()
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum).double()
    rng = np.random.default_rng(1)
    for p, tp in zip(ours.parameters(), theirs.parameters(), strict=True):
        values = rng.standard_normal(3)
        p.data, tp.data = gg.tensor(values), torch.tensor(values)
    for _ in range(3):
        x, tx = twins(rng, *shape)
        run_both(ours, theirs, x, tx)
        for p in ours.parameters():
            p.grad = None
        theirs.zero_grad()
    for name, buffer in ours.named_buffers():
        close(buffer, dict(theirs.named_buffers())[name])
    assert ours.num_batches_tracked.item() == 3 and ours.num_batches_tracked.dtype == gg.int64
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.eval(), theirs.eval()
    x, tx = twins(rng, *shape)
    run_both(ours, theirs, x, tx)
    before = ours.running_mean.numpy().copy()
    ours(x)
    np.testing.assert_array_equal(ours.running_mean.numpy(), before)  # eval leaves the stats alone
    loaded = gg.nn.BatchNorm1d(3).double()
    loaded.load_state_dict(theirs.state_dict())
    assert loaded.num_batches_tracked.item() == 3
    close(loaded.running_var, theirs.running_var)


def test_batchnorm_without_running_stats_and_errors():
    ours = gg.nn.BatchNorm1d(2, affine=False, track_running_stats=False).double()
    theirs = torch.nn.BatchNorm1d(2, affine=False, track_running_stats=False).double()
    x, tx = twins(np.random.default_rng(2), 4, 2)
    ours.eval(), theirs.eval()  # no running stats: batch statistics even in eval mode
    close(ours(x), theirs(tx))
    assert list(ours.state_dict()) == [] and ours.running_mean is None
    bn = gg.nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="expected 2D or 3D input \\(got 4D input\\)"):
        bn(gg.zeros(2, 3, 1, 1))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn(gg.zeros(1, 3))
    with pytest.raises(ValueError, match="expected 3 channels"):
        bn(gg.zeros(4, 2))


def test_embedding_padding_gradient_and_from_pretrained():
    gg.manual_seed(0)
    ours = gg.nn.Embedding(5, 3, padding_idx=-2).double()
    assert ours.padding_idx == 3 and not ours.weight[3].abs().sum().item()
    theirs = torch.nn.Embedding(5, 3, padding_idx=3).double()
    copy_weights(ours, theirs)
    index = np.array([[3, 1, 3], [0, 1, 4]])
    out, tout = ours(gg.tensor(index)), theirs(torch.tensor(index))
    close(out, tout)
    seed = np.random.default_rng(3).standard_normal((2, 3, 3))
    out.backward(gg.tensor(seed))
    tout.backward(torch.tensor(seed))
    close(ours.weight.grad, theirs.weight.grad)
    assert not ours.weight.grad[3].abs().sum().item()
    frozen = gg.nn.Embedding.from_pretrained(gg.eye(3, dtype=gg.float64))
    assert not frozen.weight.requires_grad and frozen(gg.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(IndexError, match="index out of range"):
        ours(gg.tensor([5]))
    with pytest.raises(TypeError, match="integer tensor"):
        ours(gg.tensor([1.0]))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        gg.nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(NotImplementedError, match="max_norm"):
        gg.nn.Embedding(3, 2, max_norm=1.0)


@pytest.mark.parametrize(
    "make, target",
    [
        (lambda nn: nn.BCELoss(), "prob"),
        (lambda nn: nn.BCELoss(reduction="sum"), "prob"),
        (lambda nn: nn.L1Loss(), "any"),
        (lambda nn: nn.SmoothL1Loss(beta=0.5), "any"),
        (lambda nn: nn.SmoothL1Loss(beta=0.0), "any"),
        (lambda nn: nn.HuberLoss(reduction="none", delta=0.3), "any"),
        (lambda nn: nn.KLDivLoss(reduction="batchmean"), "prob"),
        (lambda nn: nn.KLDivLoss(reduction="sum", log_target=True), "logprob"),
    ],
    ids=[
        "bce",
        "bce_sum",
        "l1",
        "smooth_l1",
        "smooth_l1_beta0",
        "huber",
        "kldiv",
        "kldiv_log_target",
    ],
)
def test_losses_match_torch(make, target):
    rng = np.random.default_rng(4)
    if target == "any":
        a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    else:
        a = rng.uniform(0.05, 0.95, (3, 4))
        b = rng.uniform(0, 1, (3, 4))
        if make(torch.nn).__class__.__name__ == "KLDivLoss":
            a = np.log(a / a.sum(1, keepdims=True))
            b = b / b.sum(1, keepdims=True)
            b = np.log(b) if target == "logprob" else b
    x, tx = gg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss, tloss = make(gg.nn)(x, gg.tensor(b)), make(torch.nn)(tx, torch.tensor(b))
    close(loss, tloss)
    loss.sum().backward(), tloss.sum().backward()
    close(x.grad, tx.grad)


def test_kl_div_mean_warns_like_torch_and_bad_reduction():
    x, t = gg.zeros(2, 2), gg.full((2, 2), 0.25)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        gg.nn.functional.kl_div(x, t)
    with pytest.raises(ValueError, match="reduction must be"):
        gg.nn.KLDivLoss(reduction="average")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gg.nn.functional.kl_div(x, t, reduction="batchmean")


def _net(lib):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 3), nn.Linear(3, 2)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Identity()})
            self.scales = nn.ParameterList([nn.Parameter(lib.ones(2))])
            self.extra = nn.ParameterDict({"shift": nn.Parameter(lib.zeros(1))})

    return Net()


def test_containers_register_like_torch():
    ours, theirs = _net(gg), _net(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    layers = gg.nn.ModuleList([gg.nn.ReLU(), gg.nn.Tanh()])
    layers.append(gg.nn.Sigmoid()).insert(0, gg.nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "ReLU", "Tanh", "Sigmoid"]
    assert isinstance(layers[1:3], gg.nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2"] and isinstance(layers[-1], gg.nn.Sigmoid)
    assert isinstance(layers.pop(0), gg.nn.ReLU) and len(layers) == 2
    layers += [gg.nn.ReLU()]
    assert len(layers) == 3
    with pytest.raises(IndexError, match="out of range"):
        layers[3]
    with pytest.raises(TypeError, match="iterable"):
        layers.extend(gg.nn.ReLU())
    heads = gg.nn.ModuleDict([("x", gg.nn.ReLU())])
    heads["y"] = gg.nn.Tanh()
    assert list(heads) == ["x", "y"] and "x" in heads and isinstance(heads.pop("x"), gg.nn.ReLU)
    params = gg.nn.ParameterList([gg.zeros(2)])
    params.append(gg.ones(1))
    assert all(isinstance(p, gg.nn.Parameter) for p in params) and len(params) == 2
    assert [n for n, _ in params.named_parameters()] == ["0", "1"]
    pdict = gg.nn.ParameterDict({"w": gg.ones(2)})
    pdict["b"] = gg.zeros(1)
    assert list(pdict.keys()) == ["w", "b"] and isinstance(pdict["b"], gg.nn.Parameter)
    assert [n for n, _ in pdict.named_parameters()] == ["w", "b"]
    del pdict["w"]
    assert list(pdict) == ["b"] and pdict.get("w") is None


def test_module_hooks_traversal_and_conversions():
    net = gg.nn.Sequential(gg.nn.Linear(2, 3), gg.nn.ReLU(), gg.nn.Sequential(gg.nn.Linear(3, 1)))
    assert [n for n, _ in net.named_modules()] == ["", "0", "1", "2", "2.0"]
    assert [type(m).__name__ for m in net.children()] == ["Linear", "ReLU", "Sequential"]
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    calls = []
    h1 = net[0].register_forward_hook(lambda m, args, out: calls.append("after") or out * 0)
    h2 = net[0].register_forward_pre_hook(lambda m, args: calls.append("before"))
    h3 = net[0].register_forward_pre_hook(lambda m, args: calls.append("first"), prepend=True)
    h4 = net[0].register_forward_hook(
        lambda m, args, kwargs, out: calls.append(sorted(kwargs)), with_kwargs=True
    )
    assert net(gg.ones(4, 2)).shape == (4, 1)
    assert calls == ["first", "before", "after", []]
    assert not net[0](gg.ones(1, 2)).abs().sum().item()  # the forward hook replaced the output
    for h in (h1, h2, h3, h4):
        h.remove()
    assert net[0](gg.ones(1, 2)).abs().sum().item()

    class Scaled(gg.nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale

    scaled = Scaled()
    scaled.register_forward_pre_hook(
        lambda m, args, kwargs: (args, {"scale": 3.0}), with_kwargs=True
    )
    assert scaled(gg.ones(1)).item() == 3.0
    net.to(gg.float64)
    assert all(p.dtype == gg.float64 for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    bn = gg.nn.BatchNorm1d(2).to(dtype=gg.float64)
    assert bn.running_mean.dtype == gg.float64 and bn.num_batches_tracked.dtype == gg.int64


@pytest.mark.parametrize("norm_type", [2.0, 1, float("inf"), 3.0])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((3, 2)) * 4, rng.standard_normal(5), rng.standard_normal((2, 2))]
    ours = [gg.zeros(*g.shape, dtype=gg.float64, requires_grad=True) for g in grads]
    theirs = [torch.zeros(*g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, tp, g in zip(ours, theirs, grads, strict=True):
        p.grad, tp.grad = gg.tensor(g), torch.tensor(g)
    ours.append(gg.zeros(2, requires_grad=True))  # no grad: skipped
    total = gg.nn.utils.clip_grad_norm_(ours, 1.5, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type)
    close(total, ttotal)
    for p, tp in zip(ours, theirs):  # noqa: B905  (ours holds one more, without a grad)
        close(p.grad, tp.grad)
    same_total = gg.nn.utils.clip_grad_norm_(
        (p for p in ours), 100.0, norm_type
    )  # below max: scale 1
    np.testing.assert_allclose(same_total.item(), min(1.5, ttotal.item()), rtol=1e-6)


def test_clip_grad_value_errors_and_vectors():
    p = gg.zeros(4, dtype=gg.float64, requires_grad=True)
    p.grad = gg.tensor([-3.0, 0.5, 2.0, np.nan], dtype=gg.float64)
    tp = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    tp.grad = torch.tensor([-3.0, 0.5, 2.0, np.nan], dtype=torch.float64)
    gg.nn.utils.clip_grad_value_(p, 1.0), torch.nn.utils.clip_grad_value_(tp, 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        gg.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert gg.nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        gg.nn.utils.clip_grad_norm_((q for q in []), 1.0)
    model = gg.nn.Sequential(gg.nn.Linear(3, 2), gg.nn.Linear(2, 1))
    vec = gg.nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (11,) and vec.requires_grad
    gg.nn.utils.vector_to_parameters(gg.arange(11, dtype=gg.float32), model.parameters())
    assert model[0].weight.tolist() == [[0, 1, 2], [3, 4, 5]] and model[1].bias.tolist() == [10]
    np.testing.assert_array_equal(
        gg.nn.utils.parameters_to_vector(model.parameters()).detach().numpy(), np.arange(11)
    )
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        gg.nn.utils.vector_to_parameters([1.0], model.parameters())


def test_functional_extras_and_errors():
    x = np.array([[0, 2], [1, 1]])
    np.testing.assert_array_equal(
        gg.nn.functional.one_hot(gg.tensor(x)).numpy(),
        torch.nn.functional.one_hot(torch.tensor(x)).numpy(),
    )
    assert gg.nn.functional.one_hot(gg.tensor([1]), 4).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        gg.nn.functional.one_hot(gg.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        gg.nn.functional.one_hot(gg.tensor([-1]))
    with pytest.raises(
        RuntimeError, match=r"expected input with shape \[\*, 4\], but got input of size\[2, 3\]"
    ):
        gg.nn.functional.layer_norm(gg.zeros(2, 3), (4,))
    with pytest.raises(RuntimeError, match="don't multiply up to the size of dim 1"):
        gg.nn.Unflatten(1, (2, 2))(gg.zeros(2, 5))
    with pytest.raises(ValueError, match="min_val"):
        gg.nn.Hardtanh(1.0, -1.0)
    with pytest.raises(RuntimeError, match="mismatch of parameter numbers and input channel size"):
        gg.nn.PReLU(3)(gg.zeros(2, 2))
    v = np.random.default_rng(6).standard_normal((3, 4))
    np.testing.assert_allclose(
        gg.nn.functional.normalize(gg.tensor(v), dim=0).numpy(),
        torch.nn.functional.normalize(torch.tensor(v), dim=0).numpy(),
        **TOL,
    )
    np.testing.assert_allclose(
        gg.linalg.vector_norm(gg.tensor(v), 3, dim=1).numpy(),
        torch.linalg.vector_norm(torch.tensor(v), 3, dim=1).numpy(),
        **TOL,
    )
    np.testing.assert_allclose(
        gg.linalg.norm(gg.tensor(v)).item(), torch.linalg.norm(torch.tensor(v)).item(), rtol=1e-14
    )


# ---- torch's remaining elementwise activations ------------------------------------------------
INPLACE = [
    ("selu", (), lambda m, x: m.nn.functional.selu_(x), lambda nn: nn.SELU(inplace=True)),
    ("celu", (0.5,), lambda m, x: m.nn.functional.celu_(x, 0.5), lambda nn: nn.CELU(0.5, True)),
    ("hardswish", (), None, lambda nn: nn.Hardswish(inplace=True)),
    ("hardsigmoid", (), None, lambda nn: nn.Hardsigmoid(inplace=True)),
    ("threshold", (0.1, 2.0), lambda m, x: m.nn.functional.threshold_(x, 0.1, 2.0),
     lambda nn: nn.Threshold(0.1, 2.0, inplace=True)),
]


@pytest.mark.parametrize("name, args, underscore, module", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_activations_overwrite_their_input_as_torch(name, args, underscore, module):
    values = np.random.default_rng(3).standard_normal((2, 5)) * 3
    ways = [lambda m, x: getattr(m.nn.functional, name)(x, *args, inplace=True),
            lambda m, x: module(m.nn)(x)] + ([underscore] if underscore else [])
    for way in ways:
        ours, theirs = gg.tensor(values), torch.tensor(values)
        assert way(gg, ours) is ours and way(torch, theirs) is theirs
        close(ours, theirs, rtol=1e-15, atol=0)
        # through a non-leaf: the gradient of the op applied in place
        x, tx = gg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        y, ty = x * 1.0, tx * 1.0
        way(gg, y), way(torch, ty)
        seed = np.arange(10.0).reshape(2, 5)
        y.backward(gg.tensor(seed)), ty.backward(torch.tensor(seed))
        close(x.grad, tx.grad, rtol=1e-7, atol=0)  # hardsigmoid: torch's float32 1/6
    leaf = gg.tensor(values, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        getattr(gg.nn.functional, name)(leaf, *args, inplace=True)
    np.testing.assert_array_equal(leaf.detach().numpy(), values)  # untouched


def test_hardsigmoid_matches_torch_and_its_gradient_is_exactly_one_sixth():
    """The one gap to torch: its float64 gradient is g * float32(1 / 6); gpugrad's is g / 6."""
    ours, theirs = gg.nn.Hardsigmoid().double(), torch.nn.Hardsigmoid().double()
    x, tx = twins(np.random.default_rng(4), 3, 4)
    out, tout = ours(x), theirs(tx)
    close(out, tout)
    out.sum().backward(), tout.sum().backward()
    close(x.grad, tx.grad, rtol=1e-7, atol=0)
    inside = np.abs(x.detach().numpy()) < 3
    assert inside.any()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(inside, 1 / 6, 0.0))
    assert repr(ours) == "Hardsigmoid()" and repr(gg.nn.Hardsigmoid(True)) == "Hardsigmoid()"


def test_celu_gradient_is_exact_for_any_alpha():
    """torch differentiates celu with 1 / float32(alpha), 1e-8 off for alpha = 0.7 in float64;
    gpugrad differentiates its own forward: e**(x / alpha) where x <= 0."""
    values = np.array([-2.0, -0.4, 0.0, 1.5])
    x = gg.tensor(values, requires_grad=True)
    gg.nn.functional.celu(x, alpha=0.7).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(values <= 0, np.exp(values / 0.7), 1.0),
                               rtol=1e-15, atol=0)


def test_softmin_guesses_dim_as_torch_and_casts_to_dtype():
    values = np.random.default_rng(5).standard_normal((2, 3))
    x = gg.tensor(values, dtype=gg.float32)
    for call in (lambda m, v: m.nn.functional.softmin(v), lambda m, v: m.nn.Softmin()(v)):
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmin") as caught:
            ours = call(gg, x)
        assert caught[0].filename == __file__  # the warning points at the caller
        with pytest.warns(UserWarning):
            theirs = call(torch, torch.tensor(values, dtype=torch.float32))
        close(ours, theirs, rtol=1e-6, atol=1e-7)  # dim 1 for a 2-d input
    wide = gg.nn.functional.softmin(x, 0, dtype=gg.float64)
    assert wide.dtype == gg.float64
    close(wide, torch.nn.functional.softmin(torch.tensor(values, dtype=torch.float32), 0,
                                            dtype=torch.float64))
    close(gg.nn.functional.softmin(gg.tensor([1, 2]), 0, dtype=gg.float64),
          torch.nn.functional.softmin(torch.tensor([1, 2]), 0, dtype=torch.float64))


def test_new_activations_on_integers_and_bad_arguments_raise_as_torch():
    F, TF = gg.nn.functional, torch.nn.functional
    ints = [-3, 0, 1, 2]
    for name in ("softsign", "tanhshrink"):  # integers promote to float32
        ours, theirs = getattr(F, name)(gg.tensor(ints)), getattr(TF, name)(torch.tensor(ints))
        assert ours.dtype == gg.float32
        close(ours, theirs, rtol=1e-6, atol=0)
    ours = F.threshold(gg.tensor(ints), 0.5, 7.9)  # stays int64, the value truncated
    assert ours.dtype == gg.int64 and ours.tolist() == TF.threshold(torch.tensor(ints), 0.5, 7.9).tolist()
    for name in ("selu", "celu", "hardswish", "hardsigmoid", "hardshrink", "softshrink", "glu"):
        with pytest.raises(TypeError, match=f"{name}: expected a floating point tensor"):
            getattr(F, name)(gg.tensor([2, 4]))
    with pytest.raises(TypeError, match="threshold: bool"):
        F.threshold(gg.tensor([True]), 0, 1)
    with pytest.raises(TypeError, match="threshold: threshold must be a number"):
        F.threshold(gg.zeros(2), "1", 2)
    with pytest.raises(TypeError, match="hardshrink: lambd must be a number"):
        F.hardshrink(gg.zeros(2), "1")
    with pytest.raises(RuntimeError, match=r"lambd must be in range \[0, 3.40282e\+38\].*-0.5"):
        F.softshrink(gg.zeros(2), -0.5)
    with pytest.raises(RuntimeError, match="alpha cannot be 0"):
        F.celu(gg.zeros(2), 0.0)
    with pytest.raises(RuntimeError, match="halving dimension must be even, but dimension 1 is size 5"):
        F.glu(gg.zeros(3, 5))
    with pytest.raises(RuntimeError, match="glu does not support scalars"):
        gg.nn.GLU()(gg.tensor(1.0))
    with pytest.raises(IndexError):
        F.glu(gg.zeros(4, 2), 2)
    with pytest.raises(TypeError, match="softmin: expected a Tensor"):
        F.softmin([1.0, 2.0], 0)
    np.testing.assert_array_equal(F.hardshrink(gg.tensor([-0.2, 0.3], dtype=gg.float64), -0.5).numpy(),
                                  [-0.2, 0.3])  # a negative lambd: no band, as torch
