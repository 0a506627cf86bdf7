"""Newton's method with gg.func.hessian on a smooth convex problem (L2-regularised
logistic regression): x <- x - H⁻¹ ∇f converges in a handful of steps."""
import numpy as np

import gpugrad as gg
import gpugrad.nn.functional as F


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    a = gg.tensor(rng.standard_normal((50, 3)))
    b = gg.tensor((rng.standard_normal(50) > 0).astype(np.float64))

    def f(w):
        return F.binary_cross_entropy_with_logits(a @ w, b) + 0.1 * (w * w).sum()

    return f


def newton(f, w, steps: int = 8):
    norms = []
    for _ in range(steps):
        g = gg.func.grad(f)(w)
        h = gg.func.hessian(f)(w)
        w = w - gg.tensor(np.linalg.solve(h.numpy(), g.numpy()))
        norms.append(float(np.linalg.norm(gg.func.grad(f)(w).numpy())))
    return w, norms


if __name__ == "__main__":
    w, norms = newton(make_problem(), gg.zeros(3, dtype=gg.float64))
    print("gradient norm per Newton step:", " ".join(f"{n:.2e}" for n in norms))
