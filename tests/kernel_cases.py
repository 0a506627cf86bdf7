"""Sample arguments for every fused kernel of gpugrad/backend/kernels.py, and one check that runs
a kernel on them and compares with the kernel's own reference evaluated in float64. The oracle
is the backend's reference (no copy here); the C++, CUDA, NVRTC and simulator tests all use this.

A kernel added to the table is covered by the elementwise-map cases with nothing added here;
another kind of kernel needs its case maker in CASES (a guard test says so)."""
from __future__ import annotations

import contextlib
import math

import numpy as np

from gpugrad.backend import kernels


def sample(n: int, dtype, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    """Normal samples with some exact zeros (the relu boundary)."""
    rng = np.random.default_rng(seed + n)
    x = rng.standard_normal(n) * scale
    x[::7] = 0.0
    return x.astype(dtype)


def sample_special(n: int, dtype, seed: int = 0) -> np.ndarray:
    """sample() with NaN, -0.0, +inf and -inf mixed in at strides that reach every mask word."""
    x = sample(n, dtype, seed)
    x[3::11] = np.nan
    x[5::13] = -0.0
    x[1::17] = np.inf
    x[2::19] = -np.inf
    return x


class Case:
    """Arguments of one kernel call (NumPy arrays, None or other values) and how loose the
    comparison may be: atol is multiplied by `scale`; `host`: the arguments that stay NumPy
    arrays when the others go to the GPU (an optimizer's hyperparameters)."""

    def __init__(self, what: str, args: tuple, scale: float = 1.0, host=()):
        self.what, self.args, self.scale, self.host = what, args, scale, host


def _map_cases(kernel, n, dtype):
    inputs = [sample(n, dtype, seed=k) for k in range(kernel.inputs)]
    return [Case(f"{kernel.name} n={n}", tuple(inputs), scale=4.0)]


def _relu_fwd(n, dtype):
    return [Case(f"relu_fwd n={n} (NaN, -0.0, inf)", (sample_special(n, dtype),))]


def _relu_bwd(n, dtype):
    _, mask = kernels.relu_fwd_reference(sample_special(n, dtype))
    return [Case(f"relu_bwd n={n}", (sample(n, dtype, seed=2), mask))]


def _matrices(n):
    return [(n, 3), (3, n)]


def _bias_act_fwd(n, dtype):
    cases = []
    for rows, cols in _matrices(n):
        x = sample(rows * cols, dtype).reshape(rows, cols)
        bias = sample(cols, dtype, seed=3)
        for act in kernels.ACTIVATIONS:
            cases.append(Case(f"bias_act_fwd {act} {rows}x{cols}", (x, bias, act), scale=10.0))
    return cases


def _bias_act_bwd(n, dtype):
    cases = []
    for rows, cols in _matrices(n):
        x = sample(rows * cols, dtype).reshape(rows, cols)
        g = sample(rows * cols, dtype, seed=4).reshape(rows, cols)
        for act in kernels.ACTIVATIONS:
            y = kernels.bias_act_fwd_reference(x, np.zeros(cols, dtype), act)  # an output of act
            cases.append(Case(f"bias_act_bwd {act} {rows}x{cols}", (y, g, act),
                              scale=10.0 * math.sqrt(rows)))
    return cases


def _logits(rows, cols, dtype):
    rng = np.random.default_rng(rows * 31 + cols)
    x = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
    return x, rng.integers(0, cols, rows).astype(np.int64), rng.uniform(0.1, 2.0, rows).astype(dtype)


IGNORE = -100


def _flag():
    return np.array([kernels.NO_BAD_TARGET], np.int64)


def _softmax_xent_fwd(n, dtype):
    cases = []
    for rows, cols in [(n, 10), (3, n)]:
        x, target, _ = _logits(rows, cols, dtype)
        target[::4] = IGNORE  # ignored rows cost 0
        cases.append(Case(f"softmax_xent_fwd {rows}x{cols}", (x, target, IGNORE, _flag()),
                          scale=10.0 * max(1.0, math.log(cols))))
    return cases


def _softmax_xent_bwd(n, dtype):
    cases = []
    for rows, cols in [(n, 10), (3, n)]:
        x, target, scale = _logits(rows, cols, dtype)
        target[::4] = IGNORE
        _, lse = kernels.softmax_xent_fwd_reference(x.astype(np.float64), target, IGNORE, _flag())
        cases.append(Case(f"softmax_xent_bwd {rows}x{cols}", (x, target, lse.astype(dtype), scale),
                          scale=4.0))
    return cases


SGD_CONFIGS = [  # (momentum, dampening, weight_decay, nesterov)
    (0.0, 0.0, 0.0, False),
    (0.0, 0.0, 0.1, False),
    (0.9, 0.0, 0.0, False),
    (0.9, 0.3, 0.01, False),
    (0.9, 0.0, 0.01, True),
]


def _sgd_step(n, dtype):
    rng = np.random.default_rng(n)
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    cases = []
    for momentum, dampening, weight_decay, nesterov in SGD_CONFIGS:
        for first_step in (True, False):
            # garbage in a first step's buffer: the step must overwrite it
            buf = np.full(n, 99.0, dtype) if first_step else rng.standard_normal(n).astype(dtype)
            hyper = kernels.sgd_hyper(0.1, momentum, dampening, weight_decay, nesterov, first_step)
            cases.append(Case(f"sgd_step n={n} {hyper.tolist()}",
                              (p, g, buf if momentum else None, hyper), scale=10.0, host=(3,)))
    return cases


def _adam_step(n, dtype):
    rng = np.random.default_rng(n)
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    m = (rng.standard_normal(n) * 0.1).astype(dtype)
    v = np.abs(rng.standard_normal(n) * 0.01).astype(dtype)
    cases = []
    for weight_decay, decoupled in [(0.0, False), (0.1, False), (0.1, True)]:
        hyper = kernels.adam_hyper(0.01, 0.9, 0.999, 1e-8, weight_decay, 1 - 0.9**3, 1 - 0.999**3,
                                   decoupled)
        cases.append(Case(f"adam_step n={n} {hyper.tolist()}", (p, g, m, v, hyper), scale=10.0,
                          host=(4,)))
        # amsgrad: no fused kernel, the reference at every level
        cases.append(Case(f"adam_step amsgrad n={n} {hyper.tolist()}", (p, g, m, v, hyper, v * 2),
                          scale=10.0, host=(4,)))
    return cases


# The table-driven optimizers' steps: (state buffers: "signed" or "positive" samples, None for
# a null one), hyperparameters by slot name; defaults, then the options that change the path.
_DEFAULT = {"lr": 0.01, "eps": 1e-8, "weight_decay": 0.0, "maximize": 0.0}
_ADAM_LIKE = {**_DEFAULT, "beta1": 0.9, "beta2": 0.999, "decoupled": 0.0}
_NADAM = {**_ADAM_LIKE, "bias_correction2": 1 - 0.999**3, "grad_coef": -0.004, "avg_coef": -0.03}
_RADAM = {**_ADAM_LIKE, "bias_correction1": 1 - 0.9**7, "bias_correction2_sqrt": 0.08,
          "rect": 0.3, "rectified": 1.0}
STEP_CONFIGS = {
    "rmsprop_step": [
        (("positive", None, None), {**_DEFAULT, "alpha": 0.99, "momentum": 0.0}),
        (("positive", "signed", "signed"),
         {**_DEFAULT, "alpha": 0.3, "momentum": 0.9, "weight_decay": 0.1, "maximize": 1.0}),
        (("positive", "signed", None), {**_DEFAULT, "alpha": 0.9, "momentum": 0.0}),
        (("positive", None, "signed"), {**_DEFAULT, "alpha": 0.99, "momentum": 0.5}),
    ],
    "adagrad_step": [
        (("positive",), {"clr": 0.05, "eps": 1e-10, "weight_decay": 0.0, "maximize": 0.0}),
        (("positive",), {"clr": 0.05, "eps": 1e-10, "weight_decay": 0.1, "maximize": 1.0}),
    ],
    "adadelta_step": [
        (("positive", "positive"), {**_DEFAULT, "lr": 1.0, "rho": 0.9, "eps": 1e-6}),
        (("positive", "positive"),
         {**_DEFAULT, "lr": 0.5, "rho": 0.8, "weight_decay": 0.1, "maximize": 1.0}),
    ],
    "adamax_step": [
        (("signed", "positive"),
         {k: v for k, v in {**_ADAM_LIKE, "clr": 0.02}.items() if k not in ("lr", "decoupled")}),
        (("signed", "positive"), {"clr": 0.02, "beta1": 0.3, "beta2": 0.9, "eps": 1e-8,
                                  "weight_decay": 0.1, "maximize": 1.0}),
    ],
    "nadam_step": [
        (("signed", "positive"), _NADAM),
        (("signed", "positive"), {**_NADAM, "weight_decay": 0.1}),
        (("signed", "positive"), {**_NADAM, "weight_decay": 0.1, "decoupled": 1.0,
                                  "maximize": 1.0}),
    ],
    "radam_step": [
        (("signed", "positive"), _RADAM),
        (("signed", "positive"), {**_RADAM, "rectified": 0.0, "rect": 0.0, "weight_decay": 0.1}),
        (("signed", "positive"), {**_RADAM, "weight_decay": 0.1, "decoupled": 1.0,
                                  "maximize": 1.0, "beta1": 0.7}),
    ],
}
_STEP_SLOTS = {"rmsprop_step": kernels.RMSPROP_SLOTS, "adagrad_step": kernels.ADAGRAD_SLOTS,
               "adadelta_step": kernels.ADADELTA_SLOTS, "adamax_step": kernels.ADAMAX_SLOTS,
               "nadam_step": kernels.NADAM_SLOTS, "radam_step": kernels.RADAM_SLOTS}


def _optimizer_step(name):
    def make(n, dtype):
        rng = np.random.default_rng(n)
        p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        kinds = {"signed": lambda: (rng.standard_normal(n) * 0.1).astype(dtype),
                 "positive": lambda: (1.0 + np.abs(rng.standard_normal(n))).astype(dtype)}
        cases = []
        for buffers, values in STEP_CONFIGS[name]:
            hyper = kernels.hyper_array(_STEP_SLOTS[name], **values)
            state = tuple(None if kind is None else kinds[kind]() for kind in buffers)
            cases.append(Case(f"{name} n={n} {buffers} {hyper.tolist()}", (p, g, *state, hyper),
                              scale=10.0, host=(2 + len(state),)))
        return cases

    return make


def _dropout_scale(n, dtype):
    return [Case(f"dropout_scale n={n} p={p}", (np.zeros(n, dtype), np.array([seed, 1000.0, p])),
                 host=(1,)) for seed, p in [(7.0, 0.3), (123456789.0, 0.9)]]


CASES = {
    "dropout_scale": _dropout_scale,
    "relu_fwd": _relu_fwd,
    "relu_bwd": _relu_bwd,
    "bias_act_fwd": _bias_act_fwd,
    "bias_act_bwd": _bias_act_bwd,
    "softmax_xent_fwd": _softmax_xent_fwd,
    "softmax_xent_bwd": _softmax_xent_bwd,
    "sgd_step": _sgd_step,
    "adam_step": _adam_step,
    **{name: _optimizer_step(name) for name in STEP_CONFIGS},
}


def cases(name: str, n: int, dtype) -> list[Case]:
    kernel = kernels.KERNELS[name]
    if kernel.inputs:
        return _map_cases(kernel, n, dtype)
    return CASES[name](n, dtype)


def dtypes_of(name: str, gpu: bool) -> list:
    half = gpu and kernels.KERNELS[name].half
    return [np.float32, np.float64] + ([np.float16] if half else [])


TOLERANCE = {
    np.dtype(np.float16): (2e-3, 2e-3),
    np.dtype(np.float32): (2e-5, 2e-6),
    np.dtype(np.float64): (1e-11, 1e-12),
}


def _as64(a):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return a.astype(np.float64)
    return a.copy() if isinstance(a, np.ndarray) else a


def _arrays(result, args) -> list:
    """What a call produced: its results, then every array argument (in-place updates)."""
    out = list(result) if isinstance(result, tuple) else ([] if result is None else [result])
    return out + [a for a in args if a is not None and not isinstance(a, (str, float, int))]


def run(name: str, args: tuple, xp=np, level: str | None = None, host=()) -> list[np.ndarray]:
    """Kernel `name` on copies of args moved to array module xp (but the arguments numbered in
    `host`), at `level` (None: whatever the dispatcher picks); its results and updated
    arguments as NumPy arrays."""
    moved = tuple((a.copy() if k in host else xp.array(a, copy=True))
                  if isinstance(a, np.ndarray) else a for k, a in enumerate(args))
    with kernels.use(level) if level else contextlib.nullcontext():
        result = kernels.KERNELS[name](*moved)
    return [a if isinstance(a, np.ndarray) else a.get() for a in _arrays(result, moved)]


def check(name: str, case: Case, dtype, xp=np, level: str | None = None) -> None:
    """The kernel at `level` on xp against its reference in float64, output by output."""
    actual = run(name, case.args, xp, level, case.host)
    reference_args = tuple(_as64(a) for a in case.args)
    result = kernels.KERNELS[name].reference(*reference_args)
    expected = _arrays(result, reference_args)
    dtypes = [dtype] * (len(expected) - len(_arrays(None, case.args))) + [
        a.dtype for a in _arrays(None, case.args)]
    assert len(actual) == len(expected), case.what
    rtol, atol = TOLERANCE[np.dtype(dtype)]
    for k, (a, e, kind) in enumerate(zip(actual, expected, dtypes)):
        what = f"{case.what} {np.dtype(dtype).name} level={level}: output {k}"
        assert a.shape == e.shape, what
        if a.dtype.kind == "f":
            assert a.dtype == kind, what
            np.testing.assert_allclose(a.astype(np.float64), e, rtol=rtol,
                                       atol=atol * case.scale, err_msg=what)
        else:
            np.testing.assert_array_equal(a, e, err_msg=what)  # masks and targets: exact
