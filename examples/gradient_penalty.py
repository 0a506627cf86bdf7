"""Gradient-norm penalty (as in WGAN-GP): train a model while penalising R = ||dL/dW||².
R is itself a function of W through the backward graph, so its gradient needs
double backward (create_graph=True)."""
import gpugrad as gg
import gpugrad.nn.functional as F


def train(steps: int = 60, penalty: float = 1.0, seed: int = 0):
    gg.manual_seed(seed)
    x = gg.randn(32, 4, dtype=gg.float64)
    y = (x[:, 0] * 2 - x[:, 1] > 0).long()
    w = (gg.randn(2, 4, dtype=gg.float64) * 0.5).requires_grad_()
    history = []
    for _ in range(steps):
        loss = F.cross_entropy(x @ w.T, y)
        (grad_w,) = gg.autograd.grad(loss, w, create_graph=True)  # dL/dW, still differentiable
        reg = (grad_w * grad_w).sum()
        total = loss + penalty * reg
        (step,) = gg.autograd.grad(total, w)  # flows through the backward graph of grad_w
        with gg.no_grad():
            w -= 0.5 * step
        history.append((loss.item(), reg.item()))
    return history


if __name__ == "__main__":
    hist = train()
    print(f"loss {hist[0][0]:.4f} -> {hist[-1][0]:.4f}, penalty {hist[0][1]:.5f} -> {hist[-1][1]:.5f}")
