"""Every fused CPU kernel of the kernel table (gpugrad/backend/kernels.py KERNELS) at a size past
the L2 caches, called through gpugrad._C with its outputs allocated once, as GB/s against a copy
of the same size timed alongside: numpy's copy on one thread, and on the run's threads (numpy
copies of one chunk per thread, from Python threads) when there are more. Bytes = every array
the kernel reads plus every array it writes, once each (a copy of n floats moves 2n * 4)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from gpugrad.bench.harness import Settings, measure

FULL_ELEMENTS = 1 << 22  # 16 MiB per float32 array
QUICK_ELEMENTS = 1 << 12
COLUMNS = 1024  # the row kernels' matrices: (elements / COLUMNS, COLUMNS); softmax-CE's too
# arrays (positions in the kernel's parameters) read and written: p, buf; p, m, v; p and the
# state buffers of the other optimizers (null ones count nothing)
IN_PLACE = {"sgd_step": (0, 2), "adam_step": (0, 2, 3), "rmsprop_step": (0, 2, 3, 4),
            "adagrad_step": (0, 2),
            **dict.fromkeys(("adadelta_step", "adamax_step", "nadam_step", "radam_step"), (0, 2, 3))}
# the other optimizers' steps at their defaults (RMSprop: not centered, no momentum)
_STEP_HYPER = {
    "rmsprop_step": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0},
    "adagrad_step": {"clr": 0.01, "eps": 1e-10},
    "adadelta_step": {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
    "adamax_step": {"clr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "nadam_step": {"lr": 2e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "decoupled": 0.0,
                   "bias_correction2": 0.001, "grad_coef": -1e-3, "avg_coef": -0.01},
    "radam_step": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "decoupled": 0.0,
                   "bias_correction1": 0.5, "bias_correction2_sqrt": 0.1, "rect": 0.3,
                   "rectified": 1.0},
}


def _arguments(name: str, n: int) -> tuple:
    """The kernel's Python arguments (kernels.<name>(*args)) for n float32 elements."""
    from gpugrad.backend import kernels

    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.standard_normal(shape or (n,), dtype=np.float32)

    rows = n // COLUMNS
    entry = kernels.KERNELS[name]
    if entry.inputs:
        return tuple(normal() for _ in range(entry.inputs))
    makers: dict[str, Callable[[], tuple]] = {
        "relu_fwd": lambda: (normal(),),
        "relu_bwd": lambda: (normal(), kernels.relu_fwd_reference(normal())[1]),
        "bias_act_fwd": lambda: (normal(rows, COLUMNS), normal(COLUMNS), "relu"),
        "bias_act_bwd": lambda: (np.abs(normal(rows, COLUMNS)), normal(rows, COLUMNS), "relu"),
        "softmax_xent_fwd": lambda: (
            normal(rows, COLUMNS),
            _targets(rng, rows),
            -100,  # ignore_index: no row ignored
            np.full(1, kernels.NO_BAD_TARGET, np.int64),
        ),
        "softmax_xent_bwd": lambda: _xent_backward_arguments(rng, rows),
        "sgd_step": lambda: (
            normal(),
            normal(),
            normal(),
            kernels.sgd_hyper(0.01, 0.9, 0.0, 0.0, False, False),
        ),
        "adam_step": lambda: (
            normal(),
            normal(),
            normal(),
            np.abs(normal()),
            kernels.adam_hyper(1e-3, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.001, False),
        ),
        "dropout_scale": lambda: (np.empty(n, np.float32), np.array([7.0, 0.0, 0.1])),
    }
    if name in _STEP_HYPER:
        return step_arguments(name, normal)
    if name not in makers:
        raise KeyError(name)
    return makers[name]()


def step_arguments(name: str, normal: Callable) -> tuple:
    """p, g, state buffers (second moments positive; None: unused) and the hyperparameters of
    optimizer step `name` (a key of _STEP_HYPER), its arrays made by normal() (NumPy or CuPy)."""
    from gpugrad.backend import kernels

    state = {"rmsprop_step": (abs(normal()), None, None), "adagrad_step": (abs(normal()),),
             "adadelta_step": (abs(normal()), abs(normal()))}.get(name, (normal(), abs(normal())))
    slots = getattr(kernels, name.replace("_step", "_SLOTS").upper())
    hyper = kernels.hyper_array(slots, weight_decay=0.0, maximize=0.0, **_STEP_HYPER[name])
    return (normal(), normal(), *state, hyper)


def _targets(rng, rows: int) -> np.ndarray:
    return rng.integers(0, COLUMNS, rows).astype(np.int64)


def _xent_backward_arguments(rng, rows: int) -> tuple:
    from gpugrad.backend import kernels

    logits = rng.standard_normal((rows, COLUMNS), dtype=np.float32)
    targets = _targets(rng, rows)
    no_flag = np.full(1, kernels.NO_BAD_TARGET, np.int64)
    _, lse = kernels.softmax_xent_fwd_reference(logits, targets, -100, no_flag)
    return logits, targets, lse.astype(np.float32), np.full(rows, 1.0 / rows, np.float32)


def native_call(name: str, args: tuple) -> tuple[Callable[[], None], int]:
    """(call, bytes): one call of gpugrad._C's kernel on the launch the table builds for args
    (outputs allocated once, then reused), and the bytes it reads and writes."""
    from gpugrad.backend import kernels

    native = kernels.native_cpu()
    entry = kernels.KERNELS[name]
    launch = entry.build(np, *args)
    pointers = [0 if a is None else a.ctypes.data for a in launch.arrays]
    function = getattr(native, name)
    dtype = launch.arrays[0].dtype.name
    sizes, scalars = launch.sizes, launch.scalars

    def call(keep_alive=launch):  # the arrays behind the pointers live as long as call
        function(*pointers, *sizes, *scalars, dtype)

    arrays = [a for a in launch.arrays if a is not None]
    rewritten = [launch.arrays[k] for k in IN_PLACE.get(name, ()) if launch.arrays[k] is not None]
    return call, sum(a.nbytes for a in arrays) + sum(a.nbytes for a in rewritten)


def copies(n: int, threads: int) -> dict[str, tuple[Callable[[], None], int]]:
    """numpy copies of n float32: on one thread, and split over `threads` Python threads."""
    source = np.random.default_rng(1).standard_normal(n, dtype=np.float32)
    target = np.empty_like(source)
    out = {"copy": (lambda: np.copyto(target, source), 2 * source.nbytes)}
    if threads > 1:
        bounds = np.linspace(0, n, threads + 1).astype(int)
        chunks = [(target[a:b], source[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

        def parallel_copy():
            workers = [threading.Thread(target=np.copyto, args=c) for c in chunks[1:]]
            for worker in workers:
                worker.start()
            np.copyto(*chunks[0])
            for worker in workers:
                worker.join()

        out[f"copy ({threads} threads)"] = (parallel_copy, 2 * source.nbytes)
    return out


def run(torch, settings: Settings) -> list[dict]:
    import dataclasses

    import gpugrad as gg
    from gpugrad.backend import kernels

    if kernels.native_cpu() is None:
        return [
            {
                "group": "kernels",
                "name": "all",
                "notes": ["gpugrad._C is not built"],
                "timings": {},
                "ratio_vs_torch": {},
            }
        ]
    n = QUICK_ELEMENTS if settings.quick else FULL_ELEMENTS
    threads = gg.get_num_threads()
    settings = dataclasses.replace(settings, budget_s=min(settings.budget_s, 2.0))
    copy_fns = copies(n, threads)
    copy_measured = measure({name: fn for name, (fn, _) in copy_fns.items()}, settings)
    copy_gbps = {
        name: nbytes / copy_measured["timings"][name]["median"] / 1e3
        for name, (_, nbytes) in copy_fns.items()
    }
    best_copy = max(copy_gbps.values())
    rows = []
    for name in kernels.kernel_names():
        try:
            call, nbytes = native_call(name, _arguments(name, n))
        except KeyError:
            rows.append(
                {
                    "group": "kernels",
                    "name": name,
                    "timings": {},
                    "ratio_vs_torch": {},
                    "notes": ["no benchmark arguments for this kernel yet"],
                }
            )
            continue
        measured = measure({name: call}, settings)
        us = measured["timings"][name]["median"]
        rows.append(
            {
                "group": "kernels",
                "name": name,
                "params": {"elements": n, "dtype": "float32", "bytes": nbytes},
                "unit": "us",
                "repeats": measured["repeats"],
                "timings": measured["timings"],
                "ratio_vs_torch": {},
                "threads": "default" if settings.threads is None else settings.threads,
                "gbps": nbytes / us / 1e3,
                "copy_gbps": copy_gbps,
                "vs_copy": nbytes / us / 1e3 / best_copy,
            }
        )
    return rows
