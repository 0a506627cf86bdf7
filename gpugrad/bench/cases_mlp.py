"""MLP training step (forward, softmax cross-entropy, backward, SGD update) in five versions on
the same numpy-made weights and batch: torch (nn.Sequential + optim.SGD), gpugrad built from
engine pieces only, gpugrad's library API (gg.nn.MLP + gg.optim.SGD) when it exists, the same
library step under gg.capture (recorded once, then replayed), and a flat NumPy forward/backward
with no engine at all: the floor for a NumPy engine. Beside them, the step's GEMMs alone (same
shapes and layouts, numpy's BLAS, same threads): the roofline, which each version's time is
also given against (`vs_gemm_only`)."""

from __future__ import annotations

import itertools

import numpy as np

from gpugrad.bench.harness import Settings, timed_result

LR = 0.01
FULL_SIZES = [((64, 128, 128, 10), 64), ((784, 512, 512, 10), 128), ((784, 2048, 2048, 10), 512)]
QUICK_SIZES = [((16, 32, 32, 10), 8)]
ACTIVATIONS = ("relu", "sigmoid")


def make_problem(sizes, batch: int, seed: int = 0):
    """Weights as torch initialises Linear (U(±1/sqrt(fan_in))), a standard-normal batch, labels."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        params.append((w, b))
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    return params, x, y


class ModelStep:
    """The step of a version built as a model + optimizer (torch's, or gpugrad's library)."""

    def drop_grads(self):
        self.opt.zero_grad(set_to_none=True)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        self.opt.step()
        return loss

    def parameters(self):
        return list(self.model.parameters())


# ---- torch ----------------------------------------------------------------------------------------
class TorchMLP(ModelStep):
    def __init__(self, torch, params, x, y, activation):
        self.torch, self.F = torch, torch.nn.functional
        layers = []
        for i, (w, b) in enumerate(params):
            linear = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if i < len(params) - 1:
                layers.append(torch.nn.ReLU() if activation == "relu" else torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.x, self.y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())

    def loss(self):
        return self.F.cross_entropy(self.model(self.x), self.y)

    def parameter_arrays(self):
        return [p.detach().numpy() for p in self.model.parameters()]


# ---- gpugrad, engine pieces only --------------------------------------------------------------------
class GpugradEngineMLP:
    """Leaf tensors for weights, F.linear_act per layer, F.cross_entropy, kernels.sgd_step."""

    def __init__(self, params, x, y, activation):
        import gpugrad as gg
        from gpugrad.backend import kernels

        self.gg, self.F, self.sgd_step = gg, gg.nn.functional, kernels.sgd_step
        self.hyper = kernels.sgd_hyper(LR, 0.0, 0.0, 0.0, False, True)
        self.layers = [
            (gg.from_numpy(w.copy()).requires_grad_(), gg.from_numpy(b.copy()).requires_grad_())
            for w, b in params
        ]
        self.flat = [p for layer in self.layers for p in layer]
        self.activation = activation
        self.x, self.y = gg.from_numpy(x.copy()), gg.from_numpy(y.copy())

    def loss(self):
        h, last = self.x, len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = self.F.linear_act(h, w, b, self.activation if i < last else "identity")
        return self.F.cross_entropy(h, self.y)

    def drop_grads(self):
        pass  # step() leaves none

    def step(self):
        loss = self.loss()
        loss.backward()
        with self.gg.no_grad():
            for p in self.flat:
                self.sgd_step(p.array, p.grad.array, None, self.hyper)
                p.grad = None
        return loss

    def parameters(self):
        return self.flat

    def parameter_arrays(self):
        return [p.array for p in self.flat]


# ---- gpugrad, library API ------------------------------------------------------------------------
def library_missing() -> str | None:
    """Why the gg.nn.MLP + gg.optim.SGD case cannot run, or None when it can."""
    import gpugrad as gg

    missing = [
        name
        for name, owner, attr in (("gg.nn.MLP", gg.nn, "MLP"), ("gg.optim.SGD", gg.optim, "SGD"))
        if not hasattr(owner, attr)
    ]
    return f"{', '.join(missing)} not available yet" if missing else None


class GpugradLibraryMLP(ModelStep):
    """gg.nn.MLP(sizes, activation) + gg.optim.SGD, weights overwritten with the shared ones."""

    def __init__(self, params, x, y, activation):
        import gpugrad as gg

        sizes = [params[0][0].shape[1]] + [w.shape[0] for w, _ in params]
        self.gg, self.F = gg, gg.nn.functional
        self.model = gg.nn.MLP(sizes, activation=activation)
        model_params = list(self.model.parameters())
        shared = [a for layer in params for a in layer]
        if [tuple(p.shape) for p in model_params] != [a.shape for a in shared]:
            raise RuntimeError("gg.nn.MLP parameters are not (weight, bias) per layer in order")
        for p, a in zip(model_params, shared):
            p.array[...] = a
        self.opt = gg.optim.SGD(model_params, lr=LR)
        self.x, self.y = gg.from_numpy(x.copy()), gg.from_numpy(y.copy())

    def loss(self):
        return self.F.cross_entropy(self.model(self.x), self.y)

    def parameter_arrays(self):
        return [p.array for p in self.model.parameters()]


class GpugradCapturedMLP(GpugradLibraryMLP):
    """The library step under gg.capture: the first call runs eagerly, the second records, every
    later one replays the record (no Tensor, node or graph per op)."""

    warmup_steps = 2  # eager, then recorded: the steps after replay

    def __init__(self, params, x, y, activation):
        super().__init__(params, x, y, activation)
        self._captured = self.gg.capture(self._eager_step)

    def _eager_step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def step(self):
        return self._captured(self.x, self.y)


# ---- flat NumPy: the floor ----------------------------------------------------------------------------
class NumpyFloorMLP:
    """Explicit matmuls, relu mask / sigmoid slope, softmax-CE gradient and in-place SGD."""

    def __init__(self, params, x, y, activation):
        self.layers = [(w.copy(), b.copy()) for w, b in params]
        self.x, self.y = x.copy(), y.copy()
        self.rows = np.arange(x.shape[0])
        self.activation = activation

    def _forward(self):
        outputs, h, last = [self.x], self.x, len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            z = h @ w.T
            z += b
            if i < last:
                if self.activation == "relu":
                    np.maximum(z, 0, out=z)
                else:  # sigmoid; exp overflow to inf gives the right limit 0
                    with np.errstate(over="ignore"):
                        np.negative(z, out=z)
                        np.exp(z, out=z)
                    z += 1
                    np.reciprocal(z, out=z)
            outputs.append(z)
            h = z
        return outputs

    def _softmax_xent(self, logits):
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - shifted[self.rows, self.y]))
        e /= total
        return loss, e

    def loss(self):
        return self._softmax_xent(self._forward()[-1])[0]

    def drop_grads(self):
        pass  # gradients live only inside step()

    def step(self):
        outputs = self._forward()
        loss, grad = self._softmax_xent(outputs[-1])
        grad[self.rows, self.y] -= 1
        grad /= grad.shape[0]
        for i in range(len(self.layers) - 1, -1, -1):
            w, b = self.layers[i]
            h = outputs[i]
            grad_w = grad.T @ h
            grad_b = grad.sum(axis=0)
            if i > 0:
                grad = grad @ w
                if self.activation == "relu":
                    grad *= h > 0
                else:
                    slope = 1 - h
                    slope *= h
                    grad *= slope
            grad_w *= LR
            w -= grad_w
            grad_b *= LR
            b -= grad_b
        return loss

    def parameter_arrays(self):
        return [a for layer in self.layers for a in layer]


# ---- the roofline: the step's GEMMs alone -------------------------------------------------------
class GemmOnly:
    """Every matrix product of the step as gpugrad computes it, into preallocated outputs:
    forward z = h @ Wᵀ per layer; backward dW = (gᵀ @ h) per layer and dh = g @ W for every
    layer but the first (the batch needs no gradient). Nothing else: no bias, activation, loss
    or update, no allocation."""

    def __init__(self, params, x):
        rng = np.random.default_rng(1)
        self.products = []  # (a, b, out)
        h = x
        for i, (w, _) in enumerate(params):
            batch, fan_out = h.shape[0], w.shape[0]
            z = np.empty((batch, fan_out), np.float32)
            g = rng.standard_normal((batch, fan_out), dtype=np.float32)
            self.products.append((h, w.T, z))
            self.products.append((g.T, h, np.empty(w.shape, np.float32)))
            if i > 0:
                self.products.append((g, w, np.empty(h.shape, np.float32)))
            h = rng.standard_normal(z.shape, dtype=np.float32)

    def step(self):
        for a, b, out in self.products:
            np.matmul(a, b, out=out)

    def flops(self) -> int:
        return sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in self.products)


# ---- the case ----------------------------------------------------------------------------------------
def implementations(torch, params, x, y, activation) -> tuple[dict, list[str]]:
    impls = {
        "torch": TorchMLP(torch, params, x, y, activation),
        "gpugrad": GpugradEngineMLP(params, x, y, activation),
    }
    notes = []
    reason = library_missing()
    if reason is None:
        try:
            impls["gpugrad-nn"] = GpugradLibraryMLP(params, x, y, activation)
            impls["gpugrad-captured"] = GpugradCapturedMLP(params, x, y, activation)
        except (AttributeError, TypeError, ValueError, RuntimeError) as exc:  # still being written
            notes.append(f"gpugrad-nn skipped: {type(exc).__name__}: {exc}")
    else:
        notes.append(f"gpugrad-nn skipped: {reason}")
    impls["numpy-floor"] = NumpyFloorMLP(params, x, y, activation)
    return impls, notes


def as_float(loss) -> float:
    return loss if isinstance(loss, float) else float(loss.item())


def agreement(impls: dict) -> dict:
    """Loss before and after one step of each implementation, and the largest relative
    difference from torch's: the versions must compute the same thing to be compared."""
    before = {name: as_float(impl.loss()) for name, impl in impls.items()}
    for impl in impls.values():
        impl.step()
    after = {name: as_float(impl.loss()) for name, impl in impls.items()}
    ref = impls["torch"].parameter_arrays()
    param_diff = {}
    for name, impl in impls.items():
        diffs = [
            float(np.max(np.abs(np.asarray(a) - r)) / (np.max(np.abs(r)) or 1.0))
            for a, r in zip(impl.parameter_arrays(), ref)
        ]
        param_diff[name] = max(diffs)

    def worst(losses):
        return max(abs(v - losses["torch"]) / abs(losses["torch"]) for v in losses.values())

    return {
        "loss_before": before,
        "loss_after_one_step": after,
        "max_rel_loss_diff": max(worst(before), worst(after)),
        "max_rel_param_diff": max(param_diff.values()),
    }


def run(torch, settings: Settings) -> list[dict]:
    results = []
    for sizes, batch in QUICK_SIZES if settings.quick else FULL_SIZES:
        for activation in ACTIVATIONS:
            params, x, y = make_problem(sizes, batch)
            impls, notes = implementations(torch, params, x, y, activation)
            check = agreement(impls)
            name = f"{'-'.join(map(str, sizes))} b{batch} {activation}"
            fns = {key: impl.step for key, impl in impls.items()}
            gemms = GemmOnly(params, x)
            fns["gemm-only"] = gemms.step
            row = timed_result(
                "mlp",
                name,
                {
                    "sizes": list(sizes),
                    "batch": batch,
                    "activation": activation,
                    "dtype": "float32",
                    "lr": LR,
                    "gemm_flops": gemms.flops(),
                },
                fns,
                settings,
                check=check,
                notes=notes,
            )
            gemm_us = row["timings"]["gemm-only"]["median"]
            row["vs_gemm_only"] = {k: t["median"] / gemm_us for k, t in row["timings"].items()}
            row["gemm_gflops"] = gemms.flops() / gemm_us / 1e3
            results.append(row)
    return results
