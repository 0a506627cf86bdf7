"""`python -m gpugrad train` / `bench` and the examples: outputs, files, argument errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The digits MLP's matrices are tiny: on a small shared machine a multi-threaded BLAS spends
# its time spinning, so the training runs here use one BLAS thread.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _run(*args, timeout=120):
    env = {
        **os.environ,
        **ONE_THREAD,
        "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _accuracy(text: str) -> float:
    match = re.search(r"test accuracy (\d+\.\d+)%", text)
    assert match, text
    return float(match.group(1)) / 100


def test_train_few_epochs_reaches_sensible_accuracy_and_summary(capsys):
    assert main(["train", "--epochs", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert _accuracy(out) >= 0.85
    assert re.search(r"\d+ steps in [\d.]+ s wall \(\d+ steps/s\)", out)
    assert "device cpu" in out or "device cuda" in out
    assert "backend numpy" in out or "backend cupy" in out
    assert "69 steps" in out  # 3 epochs x ceil(1437 / 64) batches


def test_train_options_sigmoid_adamw_progress_bar(capsys):
    assert (
        main(
            [
                "train",
                "--epochs",
                "2",
                "--hidden",
                "32",
                "--activation",
                "tanh",
                "--optimizer",
                "adamw",
                "--lr",
                "0.005",
                "--batch-size",
                "128",
                "--device",
                "cpu",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "MLP 64-32-10 (tanh)" in captured.out and "adamw lr=0.005" in captured.out
    assert "epoch 2/2" in captured.err and "test_acc=" in captured.err and "loss=" in captured.err
    assert _accuracy(captured.out) > 0.5


def test_train_is_reproducible_with_seed(capsys):
    main(["train", "--epochs", "1", "--quiet", "--seed", "5"])
    first = _accuracy(capsys.readouterr().out)
    main(["train", "--epochs", "1", "--quiet", "--seed", "5"])
    assert _accuracy(capsys.readouterr().out) == first


def test_save_then_load(tmp_path, capsys):
    path = tmp_path / "mlp.gg"
    assert main(["train", "--epochs", "2", "--quiet", "--hidden", "16,8", "--save", str(path)]) == 0
    accuracy = _accuracy(capsys.readouterr().out)
    state = gg.load(path)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    model = gg.nn.MLP([64, 16, 8, 10])
    model.load_state_dict(state)
    from gpugrad.data import load_digits

    data = load_digits(seed=0)
    with gg.no_grad():
        predicted = model(data.X_test).argmax(1).numpy()
    assert np.mean(predicted == data.y_test.numpy()) == pytest.approx(accuracy, abs=1e-4)


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    assert main(["train", "--epochs", "2", "--quiet", "--hidden", "16", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in capsys.readouterr().out


def test_epoch_callbacks_are_called(monkeypatch, capsys):
    from gpugrad.cli import train

    seen = []
    monkeypatch.setattr(
        train,
        "epoch_callbacks",
        lambda args: [lambda stats, model, opt: seen.append((stats.epoch, stats.steps))],
    )
    main(["train", "--epochs", "2", "--quiet", "--hidden", "8"])
    assert seen == [(1, 23), (2, 23)]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "abc"], "--hidden"),
        (["--hidden", "128,0"], "positive layer widths"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "two"], "positive integer"),
        (["--lr", "-1"], "--lr"),
        (["--batch-size", "-5"], "--batch-size"),
        (["--momentum", "1.5"], "momentum must be in"),
        (["--optimizer", "lbfgs"], "invalid choice"),
        (["--activation", "gelu"], "invalid choice"),
        (["--dataset", "mnist"], "invalid choice"),
        (["--optimizer", "adamw", "--momentum", "0.5"], "sgd only"),
        (["--save", "/no/such/dir/m.gg"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_message(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: gpugrad train" in err


@pytest.mark.skipif(gg.cuda.is_available(), reason="checks the message without a GPU")
def test_device_cuda_without_gpu_says_why(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--device", "cuda", "--epochs", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--device cuda: no usable GPU" in err
    assert gg.backend.cuda_unavailable_reason() in err


@pytest.mark.parametrize("flag", ["--plot", "--grad-report"])
def test_plot_without_matplotlib_is_a_clear_error(flag, monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    monkeypatch.setattr(gg.nn, "MLP", None)  # no training before the error (issue 15)
    with pytest.raises(SystemExit) as info:
        main(["train", flag, str(tmp_path / "x.png")])
    assert info.value.code == 2 and f"{flag} needs matplotlib" in capsys.readouterr().err


def test_no_command_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--hidden" in out and "--grad-report" in out


# ---- end to end, in fresh interpreters --------------------------------------------------------
def test_python_m_gpugrad_train():
    result = _run("-m", "gpugrad", "train", "--epochs", "2", "--hidden", "32", "--quiet")
    assert result.returncode == 0, result.stderr
    assert _accuracy(result.stdout) > 0.8


def test_python_m_gpugrad_bad_argument():
    result = _run("-m", "gpugrad", "train", "--epochs", "0")
    assert result.returncode == 2 and "--epochs" in result.stderr


def test_example_train_mlp():
    result = _run(os.path.join("examples", "train_mlp.py"))
    assert result.returncode == 0, result.stderr
    match = re.search(r"final test accuracy (\d+\.\d+)%", result.stdout)
    assert match and float(match.group(1)) >= 97.0, result.stdout


def test_example_pytorch_port():
    """The PyTorch quickstart's program, unchanged but for its imports (examples/pytorch_port.py;
    with torch's imports it runs on PyTorch, reaching about 98%)."""
    result = _run(os.path.join("examples", "pytorch_port.py"))
    assert result.returncode == 0, result.stderr
    match = re.search(r"final test accuracy (\d+\.\d+)%", result.stdout)
    assert match and float(match.group(1)) >= 95.0, result.stdout
    assert "Linear(in_features=64, out_features=128, bias=True)" in result.stdout


def test_example_custom_function():
    result = _run(os.path.join("examples", "custom_function.py"))
    assert result.returncode == 0, result.stderr
    assert "gradcheck passed" in result.stdout
    assert "XOR predictions [0.0, 1.0, 1.0, 0.0]" in result.stdout


def test_bench_dispatches_to_the_packaged_harness(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--help"])
    assert info.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_grad_report_prints_tables_and_plots(tmp_path, capsys):
    path = tmp_path / "flow.png"
    assert main(["train", "--epochs", "2", "--quiet", "--grad-report", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("gradient norms, epoch") == 2
    assert re.search(r"0\.weight\s+\d+\s+\d\.\d+e[-+]\d+", out)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
