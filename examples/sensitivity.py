"""Sensitivity of a whole output vector to one parameter, in one forward-mode pass:
jvp with a tangent that is 1 on that parameter and 0 elsewhere gives d(outputs)/d(theta)."""
import gpugrad as gg


def simulate(theta, steps: int = 20, dt: float = 0.1):
    """A damped oscillator x'' = -theta x - 0.1 x', integrated explicitly; returns x(t)."""
    x, v = gg.ones((), dtype=theta.dtype), gg.zeros((), dtype=theta.dtype)
    xs = []
    for _ in range(steps):
        a = -theta * x - 0.1 * v
        x, v = x + dt * v, v + dt * a
        xs.append(x)
    return gg.stack(xs)


if __name__ == "__main__":
    theta = gg.tensor(2.0, dtype=gg.float64)
    xs, dxs = gg.func.jvp(simulate, (theta,), (gg.ones((), dtype=gg.float64),))
    print("x(t):      ", [round(v, 4) for v in xs.tolist()[:6]], "...")
    print("dx/dtheta: ", [round(v, 4) for v in dxs.tolist()[:6]], "...")
