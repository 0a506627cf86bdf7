"""Engine cost per op: a chain of adds and muls on 1-element tensors, where the arithmetic is
nothing and the time is the library's own (dispatch, graph recording, backward bookkeeping).
Timings are per chain; the tables divide by the chain length to show µs per op."""

from __future__ import annotations

import numpy as np

from gpugrad.bench.harness import Settings, timed_result

FULL_CHAIN = 100
QUICK_CHAIN = 10


def _chain(x, c, d, length: int):
    """x, then alternately + c and * d: `length` ops."""
    for i in range(length):
        x = x + c if i % 2 == 0 else x * d
    return x


def _library_fns(lib, no_grad, length: int) -> dict:
    """The three timed modes for one library (gpugrad or torch: the same code drives both)."""
    one = np.ones(1, dtype=np.float32)
    x = lib.from_numpy(one.copy()).requires_grad_()
    c, d, upstream = (
        lib.from_numpy(one * 1e-3),
        lib.from_numpy(one * 1.0001),
        lib.from_numpy(one.copy()),
    )

    def forward():
        return _chain(x, c, d, length)

    def forward_no_grad():
        with no_grad():
            return _chain(x, c, d, length)

    def forward_backward():
        x.grad = None
        _chain(x, c, d, length).backward(upstream)

    return {
        "forward (recording)": forward,
        "forward (no_grad)": forward_no_grad,
        "forward+backward": forward_backward,
    }


def gpugrad_fns(length: int = FULL_CHAIN) -> dict:
    import gpugrad as gg

    return _library_fns(gg, gg.no_grad, length)


def run(torch, settings: Settings) -> list[dict]:
    length = QUICK_CHAIN if settings.quick else FULL_CHAIN
    gg_fns, torch_fns = gpugrad_fns(length), _library_fns(torch, torch.no_grad, length)
    results = []
    for mode in gg_fns:
        results.append(
            timed_result(
                "overhead",
                f"{length} ops on 1-element tensors, {mode}",
                {
                    "chain_length": length,
                    "ops": "alternating add / mul",
                    "shape": [1],
                    "mode": mode,
                },
                {"gpugrad": gg_fns[mode], "torch": torch_fns[mode]},
                settings,
                per_op=length,
            )
        )
    return results
