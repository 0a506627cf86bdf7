"""`gpugrad train --data mnist:DIR | fashion-mnist:DIR | csv:PATH | npz:PATH`, --target,
--scheduler, --clip-grad and the optimizers beyond sgd / adamw, on small files the tests write."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.__main__ import main
from tests.test_cli import _one_blas_thread  # noqa: F401  (autouse: one BLAS thread here too)
from tests.test_datasets import _write_mnist


def _train(*args):
    return main(["train", "--epochs", "1", "--quiet", "--hidden", "8", *args])


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
def test_idx_datasets(tmp_path, capsys, kind):
    _write_mnist(tmp_path, n_train=40, n_test=10, zipped=kind == "mnist")
    assert _train("--data", f"{kind}:{tmp_path}", "--batch-size", "16") == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "3 steps" in out  # ceil(40 / 16)


def test_csv_with_target_scheduler_clip_and_optimizers(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    rows = ["a,label,b,c"] + [
        f"{x[0]},{lab},{x[1]},{x[2]}" for x, lab in zip(X, labels, strict=True)
    ]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    for optimizer, scheduler in (
        ("nadam", "onecycle"),
        ("rmsprop", "plateau"),
        ("adagrad", "cosine"),
        ("adadelta", "step"),
        ("radam", "exponential"),
        ("adamax", "none"),
    ):
        assert (
            _train(
                "--data",
                f"csv:{path}",
                "--target",
                "label",
                "--optimizer",
                optimizer,
                "--scheduler",
                scheduler,
                "--clip-grad",
                "0.5",
                "--epochs",
                "3",
            )
            == 0
        )
    out = capsys.readouterr().out
    assert out.count("test accuracy") == 6
    assert _train("--data", f"csv:{path}", "--target", "1", "--epochs", "2") == 0  # a column index


def test_npz_and_header_line(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "t.npz", x=rng.standard_normal((30, 4)), y=rng.integers(3, 6, 30))
    assert (
        main(
            [
                "train",
                "--epochs",
                "1",
                "--hidden",
                "8",
                "--data",
                f"npz:{tmp_path / 't.npz'}",
                "--scheduler",
                "step",
                "--clip-grad",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "MLP 4-8-3 (relu) on npz: 24 train / 6 test" in out
    assert "step schedule | clip-grad 1" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "imagenet"], "--data imagenet: expected digits, mnist:DIR"),
        (["--data", "mnist:/no/such/dir"], "is not a directory"),
        (["--data", "csv:/no/such.csv"], "--data csv:/no/such.csv: "),
        (["--scheduler", "warm"], "invalid choice: 'warm'"),
        (["--clip-grad", "-1"], "expected a positive finite number"),
        (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    ],
)
def test_bad_data_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        _train(*args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_missing_idx_files_and_non_integer_target(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _train("--data", f"mnist:{tmp_path}")
    err = capsys.readouterr().err
    assert (
        "train-images-idx3-ubyte" in err
        and "t10k-labels-idx1-ubyte" in err
        and "does not download" in err
    )
    (tmp_path / "r.csv").write_text("a,b\n" + "\n".join(f"{i},{i / 3}" for i in range(10)) + "\n")
    with pytest.raises(SystemExit):
        _train("--data", f"csv:{tmp_path / 'r.csv'}")
    assert "non-integer numbers" in capsys.readouterr().err
    assert gg.data.CSVDataset(tmp_path / "r.csv").targets.dtype == gg.float32
