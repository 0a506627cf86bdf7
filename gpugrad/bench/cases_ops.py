"""Single ops, forward alone and forward + backward, at sizes where memory bandwidth or
arithmetic (not the engine's per-op cost) should dominate: gpugrad vs torch on the same arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gpugrad.bench.harness import Settings, timed_result


@dataclass(frozen=True)
class OpCase:
    name: str
    shapes: tuple  # float inputs, all differentiable
    gg: Callable  # (gg, *tensors) -> output
    torch: Callable  # (torch, *tensors) -> output
    classes: int | None = None  # cross-entropy: a label per row of the first input


def full_cases() -> list[OpCase]:
    return [
        OpCase(
            "sigmoid (2048,2048)",
            ((2048, 2048),),
            lambda gg, x: gg.sigmoid(x),
            lambda t, x: t.sigmoid(x),
        ),
        OpCase(
            "relu (2048,2048)", ((2048, 2048),), lambda gg, x: gg.relu(x), lambda t, x: t.relu(x)
        ),
        OpCase(
            "matmul (512,512)@(512,512)",
            ((512, 512), (512, 512)),
            lambda gg, a, b: a @ b,
            lambda t, a, b: a @ b,
        ),
        OpCase("softmax-CE (512,10)", ((512, 10),), _gg_xent, _torch_xent, classes=10),
        OpCase("softmax-CE (4096,1000)", ((4096, 1000),), _gg_xent, _torch_xent, classes=1000),
        OpCase(
            "add (4096,1024)+(1024,)",
            ((4096, 1024), (1024,)),
            lambda gg, a, b: a + b,
            lambda t, a, b: a + b,
        ),
    ]


def quick_cases() -> list[OpCase]:
    return [
        OpCase(
            "sigmoid (64,64)", ((64, 64),), lambda gg, x: gg.sigmoid(x), lambda t, x: t.sigmoid(x)
        ),
        OpCase("relu (64,64)", ((64, 64),), lambda gg, x: gg.relu(x), lambda t, x: t.relu(x)),
        OpCase(
            "matmul (32,32)@(32,32)",
            ((32, 32), (32, 32)),
            lambda gg, a, b: a @ b,
            lambda t, a, b: a @ b,
        ),
        OpCase("softmax-CE (16,10)", ((16, 10),), _gg_xent, _torch_xent, classes=10),
        OpCase(
            "add (64,32)+(32,)", ((64, 32), (32,)), lambda gg, a, b: a + b, lambda t, a, b: a + b
        ),
    ]


def _gg_xent(gg, x, target):
    return gg.nn.functional.cross_entropy(x, target)


def _torch_xent(torch, x, target):
    return torch.nn.functional.cross_entropy(x, target)


def _pair(case: OpCase, torch, seed: int = 0):
    """Forward and forward+backward callables for both libraries, and a one-time check that
    they agree (largest relative difference of outputs and input gradients)."""
    import gpugrad as gg

    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape, dtype=np.float32) for shape in case.shapes]
    gg_leaves = [gg.from_numpy(a.copy()).requires_grad_() for a in arrays]
    torch_leaves = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
    gg_args, torch_args = list(gg_leaves), list(torch_leaves)
    if case.classes is not None:
        target = rng.integers(0, case.classes, case.shapes[0][0]).astype(np.int64)
        gg_args.append(gg.from_numpy(target.copy()))
        torch_args.append(torch.from_numpy(target.copy()))
    out_shape = tuple(case.torch(torch, *torch_args).shape)
    upstream = rng.standard_normal(out_shape, dtype=np.float32) if out_shape else None
    gg_upstream = None if upstream is None else gg.from_numpy(upstream.copy())
    torch_upstream = None if upstream is None else torch.from_numpy(upstream.copy())

    def gg_forward():
        return case.gg(gg, *gg_args)

    def gg_forward_backward():
        for leaf in gg_leaves:
            leaf.grad = None
        case.gg(gg, *gg_args).backward(gg_upstream)

    def torch_forward():
        return case.torch(torch, *torch_args)

    def torch_forward_backward():
        for leaf in torch_leaves:
            leaf.grad = None
        case.torch(torch, *torch_args).backward(torch_upstream)

    gg_forward_backward()
    torch_forward_backward()
    pairs = [(np.asarray(gg_forward().detach().numpy()), torch_forward().detach().numpy())]
    pairs += [(g.grad.numpy(), t.grad.numpy()) for g, t in zip(gg_leaves, torch_leaves)]
    worst = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1.0)) for a, b in pairs)
    return (
        {"gpugrad": gg_forward, "torch": torch_forward},
        {"gpugrad": gg_forward_backward, "torch": torch_forward_backward},
        {"max_rel_diff": worst},
    )


def run(torch, settings: Settings) -> list[dict]:
    results = []
    for case in quick_cases() if settings.quick else full_cases():
        forward, forward_backward, check = _pair(case, torch)
        params = {"shapes": [list(s) for s in case.shapes], "dtype": "float32"}
        results.append(
            timed_result(
                "ops",
                f"{case.name} fwd",
                dict(params, mode="forward"),
                forward,
                settings,
                check=check,
            )
        )
        results.append(
            timed_result(
                "ops",
                f"{case.name} fwd+bwd",
                dict(params, mode="forward+backward"),
                forward_backward,
                settings,
                check=check,
            )
        )
    return results
