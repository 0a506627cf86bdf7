"""Devices: 'cuda:N' tensors are made and worked on on their own GPU, ops refuse inputs on two
devices naming both, and NumPy-vs-CuPy differences (0-d results, wrapped indices, dtypes) do
not leak into results.

The unmarked tests run everywhere: a fake CuPy module with two fake GPUs checks the device
switching logic of Function.apply without a GPU. Tests marked `cuda` need a GPU; the multi-GPU
ones also skip unless gg.cuda.device_count() >= 2 (the lent GPU machines have one).
"""
from __future__ import annotations

import types

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import backend
from gpugrad.autograd.function import Function
from gpugrad.backend import cupy_backend


# ---- a fake CuPy with two GPUs: the switching logic, checked without a GPU ----------------------
class FakeGpuArray:
    """Just enough of a cupy.ndarray for Function.apply: a shape, a dtype and a device."""

    def __init__(self, device_id: int, shape=(2,), dtype=np.float32):
        self.device = types.SimpleNamespace(id=device_id)
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.ndim, self.size = len(shape), int(np.prod(shape))


class FakeCupy:
    """cupy.cuda.runtime.getDevice / cupy.cuda.Device(i) as a context, with a log of switches."""

    def __init__(self):
        self.current = 0
        self.switches = []
        fake = self

        class Device:
            def __init__(self, index):
                self.id = index

            def __enter__(self):
                self.previous = fake.current
                fake.current = self.id
                fake.switches.append(self.id)
                return self

            def __exit__(self, *exc):
                fake.current = self.previous

        self.ndarray = FakeGpuArray
        self.cuda = types.SimpleNamespace(
            Device=Device, runtime=types.SimpleNamespace(getDevice=lambda: fake.current)
        )


@pytest.fixture
def two_fake_gpus(monkeypatch):
    fake = FakeCupy()
    monkeypatch.setattr(cupy_backend, "_state", {"ok": True, "module": fake, "count": 2, "reason": ""})
    monkeypatch.setattr(cupy_backend, "multi_gpu", True)
    return fake


SEEN: list = []  # the GPU that was current in each RecordDevice.forward


class RecordDevice(Function):
    """An op whose forward records which GPU was current when it ran."""

    arrays = True

    @staticmethod
    def forward(ctx, *arrays):
        fake = cupy_backend.module()
        SEEN.append(fake.cuda.runtime.getDevice())
        return FakeGpuArray(fake.cuda.runtime.getDevice())


def on_fake_gpu(index: int) -> gg.Tensor:
    return gg.Tensor._make(FakeGpuArray(index))


def test_an_op_runs_on_its_inputs_gpu_and_restores_the_current_one(two_fake_gpus):
    SEEN.clear()
    out = RecordDevice.apply(on_fake_gpu(1), on_fake_gpu(1))
    assert SEEN == [1] and out.device == "cuda:1"
    assert two_fake_gpus.current == 0  # switched back after the op
    RecordDevice.apply(on_fake_gpu(0))
    assert SEEN == [1, 0] and two_fake_gpus.switches == [1]  # 0 was current


def test_an_op_on_two_gpus_or_cpu_and_gpu_names_both(two_fake_gpus):
    with pytest.raises(RuntimeError, match=r"RecordDevice: .*same device, got cuda:0 and cuda:1"):
        RecordDevice.apply(on_fake_gpu(0), on_fake_gpu(1))
    with pytest.raises(RuntimeError, match=r"same device, got cpu and cuda:1"):
        RecordDevice.apply(gg.ones(2), on_fake_gpu(1))
    assert two_fake_gpus.switches == []


def test_device_guard_and_on_device_pick_the_arrays_gpu(two_fake_gpus):
    with backend.device_guard(FakeGpuArray(1)):
        assert two_fake_gpus.current == 1
    with backend.on_device(gg.device("cuda:1")):
        assert two_fake_gpus.current == 1
    assert two_fake_gpus.current == 0
    with backend.device_guard(np.ones(2)), backend.on_device(gg.device("cpu")):
        assert two_fake_gpus.switches == [1, 1]  # NumPy arrays and the CPU switch nothing


class FailsOnMixedArrays(Function):
    arrays = True

    @staticmethod
    def forward(ctx, a, b):
        raise TypeError("Unsupported type <class 'numpy.ndarray'>")  # what CuPy says


def test_a_failed_op_on_mixed_devices_says_so_even_with_one_gpu():
    with pytest.raises(RuntimeError, match="FailsOnMixedArrays: .*got cpu and cuda:0") as info:
        FailsOnMixedArrays.apply(gg.ones(2), on_fake_gpu(0))
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(TypeError):  # one device: the op's own error stands
        FailsOnMixedArrays.apply(gg.ones(2), gg.ones(2))


def test_switching_costs_nothing_with_one_gpu():
    assert cupy_backend.multi_gpu is False or gg.cuda.device_count() > 1
    if not cupy_backend.multi_gpu:
        null = backend.device_guard(np.ones(1))
        assert backend.on_device(gg.device("cuda:0")) is null  # the shared no-op context


def _train(steps: int = 5) -> list:
    gg.manual_seed(0)
    model = gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.Tanh(), gg.nn.Linear(8, 3))
    optimizers = [gg.optim.SGD(list(model.parameters())[:2], lr=0.1, momentum=0.9),
                  gg.optim.Adam(list(model.parameters())[2:], lr=0.01)]
    x = gg.randn(16, 4)
    y = gg.tensor(np.arange(16) % 3)
    losses = []
    for _ in range(steps):
        for opt in optimizers:
            opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y) + (model(x) ** 2).mean() * 0.01
        loss.backward()
        for opt in optimizers:
            opt.step()
        losses.append(loss.item())
    return losses


def test_the_multi_gpu_paths_leave_cpu_training_unchanged(monkeypatch):
    """With the several-GPU switch on, CPU tensors take every device-switching branch (apply,
    engine, optimizers, losses) as no-ops: the same losses to the last bit."""
    expected = _train()
    monkeypatch.setattr(cupy_backend, "multi_gpu", True)
    assert _train() == expected


# ---- NumPy gives 0-d results as scalars; a tensor must still hold an array ---------------------
def test_zero_dim_results_are_arrays_on_the_cpu():
    x = gg.tensor([1.0, 3.0, 2.0])
    zero_d = gg.tensor(2.0)
    for t in [gg.argmax(x), x.argmin(), x.all(), x.any(), zero_d == 2, zero_d > 1,
              gg.isfinite(zero_d), gg.isnan(zero_d), gg.sign(zero_d), ~(zero_d > 1),
              gg.logical_and(zero_d > 1, zero_d < 3), gg.amax(gg.tensor([1, 5, 2]))]:
        assert isinstance(t.array, np.ndarray), type(t.array)
        assert t.device == "cpu" and not t.is_cuda
        repr(t)
    assert backend.device_of(np.float64(1.0)) == "cpu"


def test_copy_and_to_device_take_numpy_scalars():
    assert isinstance(backend.to_device(np.float32(2.0), gg.device("cpu")), np.ndarray)
    t = gg.zeros(2)
    t.copy_(np.float32(3.0))
    assert t.tolist() == [3.0, 3.0]


# ---- CuPy wraps out-of-range indices around; gpugrad raises as NumPy / torch do ----------------
def test_gather_refuses_out_of_range_indices():
    x = gg.randn(3, 4)
    with pytest.raises(IndexError, match="gather: index 4 is out of bounds for dimension 1"):
        gg.gather(x, 1, gg.tensor([[0], [4], [1]]))
    with pytest.raises(IndexError, match="index -1"):
        gg.gather(x, 1, gg.tensor([[0], [-1], [1]]))
    with pytest.raises(TypeError, match="integer"):
        gg.gather(x, 1, gg.tensor([[0.0], [1.0], [1.0]]))
    values, _ = x.max(1)  # max(dim) gathers without the check: its indices are in range
    np.testing.assert_array_equal(values.numpy(), x.numpy().max(1))


def test_losses_accept_plain_targets_and_check_devices():
    x = gg.randn(4, 3, requires_grad=True)
    logp = F.log_softmax(x, 1)
    loss = F.nll_loss(logp, [0, 1, 2, 1])
    expected = F.nll_loss(logp, gg.tensor([0, 1, 2, 1]))
    assert loss.item() == pytest.approx(expected.item())
    assert F.multi_margin_loss(x, [0, 1, 2, 1]).item() == pytest.approx(
        F.multi_margin_loss(x, gg.tensor([0, 1, 2, 1])).item())


def test_a_torch_like_state_dict_value_is_read_through_numpy():
    class TorchLike:  # has __cuda_array_interface__ like a torch CUDA tensor, but no NumPy dtype
        @property
        def __cuda_array_interface__(self):
            raise AssertionError("read through detach().cpu().numpy(), not as a GPU array")

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return np.full(3, 2.0, dtype=np.float32)

    layer = gg.nn.Linear(2, 3)
    layer.load_state_dict({"weight": layer.weight.detach().numpy(), "bias": TorchLike()})
    assert layer.bias.tolist() == [2.0, 2.0, 2.0]


# ---- on a GPU ------------------------------------------------------------------------------------
def _two_gpus():
    if gg.cuda.device_count() < 2:
        pytest.skip("needs at least two GPUs")


@pytest.mark.cuda
def test_erf_and_gelu_keep_float16_on_cuda():
    x = gg.tensor(np.linspace(-3, 3, 7), dtype=gg.float16, device="cuda")
    assert gg.erf(x).dtype == gg.float16  # cupyx.scipy.special.erf maps float16 to float64
    assert F.gelu(x).dtype == gg.float16
    np.testing.assert_allclose(gg.erf(x).cpu().numpy().astype(np.float64),
                               gg.erf(x.cpu().double()).numpy(), atol=2e-3)


@pytest.mark.cuda
def test_out_of_range_indices_raise_on_cuda():
    x = gg.randn(3, 4, device="cuda")
    with pytest.raises(IndexError):
        gg.gather(x, 1, gg.tensor([[0], [4], [1]], device="cuda"))
    with pytest.raises(IndexError):
        x[gg.tensor([0, 3], device="cuda")]
    with pytest.raises(IndexError):
        x[gg.tensor([0, 3], device="cuda")] = 1.0
    # a bad cross-entropy target is flagged by the kernel and raised at the next host read
    # (checking at once would synchronize in the middle of a step)
    loss = F.cross_entropy(x, gg.tensor([0, 4, 1], device="cuda"))
    with pytest.raises(IndexError, match="cross_entropy: target 4 is out of bounds for 4 classes"):
        loss.item()
    x[gg.tensor([0, -1], device="cuda")] = 5.0  # in range, negative counts from the end
    assert x[2].tolist() == [5.0] * 4


@pytest.mark.cuda
def test_zero_dim_results_on_cuda():
    x = gg.tensor([1.0, 3.0, 2.0], device="cuda")
    for t in [gg.argmax(x), x.sum(), x.all(), x == 3, x.max()]:
        assert t.device == "cuda:0" and t.is_cuda
    assert gg.argmax(x).item() == 1 and float(x.sum()) == 6.0 and bool(x.max() == 3)


@pytest.mark.cuda
def test_the_multi_gpu_paths_on_one_real_gpu(monkeypatch):
    """The several-GPU switching on a real GPU (device 0 current): a training step through
    apply, the engine, losses and both optimizers gives the same losses as without it."""
    def train():
        gg.manual_seed(0)
        model = gg.nn.MLP([4, 8, 3], activation="relu", device="cuda")
        sgd = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = gg.randn(16, 4, device="cuda"), gg.tensor(np.arange(16) % 3, device="cuda")
        losses = []
        for _ in range(3):
            sgd.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            sgd.step()
            losses.append(loss.item())
        return losses

    expected = train()
    monkeypatch.setattr(cupy_backend, "multi_gpu", True)
    np.testing.assert_allclose(train(), expected, rtol=1e-6)


@pytest.mark.cuda
def test_tensors_from_foreign_gpu_arrays():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    source = torch.arange(6, dtype=torch.float32, device="cuda").reshape(2, 3)
    t = gg.tensor(source)
    assert t.device == "cuda:0" and t.tolist() == source.tolist()
    assert gg.tensor(source, device="cpu").tolist() == source.tolist()
    layer = gg.nn.Linear(3, 2)
    layer.load_state_dict({"weight": source, "bias": torch.zeros(2, device="cuda")})
    assert layer.weight.tolist() == source.tolist()


@pytest.mark.cuda
def test_creation_on_a_second_gpu():
    _two_gpus()
    for t in [gg.zeros(2, 3, device="cuda:1"), gg.ones(4, device="cuda:1"),
              gg.full((2,), 7.0, device="cuda:1"), gg.randn(3, device="cuda:1"),
              gg.arange(5, device="cuda:1"), gg.tensor([1.0, 2.0], device="cuda:1"),
              gg.zeros_like(gg.ones(2, device="cuda:1")), gg.ones(2).cuda(1),
              gg.tensor(gg.ones(2, device="cuda:1")), gg.tensor(gg.ones(2, device="cuda:1"),
                                                                dtype=gg.float64)]:
        assert t.device == "cuda:1" and t.array.device.id == 1


@pytest.mark.cuda
def test_ops_and_gradients_stay_on_a_second_gpu():
    _two_gpus()
    import cupy

    x = gg.randn(4, 3, device="cuda:1", requires_grad=True)
    w = gg.randn(3, 2, device="cuda:1", requires_grad=True)
    assert cupy.cuda.runtime.getDevice() == 0
    out = (F.relu(x @ w) * 2 + 1).sigmoid()
    loss = F.cross_entropy(out, gg.tensor([0, 1, 1, 0], device="cuda:1"))
    assert out.device == "cuda:1" and loss.device == "cuda:1"
    loss.backward()
    assert x.grad.device == "cuda:1" and w.grad.device == "cuda:1"
    assert cupy.cuda.runtime.getDevice() == 0  # the current GPU is left as it was
    # the same numbers as on the CPU
    xc, wc = (gg.tensor(t.detach().cpu(), requires_grad=True) for t in (x, w))
    lc = F.cross_entropy((F.relu(xc @ wc) * 2 + 1).sigmoid(), gg.tensor([0, 1, 1, 0]))
    lc.backward()
    np.testing.assert_allclose(loss.item(), lc.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.cpu().numpy(), xc.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
def test_mixing_two_gpus_names_both():
    _two_gpus()
    a, b = gg.ones(3, device="cuda:0"), gg.ones(3, device="cuda:1")
    for op in (lambda: a + b, lambda: gg.maximum(a, b), lambda: gg.where(a > 0, a, b),
               lambda: gg.ones(2, 3, device="cuda:0") @ gg.ones(3, 2, device="cuda:1")):
        with pytest.raises(RuntimeError) as info:
            op()
        assert "cuda:0" in str(info.value) and "cuda:1" in str(info.value)


@pytest.mark.cuda
def test_moving_between_gpus_is_differentiable():
    _two_gpus()
    x = gg.randn(3, device="cuda:0", requires_grad=True)
    y = x.to("cuda:1") * 3
    assert y.device == "cuda:1"
    y.sum().backward()
    assert x.grad.device == "cuda:0" and x.grad.tolist() == [3.0] * 3


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_optimizer_steps_on_a_second_gpu(name):
    _two_gpus()
    gg.manual_seed(0)
    model = gg.nn.MLP([4, 8, 3], activation="tanh").to("cuda:1")
    options = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.01}
    opt = getattr(gg.optim, name)(model.parameters(), **options)
    loader = gg.data.DataLoader(np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32),
                                np.arange(32) % 3, batch_size=8, device="cuda:1")
    for x, y in loader:
        assert x.device == "cuda:1" and y.device == "cuda:1"
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for p in model.parameters():
        assert p.device == "cuda:1" and p.grad.device == "cuda:1"
        for value in opt.state[p].values():
            if isinstance(value, gg.Tensor):
                assert value.device == "cuda:1"


def test_device_objects_parse_cuda_n():
    assert gg.device("cuda:1") == gg.device("cuda", 1) == "cuda:1"
    assert gg.device("cuda").index == 0 and gg.device("cpu").index is None
    assert str(gg.device("cuda:3")) == "cuda:3"
    for bad in ("cuda:x", "cpu:x", "tpu:1"):  # "cpu:0" is the CPU, as in torch
        with pytest.raises(ValueError, match="bad device string"):
            gg.device(bad)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_small_integer_targets_give_the_same_losses(device):
    """Targets are compared with -100 / a -10**18 sentinel in int64: uint8 or int32 targets
    must not overflow or wrap those (CuPy casts a Python int to the array's dtype)."""
    x = gg.randn(4, 3, device=device)
    expected = [F.cross_entropy(x, gg.tensor([0, 1, 2, 1], device=device)).item(),
                F.multi_margin_loss(x, gg.tensor([0, 1, 2, 1], device=device)).item()]
    for dtype in (np.uint8, np.int16, np.int32):
        t = gg.tensor(np.array([0, 1, 2, 1], dtype=dtype), device=device)
        assert [F.cross_entropy(x, t).item(), F.multi_margin_loss(x, t).item()] == pytest.approx(expected)


def test_backward_refuses_a_gradient_on_another_device():
    y = gg.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="backward: gradient on cuda:0 given for an output on cpu"):
        y.backward(on_fake_gpu(0))
