"""What `gpugrad train`'s --data, --optimizer, --scheduler and --clip-grad build: the train /
test tensors of a dataset spec, an optimizer from its name, an lr schedule wired into the loop.
Errors are ValueErrors whose text names the flag, for argparse to report."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

import gpugrad as gg
from gpugrad.tensor import Tensor

DATA_HELP = (
    "digits (scikit-learn's bundled 8x8 digits), mnist:DIR or fashion-mnist:DIR (the four IDX "
    "files, raw or .gz, in DIR; nothing is downloaded), csv:PATH or npz:PATH (a table: the "
    "target column / array is --target, by default the last column / y; features are "
    "standardized with the training rows' mean and std; 20%% of the rows, stratified, are held "
    "out for testing)"
)
# lr, weight decay when not given on the command line
OPTIMIZER_DEFAULTS = {
    "sgd": {"lr": 0.1, "weight_decay": 0.0},
    "adamw": {"lr": 5e-3, "weight_decay": 1e-2},
    "adam": {"lr": 5e-3, "weight_decay": 0.0},
    "nadam": {"lr": 5e-3, "weight_decay": 0.0},
    "radam": {"lr": 5e-3, "weight_decay": 0.0},
    "adamax": {"lr": 5e-3, "weight_decay": 0.0},
    "rmsprop": {"lr": 1e-3, "weight_decay": 0.0},
    "adagrad": {"lr": 5e-2, "weight_decay": 0.0},
    "adadelta": {"lr": 1.0, "weight_decay": 0.0},
}
OPTIMIZERS = {
    "sgd": "SGD",
    "adamw": "AdamW",
    "adam": "Adam",
    "nadam": "NAdam",
    "radam": "RAdam",
    "adamax": "Adamax",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}
SCHEDULERS = {
    "none": "constant lr",
    "step": "StepLR: lr x 0.1 after each third of the epochs",
    "exponential": "ExponentialLR: lr x 0.9 each epoch",
    "cosine": "CosineAnnealingLR over all epochs, down to 0",
    "onecycle": "OneCycleLR up to --lr and down again, stepped every batch",
    "plateau": "ReduceLROnPlateau: lr x 0.5 when the training loss stalls for 2 epochs",
}


@dataclass
class Split:
    """Float32 features (N, F) and int64 labels 0..classes-1, train and test, on a device."""

    name: str
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    classes: int


def load_data(spec: str, target, seed: int, device) -> Split:
    """The dataset a --data spec names, split and placed on device."""
    kind, _, where = spec.partition(":")
    kind = kind.lower()
    if kind == "digits" and not where:
        data = gg.data.load_digits(seed=seed, device=device)
        return Split("digits", *data, classes=10)
    if not where or kind not in ("mnist", "fashion-mnist", "csv", "npz"):
        raise ValueError(
            f"--data {spec}: expected digits, mnist:DIR, fashion-mnist:DIR, csv:PATH or npz:PATH"
        )
    if kind in ("mnist", "fashion-mnist"):
        if not os.path.isdir(where):
            raise ValueError(f"--data {spec}: {where} is not a directory")
        reader = gg.data.MNIST if kind == "mnist" else gg.data.FashionMNIST
        try:
            train, test = reader(where, train=True), reader(where, train=False)
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"--data {spec}: {exc}") from None

        def flat(images):
            return (images.array.reshape(len(images.array), -1).astype(np.float32)) / 255

        arrays = (flat(train.data), train.targets.array, flat(test.data), test.targets.array)
        return _placed(kind, arrays, device)
    if (
        target is not None
        and kind == "csv"
        and isinstance(target, str)
        and target.lstrip("-").isdigit()
    ):
        target = int(target)
    try:
        if kind == "csv":
            table = gg.data.CSVDataset(where, target=-1 if target is None else target)
        else:
            table = gg.data.NPZDataset(where, target="infer" if target is None else target)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--data {spec}: {exc}") from None
    labels = table.targets.array
    if labels.dtype.kind not in "iu":
        name = getattr(table, "target_name", None) or target or "y"
        raise ValueError(
            f"--data {spec}: the target ({name}) holds non-integer numbers; `gpugrad train` "
            "classifies, so it needs class labels"
        )
    return _table_split(kind, table.features.array, labels, seed, device)


def _table_split(kind: str, features, labels, seed: int, device) -> Split:
    from sklearn.model_selection import train_test_split

    _, labels = np.unique(labels, return_inverse=True)  # class labels as 0..classes-1
    counts = np.bincount(labels)
    if len(labels) < 5:
        raise ValueError(
            f"--data {kind}: {len(labels)} rows are too few to split into train and test"
        )
    stratify = labels if counts.min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=seed, stratify=stratify
    )
    mean, std = X_train.mean(0), X_train.std(0)
    std = np.where(std > 0, std, 1)
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    return _placed(kind, (X_train, y_train, X_test, y_test), device, classes=len(counts))


def _placed(kind: str, arrays, device, classes: int | None = None) -> Split:
    X_train, y_train, X_test, y_test = arrays
    dev = gg.backend.as_device(device)

    def put(array, dtype):
        return Tensor._make(gg.backend.to_device(np.ascontiguousarray(array, dtype=dtype), dev))

    if classes is None:
        classes = int(max(y_train.max(), y_test.max())) + 1
    return Split(
        kind,
        put(X_train, np.float32),
        put(y_train, np.int64),
        put(X_test, np.float32),
        put(y_test, np.int64),
        classes,
    )


def make_optimizer(name: str, params, lr: float, weight_decay: float, momentum: float | None):
    """The optimizer --optimizer names, with its description for the header line."""
    cls = getattr(gg.optim, OPTIMIZERS[name])
    if name == "sgd":
        momentum = 0.9 if momentum is None else momentum
        opt = cls(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        return opt, f"sgd lr={lr:g} momentum={momentum:g} weight_decay={weight_decay:g}"
    return cls(
        params, lr=lr, weight_decay=weight_decay
    ), f"{name} lr={lr:g} weight_decay={weight_decay:g}"


class Schedule:
    """An lr scheduler and when to step it: every batch (onecycle) or every epoch (the rest;
    plateau watches the epoch's training loss)."""

    def __init__(self, name: str, optimizer, epochs: int, steps_per_epoch: int, lr: float):
        sched = gg.optim.lr_scheduler
        self.name, self.per_batch = name, name == "onecycle"
        self.scheduler = {
            "none": lambda: None,
            "step": lambda: sched.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1),
            "exponential": lambda: sched.ExponentialLR(optimizer, gamma=0.9),
            "cosine": lambda: sched.CosineAnnealingLR(optimizer, T_max=epochs),
            "onecycle": lambda: sched.OneCycleLR(
                optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
            ),
            "plateau": lambda: sched.ReduceLROnPlateau(optimizer, factor=0.5, patience=2),
        }[name]()

    def after_step(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self, stats, model, optimizer) -> None:
        if self.scheduler is None or self.per_batch:
            return
        if self.name == "plateau":
            self.scheduler.step(stats.train_loss)
        else:
            self.scheduler.step()


def clip_hook(max_norm: float):
    """After backward: rescale the gradients to a total 2-norm of at most max_norm."""

    def clip(model) -> None:
        gg.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

    return clip
