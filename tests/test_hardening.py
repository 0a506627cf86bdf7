"""Regression tests for what adversarial probes found (issue 15): each failed before its fix.
Numbers in the test names are the issue's items; the fuzz's findings come after them."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import warnings
import zipfile

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import serialization
from gpugrad.__main__ import main
from gpugrad.cli import train as cli_train

F = gg.nn.functional
torch = pytest.importorskip("torch")
TF = torch.nn.functional
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _t(array, requires_grad=False):
    return gg.tensor(np.asarray(array), requires_grad=requires_grad), torch.tensor(
        np.asarray(array), requires_grad=requires_grad
    )


# ---- 1: every target ignored -----------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, t: m.nn.functional.cross_entropy(x, t),
        lambda m, x, t: m.nn.functional.cross_entropy(x, t, label_smoothing=0.2),
        lambda m, x, t: m.nn.functional.cross_entropy(x, t, weight=x.detach()[0].abs() + 1),
        lambda m, x, t: m.nn.functional.nll_loss(m.nn.functional.log_softmax(x, 1), t),
        lambda m, x, t: m.nn.functional.cross_entropy(
            x.reshape(3, 2, 2), t.unsqueeze(1).expand(3, 2)
        ),
    ],
    ids=["plain", "label_smoothing", "weight", "nll_loss", "nd"],
)
def test_1_all_targets_ignored_gives_nan_loss_and_zero_gradient(call):
    data = np.random.default_rng(0).standard_normal((3, 4))
    target = np.full(3, -100)
    (gx, tx), (gt, tt) = _t(data, True), _t(target)
    gloss, tloss = call(gg, gx, gt), call(torch, tx, tt)
    gloss.backward()
    tloss.backward()
    assert math.isnan(gloss.item()) and math.isnan(tloss.item())
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    assert not np.isnan(gx.grad.numpy()).any()


def test_1_an_all_padding_batch_leaves_the_parameters_finite():
    gg.manual_seed(0)
    model = gg.nn.Linear(4, 3)
    opt = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for target in ([0, 1], [-100, -100], [2, 0]):
        opt.zero_grad()
        F.cross_entropy(model(gg.randn(2, 4)), gg.tensor(target)).backward()
        opt.step()
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())


# ---- 2: class weights are checked ------------------------------------------------------------
WEIGHT_LOSSES = {
    "cross_entropy": lambda m, x, t, w: m.nn.functional.cross_entropy(x, t, weight=w),
    "cross_entropy_probs": lambda m, x, t, w: m.nn.functional.cross_entropy(
        x, m.nn.functional.softmax(x.detach() * 2, 1), weight=w
    ),
    "nll_loss": lambda m, x, t, w: m.nn.functional.nll_loss(x, t, weight=w),
    "multi_margin_loss": lambda m, x, t, w: m.nn.functional.multi_margin_loss(x, t, weight=w),
}


@pytest.mark.parametrize("loss", sorted(WEIGHT_LOSSES))
@pytest.mark.parametrize("shape", [(5,), (2,), (3, 1), (1, 3), ()])
def test_2_weight_of_the_wrong_shape_is_refused(loss, shape):
    x, t = gg.randn(4, 3), gg.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match=rf"{loss.replace('_probs', '')}: weight .*\b3 classes"):
        WEIGHT_LOSSES[loss](gg, x, t, gg.ones(*shape))
    with pytest.raises((RuntimeError, ValueError)):  # torch refuses them too
        WEIGHT_LOSSES[loss](torch, torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), torch.ones(shape))


@pytest.mark.parametrize("loss", sorted(WEIGHT_LOSSES))
def test_2_weight_must_be_a_tensor_of_the_input_dtype(loss):
    x, t = gg.randn(4, 3), gg.tensor([0, 1, 2, 1])
    name = loss.replace("_probs", "")
    with pytest.raises(TypeError, match=rf"{name}: weight must be a Tensor"):
        WEIGHT_LOSSES[loss](gg, x, t, [1.0, 1.0, 1.0])
    if loss != "cross_entropy_probs":  # torch takes any weight dtype with probabilities
        with pytest.raises(TypeError, match=rf"{name}: weight .*int64"):
            WEIGHT_LOSSES[loss](gg, x, t, gg.tensor([1, 1, 1]))
        with pytest.raises(RuntimeError):
            WEIGHT_LOSSES[loss](
                torch,
                torch.randn(4, 3),
                torch.tensor([0, 1, 2, 1]),
                torch.ones(3, dtype=torch.float64),
            )


# ---- 3: unsupported dtypes never make a broken Tensor ----------------------------------------
def _rewrite_entry(path, dtype):
    """The file gg.save wrote, with its tensor t0 (and the manifest) turned into `dtype`."""
    with np.load(path) as npz:
        manifest = json.loads(npz["__gpugrad__"].tobytes())
        array = npz["t0"].astype(dtype)
    manifest["tree"]["items"][0][1]["dtype"] = np.dtype(dtype).name
    serialization._write_archive(str(path), manifest, [("t0", array)])


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.complex128, np.float128])
def test_3_load_refuses_a_tensor_of_an_unsupported_dtype(tmp_path, dtype):
    path = tmp_path / "odd.gg"
    gg.save({"w": gg.ones(3)}, path)
    _rewrite_entry(path, dtype)
    with pytest.raises(ValueError, match=rf"not a valid gpugrad file: .*{np.dtype(dtype).name}"):
        gg.load(path)


def test_3_numpy_arrays_of_other_integer_dtypes_still_round_trip(tmp_path):
    gg.save({"a": np.arange(3, dtype=np.uint16)}, tmp_path / "a.gg")
    back = gg.load(tmp_path / "a.gg")["a"]
    assert back.dtype == np.uint16 and back.tolist() == [0, 1, 2]


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64])
def test_3_tensor_of_an_unsupported_integer_dtype_is_a_type_error(dtype):
    with pytest.raises(TypeError, match=rf"tensor: .*{np.dtype(dtype).name}"):
        gg.tensor(np.ones(2, dtype))
    assert gg.tensor(np.ones(2, dtype), dtype=gg.int64).dtype == gg.int64  # a cast is fine


# ---- 4, 10, 11: the CLI checks its outputs and sizes before training ---------------------------
@pytest.fixture
def no_training(monkeypatch):
    """Make any training an error: these flags must fail first."""

    def fail(*args, **kwargs):
        raise AssertionError("trained before checking the arguments")

    monkeypatch.setattr(cli_train, "fit", fail)
    monkeypatch.setattr(gg.nn, "MLP", fail)


def _exits_2(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(["train", "--quiet", "--epochs", "1", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: gpugrad train" in err
    return err


@pytest.mark.parametrize("flag", ["--save", "--plot", "--grad-report"])
def test_4_output_path_that_is_a_directory(flag, tmp_path, capsys, no_training):
    assert "is a directory" in _exits_2([flag, str(tmp_path)], capsys)


@pytest.mark.parametrize("flag", ["--save", "--plot", "--grad-report"])
def test_4_empty_output_path(flag, capsys, no_training):
    assert f"{flag}: empty path" in _exits_2([flag, ""], capsys)


@pytest.mark.parametrize("flag", ["--save", "--plot", "--grad-report"])
def test_4_output_folder_missing(flag, tmp_path, capsys, no_training):
    assert "does not exist" in _exits_2([flag, str(tmp_path / "no" / "x.png")], capsys)


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs /sys")
@pytest.mark.parametrize("flag", ["--save", "--plot", "--grad-report"])
def test_4_output_folder_not_writable(flag, capsys, no_training):
    # sysfs refuses new files even to root: a stand-in for a read-only file system
    try:
        open("/sys/gpugrad-probe", "wb").close()
        os.unlink("/sys/gpugrad-probe")
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    assert "can't write" in _exits_2([flag, "/sys/model.png"], capsys)


def test_4_plot_format_matplotlib_cannot_write(tmp_path, capsys, no_training):
    assert "--plot" in _exits_2(["--plot", str(tmp_path / "curves.xyz")], capsys)


def test_10_plot_path_without_suffix_reports_the_file_it_wrote(tmp_path, capsys):
    target = tmp_path / "curves"
    assert main(["train", "--quiet", "--epochs", "1", "--hidden", "8", "--plot", str(target)]) == 0
    out = capsys.readouterr().out
    written = [name for name in os.listdir(tmp_path)]
    assert len(written) == 1
    assert f"to {tmp_path / written[0]}\n" in out


@pytest.mark.parametrize("hidden", ["99999999999999", "4000000000", "128,99999999999"])
def test_11_hidden_too_large_is_an_argument_error(hidden, capsys, no_training):
    err = _exits_2(["--hidden", hidden], capsys)
    assert "--hidden" in err and "memory" in err


# ---- 5: loss arguments out of range ----------------------------------------------------------
@pytest.mark.parametrize("smoothing", [2.0, 1.5, -0.1, math.nan])
@pytest.mark.parametrize("probs", [False, True])
def test_5_label_smoothing_out_of_range(smoothing, probs):
    x = gg.randn(3, 4)
    t = F.softmax(gg.randn(3, 4), 1) if probs else gg.tensor([0, 1, 3])
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(x, t, label_smoothing=smoothing)


@pytest.mark.parametrize(
    "p, y, bad",
    [
        (1.5, 1.0, "input"),
        (-0.5, 0.0, "input"),
        (math.nan, 1.0, "input"),
        (0.5, 1.5, "target"),
        (0.5, -1.0, "target"),
    ],
)
def test_5_binary_cross_entropy_values_outside_0_1(p, y, bad):
    gp, tp = _t([0.3, p])
    gy, ty = _t([1.0, y])
    with pytest.raises(RuntimeError, match=f"all elements of {bad} should be between 0 and 1"):
        TF.binary_cross_entropy(tp, ty)
    with pytest.raises(ValueError, match=f"binary_cross_entropy: all elements of {bad} should be"):
        F.binary_cross_entropy(gp, gy)


# ---- 6: empty reductions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: m.amax(x, 1),
        lambda m, x: m.amin(x, -1),
        lambda m, x: x.max(1)[0],
        lambda m, x: x.min(1, keepdim=True)[1],
        lambda m, x: x.argmax(1),
        lambda m, x: x.argmin(-1),
        lambda m, x: m.amax(x, (1,), keepdim=True),
        lambda m, x: m.logsumexp(x, 1),
    ],
)
def test_6_reducing_the_non_empty_dimension_of_an_empty_tensor(call):
    gx, tx = _t(np.zeros((0, 3), np.float32))
    got, want = call(gg, gx), call(torch, tx)
    assert tuple(got.shape) == tuple(want.shape) and got.dtype.name == str(want.dtype)[6:]


@pytest.mark.parametrize(
    "call, kind, name",
    [
        (lambda m, x: m.amax(x, 0), IndexError, "amax"),
        (lambda m, x: m.amin(x), RuntimeError, "amin"),
        (lambda m, x: x.max(0), IndexError, "max"),
        (lambda m, x: x.argmax(0), IndexError, "argmax"),
        (lambda m, x: x.argmin(), IndexError, "argmin"),
        (lambda m, x: x.max(), RuntimeError, "max"),
        (lambda m, x: x.reshape(-1).argmax(), IndexError, "argmax"),
    ],
)
def test_6_reducing_an_empty_dimension_is_an_error_naming_the_op(call, kind, name):
    gx, tx = _t(np.zeros((0, 3), np.float32))
    with pytest.raises(kind):
        call(torch, tx)
    with pytest.raises(kind, match=rf"^{name}: .*(empty|zero)"):
        call(gg, gx)


# ---- 7: in-place on a tensor whose elements share memory -------------------------------------
@pytest.mark.parametrize(
    "write",
    [
        lambda t: t.add_(1),
        lambda t: t.mul_(2),
        lambda t: t.__iadd__(1),
        lambda t: t.zero_(),
        lambda t: t.fill_(3.0),
        lambda t: t.copy_(gg.ones(3, 4)),
        lambda t: t.__setitem__(0, 5.0),
        lambda t: t[1].add_(1),
        lambda t: t.clamp_(0, 1),
        lambda t: t.normal_(),
    ],
)
def test_7_in_place_on_an_expanded_tensor(write):
    base = gg.zeros(3, 1)
    with pytest.raises(RuntimeError, match=r"expand.*clone\(\)"):
        write(base.expand(3, 4))
    assert base.numpy().tolist() == [[0.0], [0.0], [0.0]]  # nothing was written


def test_7_in_place_on_a_read_only_array():
    frozen = np.zeros(3, np.float32)
    frozen.flags.writeable = False
    t = gg.from_numpy(frozen)
    with pytest.raises(RuntimeError, match="add_: .*read-only"):
        t.add_(1)


def test_7_expanded_tensors_still_read_and_copy():
    t = gg.arange(3.0).reshape(3, 1).expand(3, 2)
    u = t.clone()
    u.add_(1)
    assert u.numpy().tolist() == [[1, 1], [2, 2], [3, 3]]


# ---- 8: cycles and deep nesting --------------------------------------------------------------
def test_8_save_of_a_self_referencing_structure(tmp_path):
    tree = {"a": [1, 2]}
    tree["a"].append(tree)
    with pytest.raises(ValueError, match=r"gg.save: obj\['a'\]\[2\] refers back to obj"):
        gg.save(tree, tmp_path / "x.gg")
    shared = [gg.ones(1)]
    gg.save({"a": shared, "b": shared}, tmp_path / "y.gg")  # shared, not cyclic: fine
    assert os.listdir(tmp_path) == ["y.gg"]


def test_8_nesting_too_deep_to_save(tmp_path):
    tree = leaf = []
    for _ in range(5000):
        leaf.append([])
        leaf = leaf[0]
    with pytest.raises(ValueError, match="gg.save: .*nested more than"):
        gg.save(tree, tmp_path / "deep.gg")


@pytest.mark.parametrize("depth", [900, 5000])
def test_8_load_of_a_deeply_nested_manifest(tmp_path, depth):
    path = tmp_path / "deep.gg"
    text = '{"format":"gpugrad","version":1,"tree":' + '{"type":"list","items":[' * depth
    text += '{"type":"none"}' + "]}" * depth + "}"
    with zipfile.ZipFile(path, "w") as archive, archive.open("__gpugrad__.npy", "w") as entry:
        np.lib.format.write_array(entry, np.frombuffer(text.encode(), np.uint8))
    with pytest.raises(ValueError, match="not a valid gpugrad file: .*nested"):
        gg.load(path)


def test_8_what_save_writes_at_its_depth_limit_loads(tmp_path):
    tree = leaf = []
    for _ in range(serialization.MAX_DEPTH - 1):
        leaf.append([])
        leaf = leaf[0]
    gg.save(tree, tmp_path / "limit.gg")
    assert gg.load(tmp_path / "limit.gg") == tree


# ---- 9: interrupted saves --------------------------------------------------------------------
_CHILD = """
import os, signal, sys
import gpugrad as gg
from gpugrad import serialization
path, how = sys.argv[1], sys.argv[2]
gg.save({{"v": 1}}, path)  # the old file
calls = []
real = serialization._write_array
def write(archive, name, array):
    real(archive, name, array)
    calls.append(name)
    if len(calls) == 2:  # mid-file: the manifest and one tensor are written
        {action}
serialization._write_array = write
try:
    gg.save({{"v": 2, "w": gg.ones(1000), "b": gg.ones(10)}}, path)
finally:
    print("after save", flush=True)
"""


def _child(tmp_path, action, *extra):
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(action=action))
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "m.gg"), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_9_sigterm_during_save_removes_the_temporary_and_still_terminates(tmp_path):
    done = _child(tmp_path, "os.kill(os.getpid(), signal.SIGTERM)", "term")
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert "after save" not in done.stdout  # the default action ran: the process ended there
    assert sorted(os.listdir(tmp_path)) == ["child.py", "m.gg"]
    assert gg.load(tmp_path / "m.gg") == {"v": 1}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_9_leftover_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    done = _child(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)", "kill")
    assert done.returncode == -signal.SIGKILL
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.gg.")
    other = tmp_path / ".other.gg.1.abc.tmp"  # another target's temporary: not ours to touch
    other.write_bytes(b"x")
    gg.save({"v": 3}, tmp_path / "m.gg")
    assert sorted(os.listdir(tmp_path)) == [".other.gg.1.abc.tmp", "child.py", "m.gg"]
    assert gg.load(tmp_path / "m.gg") == {"v": 3}


def test_9_a_live_save_to_the_same_path_is_left_alone(tmp_path):
    live = tmp_path / f".m.gg.{os.getpid()}.abcd1234.tmp"  # this process is alive
    live.write_bytes(b"x")
    gg.save({"v": 1}, tmp_path / "m.gg")
    assert live.exists()


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_9_sigterm_handlers_are_restored_and_user_handlers_kept(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    gg.save({"v": 1}, tmp_path / "a.gg")
    assert signal.getsignal(signal.SIGTERM) is before

    seen = []

    def handler(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:

        def write(archive, name, array, real=serialization._write_array):
            real(archive, name, array)
            if not seen:
                os.kill(os.getpid(), signal.SIGTERM)

        serialization._write_array, real = write, serialization._write_array
        try:
            gg.save({"v": 2, "w": gg.ones(3)}, tmp_path / "a.gg")  # the user's handler runs
        finally:
            serialization._write_array = real
        assert seen == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is handler
        assert gg.load(tmp_path / "a.gg")["v"] == 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_9_save_from_a_thread(tmp_path):
    errors = []

    def run():
        try:
            gg.save({"v": 1}, tmp_path / "t.gg")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == [] and gg.load(tmp_path / "t.gg") == {"v": 1}


# ---- 12: custom Functions and gradcheck ------------------------------------------------------
def test_12_function_forward_returning_a_number():
    class Three(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 3

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match=r"Three.forward returned int"):
        Three.apply(gg.ones(2, requires_grad=True))


def test_12_gradcheck_failure_in_float32_says_why():
    x = gg.randn(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(gg.autograd.GradcheckError, match="float32.*float64"):
            gg.autograd.gradcheck(lambda a: a.sigmoid(), (x,))


# ---- 13: messages that point the right way ---------------------------------------------------
def test_13_random_bytes_are_not_called_a_pickle(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="not a zip archive") as info:
        gg.load(path)
    assert "pickle" not in str(info.value)


def test_13_a_pickle_is_named_as_one(tmp_path):
    import pickle

    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(ValueError, match="pickle.*never"):
        gg.load(path)


def test_13_save_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "missing" / "m.gg"
    with pytest.raises(FileNotFoundError, match=r"gg.save: .*missing.*m\.gg") as info:
        gg.save({"v": 1}, target)
    assert ".tmp" not in str(info.value)
    with pytest.raises(IsADirectoryError, match="gg.save: .* is a directory"):
        gg.save({"v": 1}, tmp_path)


@pytest.mark.parametrize("spec", ["cpu:0", "cpu:1"])
def test_13_cpu_with_an_index_is_the_cpu(spec):
    assert gg.ones(2, device=spec).device == "cpu"
    assert torch.ones(2, device=spec).device.type == "cpu"
    assert gg.device(spec) == gg.device("cpu")


@pytest.mark.parametrize("spec", ["cpu:x", "cpu:-1", "cuda:-1", "cuda:", "cpu:"])
def test_13_malformed_device_strings(spec):
    with pytest.raises(RuntimeError):
        torch.device(spec)
    with pytest.raises(ValueError, match="device"):
        gg.device(spec)


# ---- what the differential fuzz (tests/test_fuzz_errors.py) found ----------------------------
def _same(got, want):
    assert tuple(got.shape) == tuple(want.shape)
    assert got.dtype.name == str(want.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "var", "std", "logsumexp"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_fuzz_reducing_over_an_empty_dim_tuple_reduces_every_dim(op, keepdim):
    gx, tx = _t(np.arange(6.0).reshape(2, 3))
    got = getattr(gg, op)(gx, dim=(), keepdim=keepdim)
    if op == "logsumexp" and not keepdim:  # torch fails there (see the fuzz's DIFFERENCES)
        assert got.shape == () and np.isclose(got.item(), np.log(np.exp(np.arange(6.0)).sum()))
        return
    _same(got, getattr(torch, op)(tx, dim=(), keepdim=keepdim))


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_fuzz_arg_reductions(op):
    with pytest.raises(TypeError, match=f"{op}: does not support bool"):
        getattr(gg.tensor([True, False]), op)()
    scalar, tscalar = _t(np.float32(2.5))
    for dim in (0, -1):
        _same(getattr(scalar, op)(dim, keepdim=True), getattr(tscalar, op)(dim, keepdim=True))
    with pytest.raises(IndexError, match=f"{op}: dimension 1 out of range"):
        getattr(scalar, op)(1)


@pytest.mark.parametrize("op", ["max", "min"])
def test_fuzz_max_min_of_a_0d_tensor_check_the_dim(op):
    with pytest.raises(IndexError, match=f"{op}: dimension 1 out of range"):
        getattr(gg.tensor(1.5), op)(1)
    assert getattr(gg.tensor(1.5), op)(-1).values.item() == 1.5


@pytest.mark.parametrize("op", ["var", "std"])
def test_fuzz_var_and_std_name_themselves(op):
    with pytest.raises(TypeError, match=f"{op}: expected a floating point tensor"):
        getattr(gg, op)(gg.tensor([1, 2, 3]))
    with pytest.raises(IndexError, match=f"{op}: dimension 2 out of range"):
        getattr(gg, op)(gg.ones(2, 2), dim=2)


@pytest.mark.parametrize(
    "call, kind, name",
    [
        (lambda m, x: m.cat([x[0, 0], x[0, 0]]), ValueError, "cat"),  # 0-d tensors
        (lambda m, x: x.reshape(6, -2), RuntimeError, "reshape"),  # NumPy took -2 for -1
        (lambda m, x: x.reshape(-1, -1), RuntimeError, "reshape"),
        (lambda m, x: x.view(4), RuntimeError, "view"),  # was named reshape
        (lambda m, x: m.flatten(x, 1, 0), ValueError, "flatten"),  # start after end
        (lambda m, x: m.flatten(x, 0, 2), IndexError, "flatten"),  # was taken modulo ndim
        (lambda m, x: m.flatten(x[0, 0], 0, 1), IndexError, "flatten"),
        (lambda m, x: x.permute(0, 5), IndexError, "permute"),  # 5 % 2 == 1 was accepted
        (lambda m, x: x.permute(0, 1, 2), ValueError, "permute"),
        (lambda m, x: x[0, 0].transpose(0, 1), IndexError, "transpose"),
        (lambda m, x: m.stack([x, x], 3), IndexError, "stack"),  # was named unsqueeze
        (lambda m, x: m.stack([x[0, 0], x[0]], 1), IndexError, "stack"),  # the dim first
        (lambda m, x: x[0, 0].expand(-2), ValueError, "expand"),  # NumPy's message
        (lambda m, x: x.expand(-1, 2, 3), ValueError, "expand"),  # -1 for a new dim
    ],
)
def test_fuzz_shape_op_arguments(call, kind, name):
    gx, tx = _t(np.ones((2, 3), np.float32))
    with pytest.raises((RuntimeError, IndexError, TypeError)):
        call(torch, tx)
    with pytest.raises(kind, match=rf"^{name}: "):
        call(gg, gx)


def test_fuzz_shape_ops_of_a_0d_tensor():
    gx, tx = _t(np.float32(2.0))
    for call in (
        lambda m, t: m.flatten(t, -1, 0),
        lambda m, t: t.transpose(0, -1),
        lambda m, t: m.stack([t, t], -1),
    ):
        _same(call(gg, gx), call(torch, tx))


def test_fuzz_an_empty_mask_must_match_the_indexed_dims():
    x = gg.zeros(3, 0)
    with pytest.raises(IndexError):
        torch.zeros(3, 0)[torch.zeros(0, dtype=torch.bool)]
    with pytest.raises(IndexError, match="index: a mask of shape"):
        x[gg.tensor(np.zeros(0, bool))]  # NumPy skips its check for an empty mask
    with pytest.raises(IndexError, match="index_put: |index: "):
        x[gg.tensor(np.zeros(0, bool))] = 1.0
    assert x[gg.tensor(np.ones(3, bool))].shape == (3, 0)


def test_fuzz_setitem_into_a_tensor_with_an_empty_dim():
    x = gg.zeros(3, 0, 4)  # NumPy gives empty arrays zero strides: not an expanded tensor
    x[2] = gg.ones(1, 4)
    assert x.shape == (3, 0, 4)


@pytest.mark.parametrize("value_shape", [(3, 1, 2), (2,)])
def test_fuzz_setitem_of_a_value_that_does_not_fit(value_shape):
    gx, tx = _t(np.zeros(4, np.float32))
    with pytest.raises(RuntimeError):
        tx[2] = torch.ones(value_shape)
    with pytest.raises(ValueError, match=r"index_put: a value of shape .* can't be assigned"):
        gx[2] = gg.ones(*value_shape)  # was NumPy's "setting an array element with a sequence"


def test_fuzz_setitem_of_a_one_element_value():
    gx, tx = _t(np.zeros(3, np.int64))
    gx[-1], tx[-1] = gg.tensor([7.0], dtype=gg.float64), torch.tensor([7.0], dtype=torch.float64)
    assert gx.tolist() == tx.tolist() == [0, 0, 7]


@pytest.mark.parametrize(
    "shapes",
    [
        ((), (2, 3), None),
        ((3,), (3, 3), (4,)),
        ((1, 4, 4), (2, 4), (3,)),
        ((2, 3), (1, 2, 3), None),
    ],
)
def test_fuzz_linear_checks_its_arguments(shapes):
    x_shape, w_shape, b_shape = shapes
    args = [np.ones(x_shape, np.float32), np.ones(w_shape, np.float32)]
    if b_shape is not None:
        args.append(np.ones(b_shape, np.float32))
    with pytest.raises(RuntimeError):
        TF.linear(*(torch.tensor(a) for a in args))
    with pytest.raises(
        ValueError, match="^linear: "
    ):  # were 'tuple index out of range', 'add: ...'
        F.linear(*(gg.tensor(a) for a in args))


@pytest.mark.parametrize(
    "call",
    [
        lambda m, b, f, i: b - f,
        lambda m, b, f, i: f - b,
        lambda m, b, f, i: f - True,
        lambda m, b, f, i: 2 - b,
        lambda m, b, f, i: m.sub(i, b, alpha=2),
        lambda m, b, f, i: -b,
        lambda m, b, f, i: m.abs(b),
        lambda m, b, f, i: m.add(f, f, alpha=True),
        lambda m, b, f, i: m.add(i, i, alpha=0.5),
        lambda m, b, f, i: m.sub(i, i, alpha=1.0),
        lambda m, b, f, i: b**b,
        lambda m, b, f, i: i ** (-1),
        lambda m, b, f, i: b ** (-1),
    ],
)
def test_fuzz_arithmetic_refused_as_torch_does(call):
    arrays = (np.array([True, False]), np.array([1.5, -2.0], np.float32), np.array([2, -3]))
    with pytest.raises(RuntimeError):  # NotImplementedError is one too
        call(torch, *map(torch.tensor, arrays))
    with pytest.raises((TypeError, ValueError), match=r"^(sub|neg|abs|add|pow): "):
        call(gg, *map(gg.tensor, arrays))


@pytest.mark.parametrize(
    "call",
    [
        lambda m, b, i: 2**i,
        lambda m, b, i: i**i,
        lambda m, b, i: (-1) ** i,
        lambda m, b, i: b**True,
        lambda m, b, i: b**2,
        lambda m, b, i: 2**b,
        lambda m, b, i: m.clamp(i, max=0.5),
        lambda m, b, i: m.clamp(b, max=1),
        lambda m, b, i: m.add(b, b, alpha=True),
    ],
)
def test_fuzz_integer_and_bool_arithmetic_as_torch(call):
    arrays = (np.array([True, False, True, False]), np.array([-1, 2, 0, -3]))
    _same(call(gg, *map(gg.tensor, arrays)), call(torch, *map(torch.tensor, arrays)))


@pytest.mark.parametrize(
    "op, call",
    [
        ("gelu", lambda m, x: m.nn.functional.gelu(x)),
        ("silu", lambda m, x: m.nn.functional.silu(x)),
        ("softplus", lambda m, x: m.nn.functional.softplus(x)),
        ("leaky_relu", lambda m, x: m.nn.functional.leaky_relu(x)),
        ("softmax", lambda m, x: m.nn.functional.softmax(x, 0)),
        ("log_softmax", lambda m, x: m.nn.functional.log_softmax(x, 0)),
        ("relu", lambda m, x: m.relu(x.bool())),
    ],
)
def test_fuzz_activations_refuse_integer_tensors_as_torch(op, call):
    with pytest.raises(RuntimeError):
        call(torch, torch.tensor([1, -2]))
    with pytest.raises(TypeError, match=f"^{op}: "):
        call(gg, gg.tensor([1, -2]))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_fuzz_softmax_dim_errors_name_the_op(op):
    with pytest.raises(IndexError, match=f"^{op}: dimension 2 out of range"):  # was 'amax: ...'
        getattr(F, op)(gg.ones(2, 3), dim=2)


def test_fuzz_relu_of_a_0d_integer_tensor_is_a_tensor():
    out = gg.relu(gg.tensor(-3))
    assert isinstance(out.array, np.ndarray) and out.item() == 0  # was a NumPy scalar inside


@pytest.mark.parametrize(
    "op, call",
    [
        ("cross_entropy", lambda m, i, f, t: m.nn.functional.cross_entropy(i, t)),
        ("nll_loss", lambda m, i, f, t: m.nn.functional.nll_loss(i, t)),
        ("multi_margin_loss", lambda m, i, f, t: m.nn.functional.multi_margin_loss(i, t)),
        ("binary_cross_entropy", lambda m, i, f, t: m.nn.functional.binary_cross_entropy(i, i)),
        (
            "binary_cross_entropy",
            lambda m, i, f, t: m.nn.functional.binary_cross_entropy(f.double() / 9, f / 9),
        ),
        (
            "binary_cross_entropy_with_logits",
            lambda m, i, f, t: m.nn.functional.binary_cross_entropy_with_logits(i, f),
        ),
        (
            "binary_cross_entropy_with_logits",
            lambda m, i, f, t: m.nn.functional.binary_cross_entropy_with_logits(f, i),
        ),
        ("mse_loss", lambda m, i, f, t: m.nn.functional.mse_loss(i, i)),
        ("l1_loss", lambda m, i, f, t: m.nn.functional.l1_loss(i, i)),
        ("cross_entropy", lambda m, i, f, t: m.nn.functional.cross_entropy(f[0], i[0])),
    ],
)
def test_fuzz_loss_dtypes_as_torch(op, call):
    i, t = np.array([[1, 2, 0], [0, 1, 1]]), np.array([0, 2])
    f = i.astype(np.float32)
    with pytest.raises(RuntimeError):
        call(torch, torch.tensor(i), torch.tensor(f), torch.tensor(t))
    with pytest.raises(TypeError, match=f"^{op}: "):  # they computed in float32, or promoted
        call(gg, gg.tensor(i), gg.tensor(f), gg.tensor(t))


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: m.nn.functional.cross_entropy(x.reshape(4, 0), x.reshape(4, 0)),
        lambda m, x: m.nn.functional.cross_entropy(
            x.reshape(4, 0, 0), m.zeros(4, 0, dtype=m.int64)
        ),
        lambda m, x: m.nn.functional.cross_entropy(
            x.reshape(0, 0), m.zeros(0, dtype=m.int64), reduction="none", ignore_index=-1
        ),
        lambda m, x: m.nn.functional.cross_entropy(
            x.reshape(3, 0), m.full((3,), -1), ignore_index=-1, reduction="sum"
        ),
        lambda m, x: m.nn.functional.nll_loss(
            x.reshape(1, 0, 0), m.zeros(1, 0, dtype=m.int64), reduction="none"
        ),
        lambda m, x: m.nn.functional.cross_entropy(
            x.reshape(3, 0), x.reshape(3, 0), label_smoothing=1.0
        ),
    ],
)
def test_fuzz_losses_with_no_classes(call):
    gx, tx = _t(np.zeros(0, np.float64))  # were reshape errors, 0 / 0 in Python, a 0 for NaN
    _same(call(gg, gx), call(torch, tx))


@pytest.mark.parametrize("op", ["nll_loss", "cross_entropy", "multi_margin_loss"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_fuzz_a_1d_input_takes_a_target_of_shape_1(op, reduction):
    x = np.log(np.array([0.2, 0.5, 0.3]))
    _same(
        getattr(F, op)(gg.tensor(x), gg.tensor([1]), reduction=reduction),
        getattr(TF, op)(torch.tensor(x), torch.tensor([1]), reduction=reduction),
    )


def test_fuzz_loss_shapes_and_weights_as_torch():
    with pytest.raises(ValueError, match="^multi_margin_loss: expected a 1-D or 2-D input"):
        F.multi_margin_loss(gg.ones(2, 3, 2), gg.zeros(2, 2, dtype=gg.int64))
    x, p, w = gg.randn(2, 3), F.softmax(gg.randn(2, 3), 1), gg.ones(3, dtype=gg.float64)
    assert F.cross_entropy(x, p, weight=w).dtype == gg.float64  # torch promotes here


def test_fuzz_tensor_of_a_numpy_scalar_keeps_its_dtype():
    for value in (np.float64(1.5), np.int32(3), np.float16(2), np.uint8(7)):
        assert gg.tensor(value).dtype.name == str(torch.tensor(value).dtype)[6:]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_fuzz_ignored_rows_are_zero_whatever_their_logits(reduction):
    data = np.array([[np.nan, 1.0, 2.0], [0.5, np.inf, -1.0], [0.1, 0.2, 0.3]])
    for smoothing in (0.0, 0.2):
        (gx, tx), (gt, tt) = _t(data, True), _t(np.array([-100, -100, 1]))
        got = F.cross_entropy(gx, gt, reduction=reduction, label_smoothing=smoothing)
        want = TF.cross_entropy(tx, tt, reduction=reduction, label_smoothing=smoothing)
        _same(got.detach(), want.detach())  # the NaN / inf rows gave NaN, not 0
        got.sum().backward()
        want.sum().backward()
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_fuzz_more_loss_arguments_as_torch():
    for reduction in ("none", "mean"):  # a 0-d input to multi_margin_loss is one class
        _same(
            F.multi_margin_loss(gg.tensor(0.5), gg.tensor(0), reduction=reduction),
            TF.multi_margin_loss(torch.tensor(0.5), torch.tensor(0), reduction=reduction),
        )
    with pytest.raises(ValueError, match="^multi_margin_loss: .*at least one class"):
        F.multi_margin_loss(gg.zeros(0, 0), gg.zeros(0, dtype=gg.int64))
    x, p = gg.randn(2, 3), F.softmax(gg.randn(2, 3), 1)  # probabilities take an int weight
    _same(
        F.cross_entropy(x, p, weight=gg.tensor([1, 2, 1])),
        TF.cross_entropy(
            torch.tensor(x.numpy()), torch.tensor(p.numpy()), weight=torch.tensor([1, 2, 1])
        ),
    )
    b = np.array([True, False])
    _same(
        gg.add(gg.tensor(b), gg.tensor(b), alpha=2), torch.add(*map(torch.tensor, (b, b)), alpha=2)
    )


def test_fuzz_where_checks_its_condition():
    cond, x = np.array([1.0, 0.0]), np.array([1.0, 2.0])
    with pytest.raises(RuntimeError):
        torch.where(torch.tensor(cond), torch.tensor(x), 0.0)
    with pytest.raises(TypeError, match="^where: expected a bool condition"):  # was cast
        gg.where(gg.tensor(cond), gg.tensor(x), 0.0)
    with pytest.raises(ValueError, match=r"^where: shapes \(3,\) \(condition\)"):  # NumPy's text
        gg.where(gg.tensor([True, False, True]), gg.ones(2), gg.zeros(2))


def test_fuzz_linear_act_checks_its_bias():
    with pytest.raises(ValueError, match="^linear_act: bias of shape"):  # was 'add: shapes ...'
        F.linear_act(gg.ones(2, 3), gg.ones(4, 3), gg.ones(5), "relu")


@pytest.mark.parametrize(
    "op, call",
    [
        ("sum", lambda m, x: m.sum(x, dim=1.0)),
        ("amax", lambda m, x: m.amax(x, dim="0")),
        ("mean", lambda m, x: m.mean(x, dim=(0, None))),
        ("var", lambda m, x: m.var(x, dim=1.0)),
        ("logsumexp", lambda m, x: m.logsumexp(x, 1.0)),
        ("squeeze", lambda m, x: x.squeeze(1.0)),
        ("flatten", lambda m, x: m.flatten(x, 5, 1.0)),
        ("transpose", lambda m, x: x.transpose(5, "0")),
        ("cat", lambda m, x: m.cat([x, x], None)),
        ("stack", lambda m, x: m.stack([x, x], 1.0)),
        ("unsqueeze", lambda m, x: x.unsqueeze("0")),
        ("gather", lambda m, x: m.gather(x, None, x.long())),
        ("argmax", lambda m, x: x.argmax(1.0)),
        ("max", lambda m, x: x.max(1.0)),
        ("add", lambda m, x: m.add(x, x, alpha="2")),
        ("clamp", lambda m, x: m.clamp(x, min="1")),
        ("leaky_relu", lambda m, x: m.nn.functional.leaky_relu(x, "0.1")),
        ("softplus", lambda m, x: m.nn.functional.softplus(x, beta=None)),
        ("softmax", lambda m, x: m.nn.functional.softmax(x, dim="1")),
    ],
)
def test_fuzz_arguments_of_the_wrong_type(op, call):
    gx, tx = _t(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError):  # torch's argument parser
        call(torch, tx)
    with pytest.raises(TypeError, match=f"^{op}: "):  # were raw 'float object is not iterable' ...
        call(gg, gx)


def test_fuzz_softmax_wants_a_dim_and_more_torch_rules():
    with pytest.raises(TypeError, match="^softmax: dim must be given"):  # reduced over all
        F.softmax(gg.ones(2, 3), dim=None)
    _same(
        gg.gather(gg.tensor([5.0, 6.0]), -1, gg.tensor(1)),  # a 0-d index counts as 1-d
        torch.gather(torch.tensor([5.0, 6.0]), -1, torch.tensor(1)),
    )
    b = np.array([True, False])
    with pytest.raises(RuntimeError):
        torch.clamp(torch.tensor(b), torch.tensor(b), torch.tensor(b))
    with pytest.raises(TypeError, match="^clamp: "):
        gg.clamp(gg.tensor(b), gg.tensor(b), gg.tensor(b))
    _same(
        gg.clamp(gg.tensor(b), min=gg.tensor(b)), torch.clamp(torch.tensor(b), min=torch.tensor(b))
    )


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_fuzz_gelu_of_a_0d_tensor_on_the_cpu(approximate):
    gx, tx = _t(np.float32(0.7))  # erf of NumPy's 0-d result looked for cupyx
    _same(F.gelu(gx, approximate=approximate), TF.gelu(tx, approximate=approximate))


# ---- the fuzz over the ops that joined the table after the rebase (issue 14's families) ------
@pytest.mark.parametrize(
    "op, call",
    [
        ("unbind", lambda m, x, i: x[0, 0].unbind(0)),
        ("narrow", lambda m, x, i: x[0, 0].narrow(0, 0, 1)),
        ("split", lambda m, x, i: x[0, 0].split(1)),
        ("chunk", lambda m, x, i: x.chunk("2")),
        ("narrow", lambda m, x, i: x.narrow(0, "0", 1)),
        ("index_select", lambda m, x, i: x.index_select(0, i * 9)),
        ("index_select", lambda m, x, i: x.index_select(0, i.reshape(1, 2))),
        ("index_select", lambda m, x, i: x.index_select(None, i)),
        ("roll", lambda m, x, i: m.roll(x, "2")),
        ("roll", lambda m, x, i: m.roll(x[0, 0], 1, 0)),
        ("tile", lambda m, x, i: m.tile(x, (-1, 2))),
        ("tril", lambda m, x, i: m.tril(x, "1")),
        ("diag", lambda m, x, i: m.diag(x, "1")),
        ("masked_fill", lambda m, x, i: x.masked_fill(m.ones(3, 4) > 0, 1.0)),
        ("masked_fill", lambda m, x, i: x.masked_fill(x > 0, None)),
        ("view", lambda m, x, i: x.view_as(m.zeros(4))),
        ("sort", lambda m, x, i: m.sort(x[0, 0], 1)),
        ("cumsum", lambda m, x, i: m.cumsum(x[0, 0], 1)),
        ("topk", lambda m, x, i: m.topk(x, "1")),
        ("topk", lambda m, x, i: m.topk(x > 0, 1)),
        ("addmm", lambda m, x, i: m.addmm(x, x, x.T, alpha="2")),
        ("addmm", lambda m, x, i: m.addmm(m.ones(3, 3), x, x.T, beta=0)),
        ("bmm", lambda m, x, i: m.bmm(x, x)),
        ("dot", lambda m, x, i: m.dot(x, x)),
        ("mv", lambda m, x, i: m.mv(x.T, m.ones(3))),
        ("einsum", lambda m, x, i: m.einsum("i->ii", x[0])),
        ("elu", lambda m, x, i: m.nn.functional.elu(i)),
        ("mish", lambda m, x, i: m.nn.functional.mish(i)),
        ("logsigmoid", lambda m, x, i: m.nn.functional.logsigmoid(i)),
        ("hardtanh", lambda m, x, i: m.nn.functional.hardtanh(i > 0)),
        ("relu6", lambda m, x, i: m.nn.functional.relu6(i > 0)),
        ("prelu", lambda m, x, i: m.nn.functional.prelu(x[0], m.ones(3))),
        ("prelu", lambda m, x, i: m.nn.functional.prelu(x, m.ones(2, dtype=m.float64))),
        ("prelu", lambda m, x, i: m.nn.functional.prelu(x, m.ones(1, 1))),
        ("layer_norm", lambda m, x, i: m.nn.functional.layer_norm(i, [2])),
        ("layer_norm", lambda m, x, i: m.nn.functional.layer_norm(x, [4])),
        (
            "batch_norm",
            lambda m, x, i: m.nn.functional.batch_norm(x[:1], None, None, training=True),
        ),
        ("batch_norm", lambda m, x, i: m.nn.functional.batch_norm(i.reshape(1, 2, 1), None, None)),
        ("normalize", lambda m, x, i: m.nn.functional.normalize(x, dim=2)),
        ("normalize", lambda m, x, i: m.nn.functional.normalize(i, dim=0)),
        ("embedding", lambda m, x, i: m.nn.functional.embedding(i, x, padding_idx=5)),
        ("huber_loss", lambda m, x, i: m.nn.functional.huber_loss(i, i.float())),
        ("huber_loss", lambda m, x, i: m.nn.functional.huber_loss(x, x, "batchmean", delta=-1.0)),
        ("kl_div", lambda m, x, i: m.nn.functional.kl_div(x, i)),
        ("smooth_l1_loss", lambda m, x, i: m.nn.functional.smooth_l1_loss(i, i)),
    ],
)
def test_fuzz_more_ops_refuse_what_torch_refuses(op, call):
    x, i = np.arange(6.0).reshape(2, 3), np.array([0, 1])
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError, AssertionError)):
        call(torch, torch.tensor(x), torch.tensor(i))
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError), match=rf"^{op}(\(\))?: "):
        call(gg, gg.tensor(x), gg.tensor(i))


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: m.chunk(x[:, :0], 3, 1),  # three empty pieces, as torch
        lambda m, x: m.tile(x[:0], (1, -1, 3)),  # a negative count of an empty dim
        lambda m, x: x[0, 0].index_select(0, m.tensor(0)),
        lambda m, x: m.nn.functional.hardtanh(m.tensor([-2, 0, 3]), -1.5, 2.7),  # ints stay ints
        lambda m, x: m.nn.functional.relu6(m.tensor([-3, 2, 9])),
        lambda m, x: m.norm(x, 2, ()),  # dim=() is every dim
        lambda m, x: m.nn.functional.smooth_l1_loss(
            m.tensor([1, 5]), m.tensor([2, 2]), reduction="sum", beta=0.0
        ),
    ],
)
def test_fuzz_more_ops_as_torch(call):
    x = np.arange(6.0).reshape(2, 3)
    got, want = call(gg, gg.tensor(x)), call(torch, torch.tensor(x))
    for g, w in zip(got, want) if isinstance(got, tuple) else [(got, want)]:
        _same(g, w)


def test_fuzz_normalize_of_a_0d_tensor_checks_its_dim():
    with pytest.raises(IndexError, match="^normalize: "):  # was named norm
        F.normalize(gg.tensor(2.0), dim=1)


def test_batch_norm_takes_weight_and_bias_of_any_shape_holding_one_value_per_channel():
    """torch checks weight / bias by their element count (a 0-d weight for one channel, a
    (3, 1) one for three); running statistics must be 1-D there and here. (torch's own backward
    fails for a 0-d weight; gpugrad's gradient takes the weight's shape.)"""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for channels, wshape in ((1, ()), (1, (1, 1)), (3, (3, 1))):
        x = rng.standard_normal((4, channels))
        w, b = rng.standard_normal(wshape) + 2, rng.standard_normal(wshape)
        outs = [lib.nn.functional.batch_norm(
            lib.tensor(x), lib.zeros(channels, dtype=lib.float64),
            lib.ones(channels, dtype=lib.float64), lib.tensor(w), lib.tensor(b)).numpy()
            for lib in (torch, gg)]
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)
        wt = gg.tensor(w, requires_grad=True)
        gg.nn.functional.batch_norm(gg.tensor(x), gg.zeros(channels, dtype=gg.float64),
                                    gg.ones(channels, dtype=gg.float64), wt).sum().backward()
        assert wt.grad.shape == wshape
    with pytest.raises(RuntimeError, match="running_mean must be 1-D"):
        gg.nn.functional.batch_norm(gg.ones(4, 1), gg.zeros(1, 1), gg.ones(1))
