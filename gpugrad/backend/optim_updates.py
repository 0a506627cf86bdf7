"""The array updates of the table-driven optimizers (RMSprop, Adagrad, Adadelta, Adamax, NAdam,
RAdam), in place, in torch's order of operations (its CPU kernels' arithmetic), so that they
follow torch.optim's single-tensor path number for number. Each is the reference of its fused
kernel in kernels.py (the fallback and the test oracle) and reads the same `hyper` array: the
step's hyperparameters in the order of the kernel's slots, step-dependent scalars included."""

from __future__ import annotations

from gpugrad.backend import xp_of


def lerp_(start, end, weight: float) -> None:
    """start += weight (end - start), torch's lerp (from the end when weight >= 0.5)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def addcmul_(out, t1, t2, value: float = 1.0) -> None:
    """out += value * t1 * t2."""
    out += value * t1 * t2


def addcdiv_(out, t1, t2, value: float = 1.0) -> None:
    """out += value * t1 / t2."""
    out += value * t1 / t2


def with_weight_decay(grad, param, weight_decay: float):
    """grad + weight_decay * param (a new array), or grad itself when weight_decay is 0."""
    return grad + weight_decay * param if weight_decay != 0 else grad


def weight_decay_(param, grad, lr: float, weight_decay: float, decoupled: bool):
    """The gradient to use after weight decay: decoupled (AdamW's way) shrinks param in place
    by 1 - lr * weight_decay and keeps grad; otherwise weight_decay * param joins grad."""
    if weight_decay != 0 and decoupled:
        param *= 1 - lr * weight_decay
        return grad
    return with_weight_decay(grad, param, weight_decay)


def _floats(hyper):
    return [float(h) for h in hyper]


def rmsprop_reference(param, grad, square_avg, grad_avg, momentum_buffer, hyper) -> None:
    """One RMSprop step (grad_avg: centered only; momentum_buffer: momentum > 0 only)."""
    lr, alpha, eps, weight_decay, momentum, maximize = _floats(hyper)
    xp = xp_of(param)
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    square_avg *= alpha
    addcmul_(square_avg, grad, grad, 1 - alpha)
    if grad_avg is not None:
        lerp_(grad_avg, grad, 1 - alpha)
        avg = xp.sqrt(square_avg + -1 * grad_avg * grad_avg)
    else:
        avg = xp.sqrt(square_avg)
    avg += eps
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        addcdiv_(momentum_buffer, grad, avg)
        param += -lr * momentum_buffer
    else:
        addcdiv_(param, grad, avg, -lr)


def adagrad_reference(param, grad, state_sum, hyper) -> None:
    """One Adagrad step; clr = lr / (1 + (step - 1) lr_decay)."""
    clr, eps, weight_decay, maximize = _floats(hyper)
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    addcmul_(state_sum, grad, grad, 1)
    std = xp_of(param).sqrt(state_sum)
    std += eps
    addcdiv_(param, grad, std, -clr)


def adadelta_reference(param, grad, square_avg, acc_delta, hyper) -> None:
    """One Adadelta step."""
    lr, rho, eps, weight_decay, maximize = _floats(hyper)
    xp = xp_of(param)
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    square_avg *= rho
    addcmul_(square_avg, grad, grad, 1 - rho)
    std = xp.sqrt(square_avg + eps)
    delta = xp.sqrt(acc_delta + eps)
    delta /= std
    delta *= grad
    acc_delta *= rho
    addcmul_(acc_delta, delta, delta, 1 - rho)
    param += -lr * delta


def adamax_reference(param, grad, exp_avg, exp_inf, hyper) -> None:
    """One Adamax step; clr = lr / (1 - beta1**step)."""
    clr, beta1, beta2, eps, weight_decay, maximize = _floats(hyper)
    xp = xp_of(param)
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    lerp_(exp_avg, grad, 1 - beta1)
    exp_inf *= beta2
    norm = xp.abs(grad)
    norm += eps
    xp.maximum(exp_inf, norm, out=exp_inf)
    addcdiv_(param, exp_avg, exp_inf, -clr)


def nadam_reference(param, grad, exp_avg, exp_avg_sq, hyper) -> None:
    """One NAdam step; grad_coef and avg_coef come from the mu schedule (optim/nadam.py)."""
    (lr, beta1, beta2, eps, weight_decay, decoupled, bias_correction2, grad_coef, avg_coef,
     maximize) = _floats(hyper)
    xp = xp_of(param)
    grad = -grad if maximize else grad
    grad = weight_decay_(param, grad, lr, weight_decay, decoupled)
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    addcmul_(exp_avg_sq, grad, grad, 1 - beta2)
    denom = xp.sqrt(exp_avg_sq / bias_correction2)
    denom += eps
    addcdiv_(param, grad, denom, grad_coef)
    addcdiv_(param, exp_avg, denom, avg_coef)


def radam_reference(param, grad, exp_avg, exp_avg_sq, hyper) -> None:
    """One RAdam step; rect and rectified (rho_t > 5) come from optim/radam.py."""
    (lr, beta1, beta2, eps, weight_decay, decoupled, bias_correction1, bias_correction2_sqrt,
     rect, rectified, maximize) = _floats(hyper)
    grad = -grad if maximize else grad
    grad = weight_decay_(param, grad, lr, weight_decay, decoupled)
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    addcmul_(exp_avg_sq, grad, grad, 1 - beta2)
    corrected = exp_avg / bias_correction1
    if rectified:  # the variance is tractable: the rectified adaptive step
        root = xp_of(param).sqrt(exp_avg_sq)
        root += eps
        param += -1.0 * (corrected * lr * (bias_correction2_sqrt / root) * rect)
    else:  # early steps: plain momentum SGD
        param += -1.0 * (corrected * lr)
