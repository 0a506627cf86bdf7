"""gg.capture: a recorded training step replays to exactly what eager training computes, reads
what changes between replays at replay time, and refuses what it cannot replay, loudly.

The CPU runs here; the same checks run on the fake GPU (CUDA graph capture) where marked cuda."""
from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.replay import CaptureError

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _model(activation, dtype, device, seed=0, sizes=(6, 16, 16, 3)):
    gg.manual_seed(seed)
    return gg.nn.MLP(list(sizes), activation=activation, dtype=dtype, device=device)


def _make_optimizer(name, params):
    return {
        "sgd": lambda: gg.optim.SGD(params, lr=0.1),
        "momentum": lambda: gg.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True,
                                         weight_decay=1e-3),
        "adam": lambda: gg.optim.Adam(params, lr=1e-2, weight_decay=1e-3),
        "adamw": lambda: gg.optim.AdamW(params, lr=1e-2),
        "rmsprop": lambda: gg.optim.RMSprop(params, lr=1e-2, momentum=0.5),
        "rmsprop-centered": lambda: gg.optim.RMSprop(params, lr=1e-2, centered=True,
                                                     weight_decay=1e-3),
        "adagrad": lambda: gg.optim.Adagrad(params, lr=0.1, lr_decay=1e-3),
        "adadelta": lambda: gg.optim.Adadelta(params, maximize=False, weight_decay=1e-3),
        "adamax": lambda: gg.optim.Adamax(params, lr=1e-2),
        "nadam": lambda: gg.optim.NAdam(params, lr=1e-2, decoupled_weight_decay=True,
                                        weight_decay=1e-2),
        "radam": lambda: gg.optim.RAdam(params, lr=1e-2),  # rectified from its 6th step on
    }[name]()


def _batches(steps, device, dtype, classes=3, ignore=False, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        x = gg.tensor(rng.standard_normal((7, 6)), dtype=dtype, device=device)
        y = rng.integers(0, classes, 7)
        if ignore:
            y[rng.random(7) < 0.3] = -1  # ignored rows
        out.append((x, gg.tensor(y, device=device)))
    return out


def _trainer(model, optimizer, loss_fn, scheduler=None):
    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss

    return step


def _run(captured, config, device, dtype, steps):
    activation, opt_name, make_loss, scheduled, ignore = config
    loss_fn = make_loss(dtype, device)
    model = _model(activation, dtype, device)
    optimizer = _make_optimizer(opt_name, model.parameters())
    if callable(scheduled):  # a scheduler of its own
        scheduler = scheduled(optimizer)
    else:
        scheduler = gg.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.5) if scheduled else None
    step = _trainer(model, optimizer, loss_fn, scheduler)
    if captured:
        step = gg.capture(step)
    losses = [step(x, y).item() for x, y in _batches(steps, device, dtype, ignore=ignore)]
    params = [p.detach().cpu().numpy().copy() for p in model.parameters()]
    return losses, params, step


def _weighted_sum(dtype, device):
    weight = gg.tensor([1.0, 2.0, 0.5], dtype=dtype, device=device)  # made outside the step
    return lambda z, y: F.cross_entropy(z, y, weight=weight, reduction="sum")


CONFIGS = {  # activation, optimizer, loss (a maker given dtype and device), scheduler, ignores
    "relu-sgd": ("relu", "sgd", lambda *_: F.cross_entropy, False, False),
    "sigmoid-momentum": ("sigmoid", "momentum", lambda *_: F.cross_entropy, False, False),
    "tanh-adam-scheduler": ("tanh", "adam", lambda *_: F.cross_entropy, True, False),
    "gelu-adamw": ("gelu", "adamw", lambda *_: F.cross_entropy, False, False),
    "relu-adamw-ignore-index": ("relu", "adamw",
                                lambda *_: lambda z, y: F.cross_entropy(z, y, ignore_index=-1),
                                False, True),
    "relu-momentum-label-smoothing": ("relu", "momentum", lambda *_: lambda z, y: F.cross_entropy(
        z, y, label_smoothing=0.1), True, False),
    "tanh-momentum-weighted-sum": ("tanh", "momentum", _weighted_sum, False, False),
    "tanh-rmsprop": ("tanh", "rmsprop", lambda *_: F.cross_entropy, False, False),
    "relu-rmsprop-centered": ("relu", "rmsprop-centered", lambda *_: F.cross_entropy, False,
                              False),
    "relu-adagrad-scheduler": ("relu", "adagrad", lambda *_: F.cross_entropy, True, False),
    "sigmoid-adadelta": ("sigmoid", "adadelta", lambda *_: F.cross_entropy, False, False),
    "gelu-adamax": ("gelu", "adamax", lambda *_: F.cross_entropy, False, False),
    "tanh-nadam-scheduler": ("tanh", "nadam", lambda *_: F.cross_entropy, True, False),
    "relu-radam": ("relu", "radam", lambda *_: F.cross_entropy, False, False),
    "relu-momentum-cyclic": ("relu", "momentum", lambda *_: F.cross_entropy,  # cycles momentum
                             lambda o: gg.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, 3), False),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [gg.float32, gg.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_captured_training_equals_eager_training(config, dtype, device):
    steps = 200 if device == "cpu" else 30
    eager_losses, eager_params, _ = _run(False, CONFIGS[config], device, dtype, steps)
    losses, params, step = _run(True, CONFIGS[config], device, dtype, steps)
    assert step.stats == {"eager": 1, "recorded": 1, "replayed": steps - 2}
    tol = {"rtol": 1e-6, "atol": 1e-7} if dtype == gg.float32 else {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(losses, eager_losses, **tol)
    for p, q in zip(params, eager_params):
        np.testing.assert_allclose(p, q, **tol)


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_and_outputs_are_the_replays(device):
    """After a replay, .grad holds that replay's gradients and the returned tensor (the one the
    recording returned, overwritten as torch's graphed outputs are) its loss."""
    model = _model("relu", gg.float64, device)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights stay put

    @gg.capture
    def step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    batches = _batches(4, device, gg.float64)
    outputs = [step(x, y) for x, y in batches]
    assert outputs[2] is outputs[3]  # the recorded output, overwritten
    x, y = batches[3]
    model.zero_grad()
    expected = F.cross_entropy(model(x), y)
    expected.backward()
    assert outputs[3].item() == pytest.approx(expected.item(), rel=1e-12)
    eager_grads = [p.grad.cpu().numpy().copy() for p in model.parameters()]
    step(x, y)
    for p, g in zip(model.parameters(), eager_grads):
        np.testing.assert_allclose(p.grad.cpu().numpy(), g, rtol=1e-12)


def test_gradients_accumulated_across_replays_without_zero_grad():
    model = _model("tanh", gg.float64, "cpu")

    def backward_only(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    step = gg.capture(backward_only)
    batches = _batches(5, "cpu", gg.float64)
    for x, y in batches:
        step(x, y)
    total = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()
    for p, g in zip(model.parameters(), total):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_draws_fresh_masks_at_every_replay(device):
    x = gg.ones(4000, dtype=gg.float64, device=device)

    @gg.capture
    def masked(x):
        return F.dropout(x, p=0.25) * 1.0

    masks = [masked(x).cpu().numpy().copy() != 0 for _ in range(6)]
    for mask in masks:
        assert abs(mask.mean() - 0.75) < 0.03  # the keep rate
    for a, b in zip(masks, masks[1:]):
        assert (a != b).mean() > 0.2  # independent draws differ in ~37.5% of places
    kept = masked(x).cpu().numpy()
    assert set(np.unique(kept)) <= {0.0, 1 / 0.75}


def test_a_new_signature_records_again_and_says_so_once():
    model = _model("relu", gg.float32, "cpu")
    step = gg.capture(lambda x: model(x).sum())
    step(gg.ones(2, 6))
    step(gg.ones(2, 6))
    with pytest.warns(UserWarning, match="new signature"):
        for _ in range(3):
            step(gg.ones(5, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            step(gg.ones(9, 6))
    assert step.stats["recorded"] == 3
    np.testing.assert_allclose(step(gg.ones(5, 6)).item(), model(gg.ones(5, 6)).sum().item(),
                               rtol=1e-6)


def test_memory_peak_of_a_captured_step_is_at_most_eagers():
    sizes = (64, 256, 256, 10)

    def setup():
        model = _model("relu", gg.float32, "cpu", sizes=sizes)
        optimizer = gg.optim.Adam(model.parameters())
        return _trainer(model, optimizer, F.cross_entropy)

    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((128, 64)), dtype=gg.float32)
    y = gg.tensor(rng.integers(0, 10, 128))

    def peak(step):
        step(x, y)
        step(x, y)  # warm-up and recording (captured): then measure steady steps
        tracemalloc.start()
        for _ in range(3):
            step(x, y)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    eager, captured = peak(setup()), peak(gg.capture(setup()))
    print("peak bytes: eager", eager, "captured", captured)
    assert captured <= eager, (captured, eager)


# ---- refusals ----------------------------------------------------------------------------------
def _record(fn, *args):
    step = gg.capture(fn)
    step(*args)  # warm-up: eager, anything goes
    return step(*args)  # recording


@pytest.mark.parametrize("read, words", [
    (lambda loss: loss.item(), r"\.item\(\)"),
    (lambda loss: bool(loss > 0), r"bool\(\) of a tensor"),
    (lambda loss: float(loss), r"float\(\) of a tensor"),
    (lambda loss: print(loss), "printing a tensor"),
    (lambda loss: loss.tolist(), r"\.tolist\(\)"),
])
def test_reading_a_value_mid_step_is_refused_naming_the_call(read, words):
    model = _model("relu", gg.float32, "cpu")

    def step(x):
        loss = model(x).sum()
        read(loss)
        return loss

    with pytest.raises(CaptureError, match=words):
        _record(step, gg.ones(2, 6))


def test_numpy_work_outside_gpugrads_ops_is_refused():
    def step(x):
        h = x * 2
        h.array[0] = 5  # an in-place write the record would not see
        return h

    with pytest.raises(CaptureError, match="in-place write"):
        _record(step, gg.ones(3))

    def reads_raw(x):
        return gg.tensor(np.exp((x * 2).array))  # NumPy on a step's array

    with pytest.raises(CaptureError, match="numpy|NumPy"):
        _record(reads_raw, gg.ones(3))


def test_a_step_returning_a_tensor_it_did_not_compute_is_refused():
    w = gg.ones(3)
    with pytest.raises(CaptureError, match="did not compute"):
        _record(lambda x: (x * 2, w), gg.ones(3))


def test_a_captured_step_may_not_record_another():
    inner = gg.capture(lambda x: x * 2)

    def outer(x):
        return inner(x) + 1

    with pytest.raises(CaptureError, match="may not record another"):
        step = gg.capture(outer)
        for _ in range(4):
            step(gg.ones(3))


def test_a_bad_target_raises_at_every_replay_as_eagerly():
    model = _model("relu", gg.float64, "cpu")
    step = gg.capture(lambda x, y: F.cross_entropy(model(x), y))
    x = gg.ones(2, 6, dtype=gg.float64)
    for _ in range(3):
        step(x, gg.tensor([0, 2]))
    with pytest.raises(IndexError, match="cross_entropy: target 3 is out of bounds for 3 classes"):
        step(x, gg.tensor([0, 3]))


class _PlainSGD(gg.optim.Optimizer):
    """An optimizer of the user's own: its step reads lr as a Python number."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                param.array -= group["lr"] * param.grad.array


@pytest.mark.cuda
def test_an_optimizer_without_device_hyperparameters_is_refused_in_a_cuda_graph():
    model = _model("relu", gg.float32, "cuda")
    optimizer = _PlainSGD(model.parameters(), lr=1e-2)
    step = gg.capture(_trainer(model, optimizer, F.cross_entropy))
    (x, y), = _batches(1, "cuda", gg.float32)
    step(x, y)
    with pytest.raises(CaptureError, match="_PlainSGD's update reads its hyperparameters"):
        step(x, y)


@pytest.mark.cuda
def test_an_optimizer_step_without_a_kernel_is_refused_in_a_cuda_graph():
    """float16 parameters take the array update (no float16 kernel), which reads Python
    numbers: refused while capturing, naming the optimizer and the dtype."""
    param = gg.nn.Parameter(gg.ones(4, dtype=gg.float16, device="cuda"))
    optimizer = gg.optim.NAdam([param], lr=1e-2)

    def step(x):
        optimizer.zero_grad()
        loss = (param * x).sum()
        loss.backward()
        optimizer.step()
        return loss

    captured = gg.capture(step)
    x = gg.ones(4, dtype=gg.float16, device="cuda")
    captured(x)
    with pytest.raises(CaptureError, match="NAdam has no fused kernel for a float16"):
        captured(x)


@pytest.mark.cuda
@pytest.mark.parametrize("make, words", [
    (lambda: gg.tensor([1.0, 2.0], device="cuda"), "host-to-device"),
    (lambda: gg.randn(3, device="cuda"), "drawn on the host"),
])
def test_host_data_inside_a_cuda_graph_is_refused(make, words):
    def step(x):
        return (x.sum() * make().sum())

    with pytest.raises(CaptureError, match=words):
        _record(step, gg.ones(3, device="cuda"))


@pytest.mark.cuda
def test_torchs_names_cuda_graph_and_replay():
    """torch.cuda.CUDAGraph / torch.cuda.graph: static input and output tensors, replay()."""
    model = _model("relu", gg.float64, "cuda")
    optimizer = gg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = _batches(6, "cuda", gg.float64)
    static_x, static_y = (t.clone() for t in batches[0])
    step = _trainer(model, optimizer, F.cross_entropy)
    step(static_x, static_y)  # warm-up, eagerly
    graph = gg.cuda.CUDAGraph()
    with gg.cuda.graph(graph):
        static_loss = step(static_x, static_y)
    losses = []
    for x, y in batches[1:]:
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        losses.append(static_loss.item())
    reference = _model("relu", gg.float64, "cuda")
    ref_step = _trainer(reference, gg.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9),
                        F.cross_entropy)
    expected = [ref_step(*batch).item() for batch in batches][1:]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_warmup_must_be_positive():
    with pytest.raises(ValueError, match="warmup"):
        gg.capture(lambda x: x, warmup=0)


def test_the_cli_trains_the_same_model_with_capture(capsys, tmp_path):
    from gpugrad.__main__ import main

    args = ["train", "--epochs", "2", "--quiet", "--optimizer", "adamw", "--scheduler", "onecycle"]
    saved = []
    for extra in ([], ["--capture"]):
        path = tmp_path / f"model{len(saved)}.gg"
        assert main([*args, *extra, "--save", str(path)]) == 0
        saved.append(gg.load(str(path)))
    out = capsys.readouterr().out
    assert len(set(line.split("|")[0] for line in out.splitlines() if "test accuracy" in line)) == 1
    for key, value in saved[0].items():
        np.testing.assert_allclose(saved[1][key].numpy(), value.numpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(SystemExit):
        main(["train", "--capture", "--grad-report", "--epochs", "1"])
