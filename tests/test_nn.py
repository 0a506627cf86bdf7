"""gg.nn: module registry, state_dict strictness, devices, layers, init, MLP vs torch."""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn
from gpugrad.nn import functional as F


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(gg.ones(4))
        self.register_buffer("count", gg.zeros(1))
        self.register_buffer("scratch", gg.zeros(2), persistent=False)
        self.plain = 5

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.block(x))


# ---- registration -------------------------------------------------------------------------
def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(gg.randn(2, 3))
    assert isinstance(p, nn.Parameter) and isinstance(p, gg.Tensor)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = nn.Parameter(gg.zeros(2), requires_grad=False)
    assert not q.requires_grad
    assert not isinstance(p * 2, nn.Parameter)  # ops give plain tensors
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(gg.tensor([1, 2]))


def test_parameter_shares_memory_with_its_tensor():
    t = gg.zeros(3)
    p = nn.Parameter(t)
    with gg.no_grad():
        p.fill_(2.0)
    assert t.tolist() == [2.0, 2.0, 2.0]


def test_registration_and_traversal():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    # as in torch: a module's own parameters, then its children's
    assert names == [
        "block.scale",
        "block.fc.weight",
        "block.fc.bias",
        "head.1.weight",
        "head.1.bias",
    ]
    assert len(list(net.parameters())) == 5
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in net.named_buffers()] == ["block.count", "block.scratch"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [n for n, _ in net.named_modules()] == [
        "",
        "block",
        "block.fc",
        "head",
        "head.0",
        "head.1",
    ]
    assert list(net.children())[1] is net.head
    assert net.get_submodule("head.1") is net.head[1]
    assert net.block.plain == 5 and "plain" not in net.block._parameters


def test_setattr_reassignment_and_deletion():
    m = nn.Linear(2, 2)
    m.bias = None
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="parameter 'bias'"):
        m.bias = gg.zeros(2)  # a plain tensor is not a Parameter
    m.weight = nn.Parameter(gg.zeros(2, 2))
    assert list(m.state_dict()) == ["weight"]
    del m.weight
    assert list(m.state_dict()) == []
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        m.weight  # noqa: B018


def test_shared_parameter_counted_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_module_before_init_gives_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gg.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_train_eval_and_dropout():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert net.training and net[1].training
    net.eval()
    assert not net.training and not net[1].training
    x = gg.ones(100, 4)
    assert np.array_equal(net[1](x).numpy(), x.numpy())
    net.train()
    gg.manual_seed(0)
    dropped = net[1](x).numpy()
    assert set(np.unique(dropped)) <= {0.0, 2.0} and 0.3 < (dropped == 0).mean() < 0.7
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")


def test_zero_grad_set_to_none_and_in_place():
    m = nn.Linear(3, 2)
    m(gg.randn(4, 3)).sum().backward()
    grad = m.weight.grad
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is grad and not grad.numpy().any()
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None


def test_call_runs_forward_and_hooks():
    m = nn.Linear(2, 2)
    seen = []
    handle = m.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    m(gg.zeros(3, 2))
    handle.remove()
    m(gg.zeros(3, 2))
    assert seen == [(3, 2)]


def test_repr_like_torch():
    net = nn.Sequential(
        nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Tanh(), nn.Linear(3, 1, bias=False))
    )
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Tanh()\n"
        "    (1): Linear(in_features=3, out_features=1, bias=False)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


# ---- state_dict ------------------------------------------------------------------------------
def test_state_dict_keys_values_and_sharing():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert set(sd) == {
        "block.fc.weight",
        "block.fc.bias",
        "block.scale",
        "block.count",
        "head.1.weight",
        "head.1.bias",
    }  # non-persistent buffer left out
    assert not isinstance(sd["block.scale"], nn.Parameter) and not sd["block.scale"].requires_grad
    assert sd["block.fc.weight"].array is net.block.fc.weight.array  # detached, same memory
    assert net.state_dict(keep_vars=True)["block.scale"] is net.block.scale


def test_load_state_dict_round_trip_keeps_objects():
    src, dst = Net(), Net()
    weight = dst.block.fc.weight
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.block.fc.weight is weight
    for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert dst.block.fc.weight.array is not src.block.fc.weight.array  # copied, not aliased


def _snapshot(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def _unchanged(module, before):
    return all(np.array_equal(before[k], v.numpy()) for k, v in module.state_dict().items())


def test_load_state_dict_missing_key_named_and_nothing_modified():
    net = Net()
    before = _snapshot(net)
    sd = {k: v + 1 for k, v in Net().state_dict().items()}
    del sd["head.1.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "head.1.bias"'):
        net.load_state_dict(sd)
    assert _unchanged(net, before)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.1.bias"] and result.unexpected_keys == []
    assert not _unchanged(net, before)


def test_load_state_dict_unexpected_key_named():
    net = Net()
    before = _snapshot(net)
    sd = dict(Net().state_dict())
    sd["head.2.weight"] = gg.zeros(1)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "head.2.weight"'):
        net.load_state_dict(sd)
    assert _unchanged(net, before)
    assert net.load_state_dict(sd, strict=False).unexpected_keys == ["head.2.weight"]


def test_load_state_dict_shape_mismatch_names_key_and_shapes_even_when_not_strict():
    net = Net()
    before = _snapshot(net)
    sd = dict(Net().state_dict())
    sd["head.1.weight"] = gg.zeros(3, 4)
    for strict in (True, False):
        with pytest.raises(RuntimeError) as info:
            net.load_state_dict(sd, strict=strict)
        message = str(info.value)
        assert "size mismatch for head.1.weight" in message
        assert "(3, 4)" in message and "(2, 4)" in message
        assert _unchanged(net, before)


def test_load_state_dict_accepts_numpy_and_casts_dtype():
    m = nn.Linear(2, 2)
    m.load_state_dict({"weight": np.eye(2), "bias": np.array([1.0, 2.0])})
    assert m.weight.dtype == gg.float32 and m.weight.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(RuntimeError, match='"weight"'):
        m.load_state_dict({"weight": "nope", "bias": np.zeros(2)})


def test_to_moves_in_place_and_casts_floats():
    m = nn.Linear(3, 2)
    m.register_buffer("steps", gg.tensor([1, 2]))
    weight = m.weight
    assert m.to("cpu") is m and m.weight is weight
    m.double()
    assert m.weight is weight and m.weight.dtype == gg.float64 and m.steps.dtype == gg.int64
    assert m(gg.randn(1, 3, dtype=gg.float64)).dtype == gg.float64
    m.to(dtype=gg.float32)
    assert m.weight.dtype == gg.float32
    with pytest.raises(TypeError, match="floating point"):
        m.to(gg.int64)


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(Exception, match="(?i)cupy|cuda|gpu"):
        nn.Linear(2, 2).cuda()


def test_deepcopy():
    m = nn.MLP([3, 4, 2])
    c = copy.deepcopy(m)
    assert c[0].weight is not m[0].weight and isinstance(c[0].weight, nn.Parameter)
    np.testing.assert_array_equal(c[0].weight.detach().numpy(), m[0].weight.detach().numpy())


# ---- containers and layers --------------------------------------------------------------------
def test_sequential_indexing_len_iteration_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3 and [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert seq(gg.randn(5, 2)).shape == (5, 1)
    with pytest.raises(IndexError):
        seq[3]
    del seq[1]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    named = nn.Sequential(OrderedDict(inp=nn.Linear(2, 2), act=nn.Tanh()))
    assert list(named.state_dict()) == ["inp.weight", "inp.bias"]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(lambda x: x)


def test_linear_default_init_bounds_and_forward():
    gg.manual_seed(0)
    m = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert w.shape == (300, 400) and b.shape == (300,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # uniform over the whole range, not a narrower one
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # std of U(-a, a) = a / sqrt(3)
    x = gg.randn(7, 400)
    np.testing.assert_allclose(m(x).detach().numpy(), x.numpy() @ w.T + b, rtol=1e-5, atol=1e-5)
    gg.manual_seed(0)
    again = nn.Linear(400, 300)
    np.testing.assert_array_equal(again.weight.detach().numpy(), w)  # seeded
    assert nn.Linear(4, 5, bias=False).bias is None
    assert nn.Linear(2, 2, dtype=gg.float64).weight.dtype == gg.float64


def test_activation_modules_match_functional():
    x = gg.randn(4, 5)
    pairs = [
        (nn.ReLU(), F.relu(x)),
        (nn.Sigmoid(), F.sigmoid(x)),
        (nn.Tanh(), F.tanh(x)),
        (nn.LeakyReLU(0.2), F.leaky_relu(x, 0.2)),
        (nn.GELU("tanh"), F.gelu(x, approximate="tanh")),
        (nn.Softmax(dim=1), F.softmax(x, 1)),
        (nn.LogSoftmax(dim=0), F.log_softmax(x, 0)),
        (nn.Identity(54, unused=1), x),
        (nn.Flatten(0), x.reshape(-1)),
    ]
    for module, expected in pairs:
        np.testing.assert_allclose(
            module(x).numpy(), expected.numpy(), rtol=1e-6, err_msg=repr(module)
        )


def test_loss_modules_match_functional():
    gg.manual_seed(1)
    logits, target = gg.randn(6, 4), gg.tensor([0, 1, 2, 3, 0, 1])
    weight = gg.tensor([1.0, 2.0, 0.5, 1.0])
    cases = [
        (nn.CrossEntropyLoss(), F.cross_entropy(logits, target)),
        (
            nn.CrossEntropyLoss(weight=weight, reduction="sum"),
            F.cross_entropy(logits, target, weight=weight, reduction="sum"),
        ),
        (nn.NLLLoss(), F.nll_loss(F.log_softmax(logits, 1), target)),
        (nn.MultiMarginLoss(margin=0.5), F.multi_margin_loss(logits, target, margin=0.5)),
    ]
    for module, expected in cases[:2] + cases[3:]:
        np.testing.assert_allclose(module(logits, target).numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        cases[2][0](F.log_softmax(logits, 1), target).numpy(), cases[2][1].numpy()
    )
    y = gg.rand(6, 4)
    np.testing.assert_allclose(nn.MSELoss()(logits, y).numpy(), F.mse_loss(logits, y).numpy())
    np.testing.assert_allclose(
        nn.BCEWithLogitsLoss()(logits, y).numpy(),
        F.binary_cross_entropy_with_logits(logits, y).numpy(),
    )
    assert "weight" in nn.CrossEntropyLoss(weight=weight).state_dict()
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


# ---- init --------------------------------------------------------------------------------------
def test_init_functions_in_place_and_formulas():
    gg.manual_seed(0)
    w = nn.Parameter(gg.empty(200, 300))
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    assert nn.init.calculate_gain("tanh") == 5 / 3
    assert nn.init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")
    assert nn.init.kaiming_uniform_(w, nonlinearity="relu") is w
    assert np.abs(w.detach().numpy()).max() <= math.sqrt(6 / 300)
    nn.init.kaiming_normal_(w, mode="fan_out")
    assert abs(w.detach().numpy().std() - math.sqrt(2 / 1.0001) / math.sqrt(200)) < 0.005
    nn.init.xavier_uniform_(w)
    assert np.abs(w.detach().numpy()).max() <= math.sqrt(6 / 500)
    nn.init.xavier_normal_(w, gain=2.0)
    assert abs(w.detach().numpy().std() - 2 * math.sqrt(2 / 500)) < 0.005
    nn.init.uniform_(w, -0.1, 0.2)
    assert -0.1 <= w.detach().numpy().min() and w.detach().numpy().max() <= 0.2
    nn.init.normal_(w, 3.0, 0.01)
    assert abs(w.detach().numpy().mean() - 3.0) < 0.01
    nn.init.zeros_(w)
    assert not w.detach().numpy().any()
    nn.init.ones_(w)
    assert (w.detach().numpy() == 1).all()
    nn.init.constant_(w, 0.5)
    assert (w.detach().numpy() == 0.5).all()
    assert w.is_leaf and w.grad_fn is None  # in place, not recorded
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(gg.zeros(3))
    with pytest.raises(ValueError, match="Mode"):
        nn.init.kaiming_uniform_(w, mode="fan_avg")


# ---- MLP ----------------------------------------------------------------------------------------
def _manual_mlp(model, x, act):
    h = x.numpy().astype(np.float64)
    linears = model.linears
    for i, layer in enumerate(linears):
        h = h @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
        if i < len(linears) - 1:
            h = {
                "relu": lambda v: np.maximum(v, 0),
                "tanh": np.tanh,
                "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            }[act](h)
    return h


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_mlp_structure_and_forward_equals_manual(act):
    gg.manual_seed(0)
    model = nn.MLP([5, 7, 6, 3], activation=act)
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    assert len(model) == 5 and isinstance(
        model[1], {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[act]
    )
    assert [layer.weight.shape for layer in model.linears] == [(7, 5), (6, 7), (3, 6)]
    x = gg.randn(8, 5)
    np.testing.assert_allclose(
        model(x).detach().numpy(), _manual_mlp(model, x, act), rtol=1e-5, atol=1e-5
    )


def test_mlp_uses_the_fused_linear_act(monkeypatch):
    calls = []
    original = F.linear_act

    def spy(x, w, b, act="identity"):
        calls.append(act)
        return original(x, w, b, act)

    monkeypatch.setattr(F, "linear_act", spy)
    nn.MLP([4, 8, 8, 2], activation="tanh")(gg.randn(3, 4))
    assert calls == ["tanh", "tanh", "identity"]


def test_mlp_state_dict_loads_into_equivalent_sequential():
    model = nn.MLP([4, 6, 3])
    seq = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    seq.load_state_dict(model.state_dict())
    x = gg.randn(5, 4)
    np.testing.assert_allclose(seq(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)


def test_mlp_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        nn.MLP([2, 2], activation="swish")
    with pytest.raises(ValueError, match="at least"):
        nn.MLP([3])
    with pytest.raises(ValueError, match="non-negative integer"):
        nn.MLP([3, -1, 2])


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_mlp_matches_torch_sequential_forward_and_backward(act):
    torch = pytest.importorskip("torch")
    gg.manual_seed(0)
    model = nn.MLP([6, 16, 12, 4], activation=act, dtype=gg.float64)
    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
    reference = torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        acts[act](),
        torch.nn.Linear(16, 12),
        acts[act](),
        torch.nn.Linear(12, 4),
    ).double()
    reference.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    )
    x = np.random.default_rng(0).standard_normal((9, 6))
    target = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0])
    loss = F.cross_entropy(model(gg.tensor(x)), gg.tensor(target))
    loss.backward()
    ref_loss = torch.nn.functional.cross_entropy(
        reference(torch.from_numpy(x)), torch.from_numpy(target)
    )
    ref_loss.backward()
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-10)
    grads = dict(reference.named_parameters())
    for name, param in model.named_parameters():
        np.testing.assert_allclose(
            param.grad.numpy(), grads[name].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name
        )
    # and the other way round: a torch state_dict loads into the gpugrad MLP
    model.load_state_dict(reference.state_dict())
