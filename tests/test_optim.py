"""gg.optim against torch.optim: the same gradients in, the same parameters out (float64, 1e-6,
100 steps), at every kernel level; state_dict layout and round trips; argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn, optim
from gpugrad.backend import kernels

# one small, one odd-sized and one large enough for the native CPU kernel's default path
SHAPES = [(5, 3), (7,), (3000,)]
STEPS = 100

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
    (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05, "maximize": True},
    ),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "betas": (0.85, 0.995), "weight_decay": 0.3}),
    ("Adam", {"lr": 0.01, "maximize": True}),
]
LEVELS = [
    None,
    "reference",
    pytest.param(
        "native",
        marks=pytest.mark.skipif(kernels.native_cpu() is None, reason="gpugrad._C not built"),
    ),
]


def _ids(config):
    name, options = config
    return name + "-" + "-".join(f"{k}={v}" for k, v in options.items())


def _initial(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _grads(rng):
    return [rng.standard_normal(shape) for shape in SHAPES]


def _gg_params(arrays):
    return [nn.Parameter(gg.tensor(a)) for a in arrays]


def _gg_step(opt, params, grads, level):
    for p, g in zip(params, grads):
        p.grad = gg.tensor(g)
    if level is None:
        opt.step()
    else:
        with kernels.use(level):
            opt.step()


def _run_gg(name, options, steps=STEPS, level=None, seed=1):
    params = _gg_params(_initial())
    opt = getattr(optim, name)(params, **options)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        _gg_step(opt, params, _grads(rng), level)
    return params, opt


def _side_by_side(config, level, seed, make_grads):
    """Step a gpugrad optimizer and torch's on the same parameters and gradients; yields
    (step, gpugrad params, torch params, gpugrad optimizer, torch optimizer) after each step."""
    torch = pytest.importorskip("torch")
    name, options = config
    params = _gg_params(_initial())
    reference = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in _initial()]
    opt = getattr(optim, name)(params, **options)
    ref_opt = getattr(torch.optim, name)(reference, **options)
    rng = np.random.default_rng(seed)
    for step in range(STEPS):
        grads = make_grads(rng)
        _gg_step(opt, params, grads, level)
        for p, g in zip(reference, grads):
            p.grad = torch.from_numpy(g.copy())
        ref_opt.step()
        yield step, params, reference, opt, ref_opt


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_matches_torch_over_100_steps(config, level):
    for step, params, reference, _, _ in _side_by_side(config, level, 1, _grads):
        if step % 25 == 24 or step == 0:
            for i, (p, q) in enumerate(zip(params, reference)):
                np.testing.assert_allclose(
                    p.detach().numpy(),
                    q.detach().numpy(),
                    rtol=1e-6,
                    atol=1e-6,
                    err_msg=f"param {i} after step {step + 1}",
                )


@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_reference_and_native_levels_agree(config):
    if kernels.native_cpu() is None:
        pytest.skip("gpugrad._C not built")
    name, options = config
    via_reference, _ = _run_gg(name, options, steps=30, level="reference")
    via_native, _ = _run_gg(name, options, steps=30, level="native")
    for a, b in zip(via_reference, via_native):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_float32_matches_torch():
    torch = pytest.importorskip("torch")
    init = [a.astype(np.float32) for a in _initial()]
    params = [nn.Parameter(gg.tensor(a)) for a in init]
    reference = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt, ref_opt = optim.AdamW(params, lr=0.01), torch.optim.AdamW(reference, lr=0.01)
    rng = np.random.default_rng(3)
    for _ in range(20):
        grads = [g.astype(np.float32) for g in _grads(rng)]
        _gg_step(opt, params, grads, None)
        for p, g in zip(reference, grads):
            p.grad = torch.from_numpy(g.copy())
        ref_opt.step()
    for p, q in zip(params, reference):
        assert p.dtype == gg.float32 and opt.state[p]["exp_avg"].dtype == gg.float32
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-5)


# ---- amsgrad ---------------------------------------------------------------------------------------
AMSGRAD_CONFIGS = [
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0, "amsgrad": True}),
    ("AdamW", {"lr": 0.02, "betas": (0.85, 0.995), "weight_decay": 0.3, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.05, "amsgrad": True, "maximize": True}),
]


def _varying_grads(rng):
    """Gradients whose scale jumps from step to step, so exp_avg_sq also falls and its
    running maximum (amsgrad's denominator) differs from it."""
    scale = rng.choice([0.05, 1.0, 4.0])
    return [scale * g for g in _grads(rng)]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("config", AMSGRAD_CONFIGS, ids=_ids)
def test_amsgrad_matches_torch_to_1e12_over_100_steps(config, level):
    for step, params, reference, opt, ref_opt in _side_by_side(config, level, 4, _varying_grads):
        if step % 10 == 9 or step == 0:
            for i, (p, q) in enumerate(zip(params, reference)):
                for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    np.testing.assert_allclose(opt.state[p][key].numpy(), ref_opt.state[q][key].numpy(),
                                               rtol=1e-12, atol=1e-15, err_msg=f"{key} {i} step {step + 1}")
                np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-12,
                                           err_msg=f"param {i} after step {step + 1}")
    state = opt.state[params[2]]
    # the running max was in use: it differs from exp_avg_sq at the end
    assert np.any(state["max_exp_avg_sq"].numpy() > state["exp_avg_sq"].numpy())


def test_amsgrad_state_dict_has_torchs_keys_and_loads_a_torch_checkpoint():
    torch = pytest.importorskip("torch")
    reference = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in _initial()]
    ref_opt = torch.optim.AdamW(reference, lr=0.01, amsgrad=True)
    rng = np.random.default_rng(6)
    for _ in range(10):
        for p, g in zip(reference, _varying_grads(rng)):
            p.grad = torch.from_numpy(g)
        ref_opt.step()
    params = [nn.Parameter(gg.tensor(p.detach().numpy().copy())) for p in reference]
    opt = optim.AdamW(params)  # amsgrad comes back from the state dict's options
    opt.load_state_dict(ref_opt.state_dict())
    assert opt.param_groups[0]["amsgrad"] is True
    sd, ref_sd = opt.state_dict(), ref_opt.state_dict()
    assert set(sd["state"][0]) == set(ref_sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    for _ in range(10):
        grads = _varying_grads(rng)
        _gg_step(opt, params, grads, None)
        for p, g in zip(reference, grads):
            p.grad = torch.from_numpy(g.copy())
        ref_opt.step()
    for p, q in zip(params, reference):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-12)


# ---- state_dict ----------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [CONFIGS[3], CONFIGS[7], CONFIGS[9], AMSGRAD_CONFIGS[1], AMSGRAD_CONFIGS[3]],
                         ids=_ids)
def test_state_dict_round_trip_through_a_file_continues_identically(config, tmp_path):
    name, options = config
    straight, _ = _run_gg(name, options, steps=60)

    params = _gg_params(_initial())
    opt = getattr(optim, name)(params, **options)
    rng = np.random.default_rng(1)
    for _ in range(30):
        _gg_step(opt, params, _grads(rng), None)
    gg.save(
        {"params": [p.detach() for p in params], "optimizer": opt.state_dict()},
        tmp_path / "ckpt.gg",
    )
    del opt, params

    checkpoint = gg.load(tmp_path / "ckpt.gg")
    resumed = [nn.Parameter(t) for t in checkpoint["params"]]
    opt = getattr(optim, name)(resumed, lr=123.0)  # options come back from the state dict
    opt.load_state_dict(checkpoint["optimizer"])
    assert opt.param_groups[0]["lr"] == options["lr"]
    if options.get("amsgrad"):
        assert opt.param_groups[0]["amsgrad"] is True
        assert opt.state[resumed[0]]["max_exp_avg_sq"].shape == resumed[0].shape
    for _ in range(30):
        _gg_step(opt, resumed, _grads(rng), None)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_layout_matches_torch():
    torch = pytest.importorskip("torch")
    for name, options in [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01})]:
        params = _gg_params(_initial())
        reference = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in _initial()]
        groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.5}]
        ref_groups = [{"params": reference[:2]}, {"params": reference[2:], "lr": 0.5}]
        opt, ref_opt = (
            getattr(optim, name)(groups, **options),
            getattr(torch.optim, name)(ref_groups, **options),
        )
        grads = _grads(np.random.default_rng(0))
        _gg_step(opt, params, grads, None)
        for p, g in zip(reference, grads):
            p.grad = torch.from_numpy(g.copy())
        ref_opt.step()
        sd, ref_sd = opt.state_dict(), ref_opt.state_dict()
        assert set(sd) == {"state", "param_groups"}
        assert (
            [g["params"] for g in sd["param_groups"]]
            == [g["params"] for g in ref_sd["param_groups"]]
            == [[0, 1], [2]]
        )
        assert [g["lr"] for g in sd["param_groups"]] == [g["lr"] for g in ref_sd["param_groups"]]
        assert sorted(sd["state"]) == sorted(ref_sd["state"]) == [0, 1, 2]
        assert set(sd["state"][0]) == set(ref_sd["state"][0])
        for index in sd["state"]:
            for key, value in sd["state"][index].items():
                expected = ref_sd["state"][index][key]
                if key == "step":
                    assert value == int(expected.item())
                else:
                    np.testing.assert_allclose(value.numpy(), expected.numpy(), rtol=1e-12)


def test_loads_a_torch_optimizer_state_dict_and_continues_like_torch():
    torch = pytest.importorskip("torch")
    reference = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in _initial()]
    ref_opt = torch.optim.Adam(reference, lr=0.01, weight_decay=0.01)
    rng = np.random.default_rng(5)
    for _ in range(10):
        for p, g in zip(reference, _grads(rng)):
            p.grad = torch.from_numpy(g)
        ref_opt.step()
    params = [nn.Parameter(gg.tensor(p.detach().numpy().copy())) for p in reference]
    opt = optim.Adam(params)
    opt.load_state_dict(ref_opt.state_dict())
    for _ in range(10):
        grads = _grads(rng)
        _gg_step(opt, params, grads, None)
        for p, g in zip(reference, grads):
            p.grad = torch.from_numpy(g.copy())
        ref_opt.step()
    for p, q in zip(params, reference):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_state_dict_is_a_snapshot():
    params, opt = _run_gg("SGD", {"lr": 0.1, "momentum": 0.9}, steps=3)
    sd = opt.state_dict()
    before = sd["state"][0]["momentum_buffer"].numpy().copy()
    _gg_step(opt, params, _grads(np.random.default_rng(9)), None)
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"].numpy(), before)


def test_load_state_dict_mismatch_changes_nothing():
    _, opt = _run_gg("Adam", {"lr": 0.01}, steps=2)
    _, other_opt = _run_gg("Adam", {"lr": 0.5}, steps=2)
    before = opt.state_dict()
    bad = other_opt.state_dict()
    bad["param_groups"][0]["params"] = bad["param_groups"][0]["params"][:2]
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(bad)
    bad = other_opt.state_dict()
    bad["state"][2]["exp_avg"] = gg.zeros(4)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    bad = other_opt.state_dict()
    bad["param_groups"].append({"lr": 1.0, "params": []})
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for index in before["state"]:
        np.testing.assert_array_equal(
            after["state"][index]["exp_avg"].numpy(), before["state"][index]["exp_avg"].numpy()
        )


# ---- behaviour and arguments ---------------------------------------------------------------------
def test_param_groups_options_and_add_param_group():
    a, b, c = (nn.Parameter(gg.ones(2, dtype=gg.float64)) for _ in range(3))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0}], lr=0.1, momentum=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert all(g["momentum"] == 0.5 for g in opt.param_groups)
    opt.add_param_group({"params": [c], "momentum": 0.0})
    for p in (a, b, c):
        p.grad = gg.ones(2, dtype=gg.float64)
    opt.step()
    assert a.tolist() == [0.9, 0.9] and b.tolist() == [0.0, 0.0] and c.tolist() == [0.9, 0.9]
    assert "momentum_buffer" in opt.state[a] and c not in opt.state
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_step_skips_params_without_grad_bumps_version_and_runs_closure():
    a, b = nn.Parameter(gg.ones(3)), nn.Parameter(gg.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    version = a._version
    a.grad = gg.ones(3)

    def closure():
        return 42.0

    assert opt.step(closure) == 42.0
    assert a._version == version + 1 and not np.allclose(a.detach().numpy(), 1)
    assert b.tolist() == [1.0, 1.0, 1.0] and b not in opt.state
    assert opt.state[a]["step"] == 1


def test_training_a_model_reduces_the_loss():
    gg.manual_seed(0)
    model = nn.MLP([4, 16, 3])
    x, y = gg.randn(32, 4), gg.randint(0, 3, (32,))
    for opt in (
        optim.SGD(model.parameters(), lr=0.2, momentum=0.9),
        optim.AdamW(model.parameters(), lr=0.02),
    ):
        first = None
        for _ in range(30):
            loss = nn.functional.cross_entropy(model(x), y)
            first = loss.item() if first is None else first
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.7 * first


def test_zero_grad():
    p = nn.Parameter(gg.ones(2))
    opt = optim.SGD([p], lr=0.1)
    p.grad = gg.ones(2)
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_argument_errors_like_torch():
    p = [nn.Parameter(gg.ones(2))]
    with pytest.raises(
        ValueError, match="Nesterov momentum requires a momentum and zero dampening"
    ):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(
        ValueError, match="Nesterov momentum requires a momentum and zero dampening"
    ):
        optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="Invalid momentum"):
        optim.SGD(p, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon"):
        optim.AdamW(p, eps=-1)
    with pytest.raises(ValueError, match="Invalid weight_decay"):
        optim.Adam(p, weight_decay=-0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p[0] * 2], lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)


def test_defaults_match_torch():
    p = [nn.Parameter(gg.ones(2))]
    assert optim.AdamW(p).param_groups[0]["weight_decay"] == 1e-2
    assert optim.Adam(p).param_groups[0]["weight_decay"] == 0
    assert optim.Adam(p).param_groups[0]["betas"] == (0.9, 0.999)
    assert optim.SGD(p).param_groups[0]["lr"] == 1e-3
