"""Losses. Cross-entropy over class indices runs a fused, stable softmax + NLL row kernel
(SoftmaxXent, with its backward SoftmaxXentBackward written in primitives); every other
loss is a composition of primitives."""
from __future__ import annotations

import operator

import numpy as np

from gpugrad import backend, replay
from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import device_guard, kernels, xp_of
from gpugrad.ops import activation as A
from gpugrad.ops import elementwise as E
from gpugrad.ops import reduce as R
from gpugrad.ops import shape as S
from gpugrad.ops._operands import promote, same_device
from gpugrad.tensor import Tensor


def _onehot(target, like: Tensor) -> Tensor:
    """Rows of one-hot class indicators (a target outside the classes gives a row of zeros)."""
    return Tensor._make(replay.op(_onehot_array, target, like.shape[1], like.array.dtype))


def _onehot_array(target, classes, dtype):
    return (xp_of(target).arange(classes) == target[:, None]).astype(dtype)


def report_bad_targets(name: str, classes: int, flag) -> None:
    """Raise IndexError for a target a kernel flagged out of range: now on the CPU, at the next
    host read on a GPU (checking now would synchronize in the middle of a step)."""
    if isinstance(flag, np.ndarray):
        bad = kernels.take_bad_target(flag)
        if bad is not None:
            raise IndexError(f"{name}: target {bad} is out of bounds for {classes} classes")
        return
    backend.defer(("bad target", id(flag)), lambda: _raise_bad_target(name, classes, flag))


def _raise_bad_target(name: str, classes: int, flag) -> None:
    bad = kernels.take_bad_target(flag)  # a device read: this runs at a host read anyway
    if bad is not None:
        raise IndexError(f"{name}: target {bad} is out of bounds for {classes} classes")


class SoftmaxXent(ArrayFunction):
    """Rows' loss logsumexp(x_i) - x_i[t_i] of a (rows, classes) x, 0 where t_i is ignore_index,
    reduced: 'none', 'sum', or 'mean' over the rows that count (NaN when none does, as torch)."""

    @staticmethod
    def forward(ctx, x, target, ignore_index, reduction):
        flag = kernels.bad_target_flag(x)
        loss, lse = kernels.softmax_xent_fwd(x, target, ignore_index, flag)
        report_bad_targets("cross_entropy", x.shape[1], flag)
        ctx.ignore_index, ctx.reduction = ignore_index, reduction
        count = None
        if reduction == "mean":
            count = xp_of(x).asarray((target != ignore_index).sum(), dtype=x.dtype)
            loss = loss.sum() / count
        elif reduction == "sum":
            loss = loss.sum()
        ctx.save_for_backward(x, target, lse, count)
        return loss

    @staticmethod
    def _row_scale(ctx, target, count, g):
        """Each row's factor of the gradient: g for 'none', g / count for 'mean', and 0 in the
        ignored rows (also when no row counts and g / count is inf)."""
        if ctx.reduction == "mean":
            g = g / count
        counted = Tensor._result(replay.op(operator.ne, target.array, ctx.ignore_index))
        return E.where(counted, g, 0.0)

    @staticmethod
    def backward(ctx, g):
        x, target, lse, count = ctx.saved_tensors
        scale = SoftmaxXent._row_scale(ctx, target, count, g)
        return SoftmaxXentBackward.apply(x, target.array, lse.array, scale), None, None, None

    @staticmethod
    def jvp(ctx, tx, _target, _ignore, _reduction):
        x, target, _lse, count = ctx.saved_tensors
        p = A.softmax(x, 1)
        rows = R.sum(tx * (p - _onehot(target.array, x)), 1)
        rows = SoftmaxXent._row_scale(ctx, target, count, rows) if ctx.reduction == "mean" else \
            E.where(Tensor._result(replay.op(operator.ne, target.array, ctx.ignore_index)), rows, 0.0)
        return rows if ctx.reduction == "none" else R.sum(rows)


class SoftmaxXentBackward(ArrayFunction):
    """gx = (softmax(x) - onehot(t)) * g[:, None] in one pass (g is 0 in the ignored rows)."""

    @staticmethod
    def forward(ctx, x, target, lse, g):
        ctx.save_for_backward(x, target, g)
        return kernels.softmax_xent_bwd(x, target, lse, g)

    @staticmethod
    def backward(ctx, u):
        x, target, g = ctx.saved_tensors  # g is 0 in the ignored rows, so their terms vanish
        p = A.softmax(x, 1)
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            w = u * S.unsqueeze(g, 1)
            grad_x = p * (w - R.sum(w * p, 1, keepdim=True))  # softmax's Jacobian-vector product
        if ctx.needs_input_grad[3]:
            grad_g = R.sum(u * (p - _onehot(target.array, x)), 1)
        return grad_x, None, None, grad_g

    @staticmethod
    def jvp(ctx, tx, _t, _lse, tg):
        x, target, g = ctx.saved_tensors
        p = A.softmax(x, 1)
        jp = p * (tx - R.sum(tx * p, 1, keepdim=True))
        return jp * S.unsqueeze(g, 1) + (p - _onehot(target.array, x)) * S.unsqueeze(tg, 1)


# torch's floors under p (1 - p): the gradient's is the float 1e-12 (EPSILON in its kernel),
# the double backward's the double 1e-12
_BCE_EPS = float(np.float32(1e-12))
_BCE_EPS2 = 1e-12


class BinaryCrossEntropy(ArrayFunction):
    """Per element -(y log p + (1 - y) log(1 - p)), each log clamped at -100, as torch."""

    @staticmethod
    def forward(ctx, p, y):
        xp = xp_of(p)
        ctx.save_for_backward(p, y)
        with np.errstate(divide="ignore"):  # log(0) = -inf is clamped: p = 0 and 1 are valid
            return (y - 1) * xp.maximum(xp.log1p(-p), -100) - y * xp.maximum(xp.log(p), -100)

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_tensors
        grad_p = BinaryCrossEntropyBackward.apply(p, y, g) if ctx.needs_input_grad[0] else None
        grad_y = g * BinaryCrossEntropy._target_slope(p) if ctx.needs_input_grad[1] else None
        return grad_p, grad_y

    @staticmethod
    def _target_slope(p):
        """d loss / dy = -logit(p), unclamped (+-inf at p = 0 and 1) as torch's; as a difference
        of logs, so its own derivative there is inf, not the quotient's inf * 0."""
        p = p + 0.0  # -0.0 -> 0.0: at 0 torch's logit derivative takes the gradient's sign only
        with np.errstate(divide="ignore"):
            return E.log1p(-p) - E.log(p)

    @staticmethod
    def jvp(ctx, tp, ty):
        p, y = ctx.saved_tensors
        return BinaryCrossEntropyBackward.apply(p, y, tp) + ty * BinaryCrossEntropy._target_slope(p)


class BinaryCrossEntropyBackward(ArrayFunction):
    """gp = g (p - y) / max(p (1 - p), 1e-12): finite at p = 0 and 1 (torch's rule, where the
    clamped logs' own derivatives would give 0 / 0). Linear in g."""

    @staticmethod
    def forward(ctx, p, y, g):
        ctx.save_for_backward(p, y, g)
        return g * (p - y) / xp_of(p).maximum((1 - p) * p, _BCE_EPS)

    @staticmethod
    def _curvature(p, y):
        """d/dp of (p - y) / (p (1 - p)), with the epsilons of torch's
        binary_cross_entropy_double_backward."""
        return (p * p - 2 * p * y + y) / ((p + _BCE_EPS2) ** 2 * (1 - p + _BCE_EPS2) ** 2)

    @staticmethod
    def _y_slope(p):
        return -1 / E.clamp((1 - p) * p, min=_BCE_EPS2)

    @staticmethod
    def backward(ctx, u):
        p, y, g = ctx.saved_tensors
        need_p, need_y, need_g = ctx.needs_input_grad
        return (
            u * g * BinaryCrossEntropyBackward._curvature(p, y) if need_p else None,
            u * g * BinaryCrossEntropyBackward._y_slope(p) if need_y else None,
            BinaryCrossEntropyBackward.apply(p, y, u) if need_g else None,
        )

    @staticmethod
    def jvp(ctx, tp, ty, tg):
        p, y, g = ctx.saved_tensors
        rule = BinaryCrossEntropyBackward
        return g * (tp * rule._curvature(p, y) + ty * rule._y_slope(p)) + rule.apply(p, y, tg)


def _reduce(name: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        if loss.array.dtype.kind != "f":
            raise TypeError(f"{name}: the mean of an integer loss ({loss.dtype}) is undefined")
        return R.mean(loss)
    if reduction == "sum":
        return R.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_reduction(name: str, reduction) -> None:
    """Checked first, as torch does, so no loss computes anything for a misspelt reduction."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_input(name: str, x) -> int:
    """The number of classes of logits / log-probabilities x: a float tensor whose dim 1 (dim 0
    when 1-D) holds the classes."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point input, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name}: input needs a class dimension, got a 0-d tensor")
    return x.shape[1] if x.ndim > 1 else x.shape[0]


def _check_weight(name: str, weight, x: Tensor, classes: int, same_dtype: bool = True) -> None:
    """Class weights: one entry per class, on x's device, of x's dtype (of any with
    probability targets), as torch's."""
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f"{name}: weight must be a Tensor or None, got {type(weight).__name__}")
    if (weight.array.dtype != x.array.dtype) if same_dtype else weight.array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: weight has dtype {weight.dtype} but input has {x.dtype}")
    if tuple(weight.shape) != (classes,):
        raise ValueError(
            f"{name}: weight must hold one entry for each of the {classes} classes, got shape "
            f"{tuple(weight.shape)}"
        )
    same_device(name, x, weight)


def _reduce_rows(rows: Tensor, row_weight: Tensor, valid, out_shape, reduction: str) -> Tensor:
    """Per-row losses reduced as torch's: ignored rows are exactly 0, whatever their logits
    (NaN, inf), and pass no gradient, being masked by where rather than by their zero weight
    (0 * NaN is NaN); the mean divides by the counted weight, so with every row ignored it is
    0 / 0 = NaN while the gradient stays 0 (not 0 * inf)."""
    rows = E.where(Tensor._make(valid), rows, 0.0)
    if reduction == "mean":
        return R.sum(rows) / R.sum(row_weight)
    return S.reshape(rows, out_shape) if reduction == "none" else R.sum(rows)


def _class_rows(name: str, x: Tensor, target: Tensor):
    """(rows, classes) logits and (rows,) targets; class dim 1 moved last for N-d inputs."""
    if x.ndim == 1:
        return S.unsqueeze(x, 0), S.reshape(target, 1), ()
    if x.ndim == 2:
        return x, target, (x.shape[0],)
    moved = S.permute(x, 0, *range(2, x.ndim), 1)
    rows = int(np.prod(target.shape))  # not -1: with no classes the row count is not implied
    return S.reshape(moved, rows, x.shape[1]), S.reshape(target, rows), tuple(target.shape)


def _check_class_target(name: str, x: Tensor, target: Tensor) -> None:
    """Class-index targets: integers, one per row of x (class dim 1) or a 0-d for a 1-D x."""
    if target.array.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: target must hold class indices (an integer tensor), got {target.dtype}"
        )
    expected = (x.shape[0],) + tuple(x.shape[2:]) if x.ndim > 1 else ()
    if tuple(target.shape) != expected and not (x.ndim == 1 and tuple(target.shape) == (1,)):
        raise ValueError(
            f"{name}: input of shape {tuple(x.shape)} expects a target of shape "
            f"{expected}, got {tuple(target.shape)}"
        )


def _row_weights(name: str, target, classes: int, ignore_index: int, weight, dtype):
    """(safe targets: ignored ones made 0, each row's weight: weight[t] or 1, 0 where ignored,
    the mask of rows that count),
    with targets out of range flagged (reported by report_bad_targets). One capture op."""
    xp = xp_of(target)
    target = target.astype(np.int64, copy=False)
    flag_target = kernels.bad_target_flag(target)
    kernels.flag_bad_targets(target, classes, ignore_index, flag_target)
    report_bad_targets(name, classes, flag_target)
    counted = (target != ignore_index) & (target >= 0) & (target < classes)
    safe = xp.where(counted, target, 0)
    row_weight = counted.astype(dtype)
    if weight is not None:
        row_weight = row_weight * weight[safe]
    return safe, row_weight, counted


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits vs class indices (or class probabilities), stable."""
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:  # torch lets a negative (or NaN) value through
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    classes = _class_input("cross_entropy", input)
    if not isinstance(target, Tensor):
        target = Tensor(target, device=input.device)
    same_device("cross_entropy", input, target)
    soft = target.array.dtype.kind == "f"
    if not soft and tuple(target.shape) == tuple(input.shape):  # torch tells them by shape
        raise TypeError(
            f"cross_entropy: a target of the input's shape holds class probabilities and must be "
            f"floating point, got {target.dtype}"
        )
    _check_weight("cross_entropy", weight, input, classes, same_dtype=not soft)
    if soft:
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    _check_class_target("cross_entropy", input, target)
    with device_guard(input.array):  # CuPy works on its current GPU: make it input's
        return _class_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def _class_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
    # No host reads and no branch on the data (so a captured step replays it): a target out
    # of range is flagged by the kernel and raised as IndexError (at once on the CPU, at the
    # next host read on a GPU); ignored rows weigh 0.
    x, t, out_shape = _class_rows("cross_entropy", input, target)
    classes = x.shape[1]
    t64 = t.array if t.array.dtype == np.int64 else replay.op(_as_int64, t.array)
    if weight is None and not label_smoothing and classes:
        rows = SoftmaxXent.apply(x, t64, int(ignore_index), reduction)
        return S.reshape(rows, out_shape) if reduction == "none" else rows
    safe, row_weight, counted = replay.op(_row_weights, "cross_entropy", t64, classes,
                                          ignore_index, None if weight is None else weight.array,
                                          x.array.dtype)
    row_weight = Tensor._make(row_weight)
    if not classes:  # every target was ignored (any other is out of bounds): rows count 0
        rows = R.sum(x, 1) * row_weight
    else:
        nll = SoftmaxXent.apply(x, t64, int(ignore_index), "none")  # ignored rows 0
        rows = nll * row_weight
        if label_smoothing:
            logp = A.log_softmax(x, 1)
            class_w = 1 if weight is None else S.unsqueeze(weight.detach(), 0)
            smooth = -R.sum(logp * class_w, 1) / classes
            rows = rows * (1 - label_smoothing) + smooth * label_smoothing
    return _reduce_rows(rows, row_weight, counted, out_shape, reduction)


def _as_int64(target):
    return target.astype(np.int64)


def _soft_cross_entropy(x, target, weight, reduction, label_smoothing):
    if tuple(target.shape) != tuple(x.shape):
        raise ValueError(
            f"cross_entropy: probability targets must match input shape {tuple(x.shape)}, got {tuple(target.shape)}"
        )
    classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    if label_smoothing and classes:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    logp = A.log_softmax(x, 1 if x.ndim > 1 else 0)
    if weight is not None:
        shape = (1, classes) + (1,) * (x.ndim - 2) if x.ndim > 1 else (classes,)
        logp = logp * S.reshape(weight, shape)
    rows = -R.sum(logp * target, 1 if x.ndim > 1 else 0)
    if reduction == "mean" and not classes:  # torch's sum / (numel / classes): 0 / 0
        return R.sum(rows) / 0.0
    return _reduce("cross_entropy", rows, reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities at the target classes."""
    _check_reduction("nll_loss", reduction)
    if not isinstance(target, Tensor):
        target = Tensor(target, device=input.device)
    classes = _class_input("nll_loss", input)
    same_device("nll_loss", input, target)
    _check_weight("nll_loss", weight, input, classes)
    _check_class_target("nll_loss", input, target)
    with device_guard(input.array):
        return _nll_loss(input, target, weight, ignore_index, reduction)


def _nll_loss(input, target, weight, ignore_index, reduction):
    x, t, out_shape = _class_rows("nll_loss", input, target)
    safe, row_weight, counted = replay.op(_row_weights, "nll_loss", t.array, x.shape[1],
                                          ignore_index, None if weight is None else weight.array,
                                          x.array.dtype)
    row_weight = Tensor._make(row_weight)
    if x.shape[1]:
        rows = -S.Index.apply(x, (replay.op(_rows_of, safe), safe)) * row_weight
    else:  # every target was ignored (any other is out of bounds): rows count 0
        rows = R.sum(x, 1) * row_weight
    return _reduce_rows(rows, row_weight, counted, out_shape, reduction)


def _rows_of(safe):
    return xp_of(safe).arange(safe.shape[0])


def _not_target(safe, shape):
    others = xp_of(safe).ones(shape, dtype=bool)
    others[xp_of(safe).arange(shape[0]), safe] = False
    return others


def _class_weights(weight, safe, dtype):
    return weight[safe][:, None].astype(dtype, copy=False)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error."""
    _check_reduction("mse_loss", reduction)
    _check_not_both_integer("mse_loss", input, target)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"mse_loss: input {tuple(input.shape)} and target {tuple(target.shape)} differ in shape")
    diff = input - target
    return _reduce("mse_loss", diff * diff, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean absolute error."""
    _check_reduction("l1_loss", reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"l1_loss: input {tuple(input.shape)} and target {tuple(target.shape)} differ in shape")
    return _reduce("l1_loss", E.abs(input - target), reduction)


def _check_rescaling(name: str, what: str, weight, x: Tensor) -> None:
    """An elementwise rescaling (weight, pos_weight) must broadcast to x's shape, not beyond it."""
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor or None, got {type(weight).__name__}")
    if not S.expandable(tuple(weight.shape), tuple(x.shape)):
        raise ValueError(
            f"{name}: {what} of shape {tuple(weight.shape)} does not broadcast to the input's "
            f"shape {tuple(x.shape)}"
        )


def _check_floats(name: str, x: Tensor, target: Tensor) -> None:
    for what, t in (("input", x), ("target", target)):
        if t.array.dtype.kind != "f":
            raise TypeError(f"{name}: expected a floating point {what}, got {t.dtype}")


def _check_not_both_integer(name: str, x: Tensor, target: Tensor) -> None:
    if x.array.dtype.kind != "f" and target.array.dtype.kind != "f":  # torch has no kernel
        raise TypeError(f"{name}: not implemented for {x.dtype} input and {target.dtype} target")


def _check_probabilities(name: str, what: str, t: Tensor) -> None:
    """Values in [0, 1] (NaN refused), as torch. Checked on the CPU only: on a GPU it would
    cost a device-to-host synchronization per call; nor while gg.capture records a step (its
    arrays are then replay.Traced, not plain ndarrays), as a replay would not check again."""
    array = t.array
    if type(array) is np.ndarray and array.size and not ((array >= 0) & (array <= 1)).all():
        raise ValueError(f"{name}: all elements of {what} should be between 0 and 1")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None, reduction: str = "mean",  # noqa: A002
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"binary_cross_entropy_with_logits: input {tuple(input.shape)} and target {tuple(target.shape)} differ in shape"
        )
    _check_floats("binary_cross_entropy_with_logits", input, target)
    _check_rescaling("binary_cross_entropy_with_logits", "weight", weight, input)
    _check_rescaling("binary_cross_entropy_with_logits", "pos_weight", pos_weight, input)
    # log sigmoid(x) = -softplus(-x), stable and with the gradient sigmoid(-x) at every x, 0 included
    log_sigmoid = -A.softplus(-input, threshold=float("inf"))
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * (1 + (pos_weight - 1) * target)
    loss = (1 - target) * input - log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight=None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """-(y log p + (1 - y) log(1 - p)), logs clamped at -100 as in PyTorch."""
    _check_reduction("binary_cross_entropy", reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"binary_cross_entropy: input {tuple(input.shape)} and target {tuple(target.shape)} differ in shape"
        )
    _check_floats("binary_cross_entropy", input, target)
    if input.array.dtype != target.array.dtype:
        raise TypeError(
            f"binary_cross_entropy: target has dtype {target.dtype} but input has {input.dtype}"
        )
    _check_rescaling("binary_cross_entropy", "weight", weight, input)
    _check_probabilities("binary_cross_entropy", "input", input)
    _check_probabilities("binary_cross_entropy", "target", target)
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy", loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,  # noqa: A002
                      weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Multiclass SVM hinge loss: sum_{j != y} max(0, margin - x_y + x_j)**p / classes."""
    _check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    if not isinstance(target, Tensor):
        target = Tensor(target, device=input.device)
    if isinstance(input, Tensor) and input.ndim == 0:  # torch: one class
        input = S.reshape(input, 1)
    classes = _class_input("multi_margin_loss", input)
    if input.ndim > 2 or not classes:
        raise ValueError(
            f"multi_margin_loss: expected a 1-D or 2-D input with at least one class, got shape "
            f"{tuple(input.shape)}"
        )
    same_device("multi_margin_loss", input, target)
    _check_weight("multi_margin_loss", weight, input, classes)
    _check_class_target("multi_margin_loss", input, target)
    with device_guard(input.array):
        return _multi_margin_loss(input, target, p, margin, weight, reduction)


def _multi_margin_loss(input, target, p, margin, weight, reduction):
    x = S.unsqueeze(input, 0) if input.ndim == 1 else input
    t = S.reshape(target, 1) if input.ndim == 1 else target
    classes = x.shape[1]
    safe, _, _ = replay.op(_row_weights, "multi_margin_loss", t.array, classes, -(10**18), None,
                           x.array.dtype)
    rows = replay.op(_rows_of, safe)
    picked = S.unsqueeze(S.Index.apply(x, (rows, safe)), 1)
    z = margin - picked + x
    others = replay.op(_not_target, safe, x.shape)
    # torch's rule: a term counts where z > 0 and j != y, so NaN terms and the target's own
    # column (inf - inf when x_y is infinite) add nothing to the loss or the gradient
    hinge = E.where(E.logical_and(z > 0, Tensor._make(others)), z, 0.0)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * Tensor._make(replay.op(_class_weights, weight.array, safe, x.array.dtype))
    per_row = R.sum(hinge, 1) / classes
    if input.ndim == 1 and target.ndim == 0:
        per_row = S.reshape(per_row, ())
    return _reduce("multi_margin_loss", per_row, reduction)


# ---- more losses --------------------------------------------------------------------------------
class Xlogy(ArrayFunction):
    """x log(y), and 0 where x == 0 unless y is NaN (torch.xlogy, kl_div's target log target):
    gradients log(y) (0 where x == 0) and x / y, as torch's (so 0 / 0 = NaN at x = y = 0)."""

    jvp_none_ok = True

    @staticmethod
    def forward(ctx, x, y):
        xp = xp_of(x)
        ctx.save_for_backward(x, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where((x == 0) & ~xp.isnan(y), x.dtype.type(0), x * xp.log(y))

    @staticmethod
    def _log_where_nonzero(x, y):
        return Xlogy.apply((x != 0).to(x.dtype), y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return (
            g * Xlogy._log_where_nonzero(x, y) if ctx.needs_input_grad[0] else None,
            g * x / y if ctx.needs_input_grad[1] else None,
        )

    @staticmethod
    def jvp(ctx, tx, ty):
        x, y = ctx.saved_tensors
        terms = [] if tx is None else [tx * Xlogy._log_where_nonzero(x, y)]
        if ty is not None:
            terms.append(ty * x / y)
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _same_shape(name: str, input: Tensor, target: Tensor) -> None:  # noqa: A002
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"{name}: input {tuple(input.shape)} and target {tuple(target.shape)} differ in shape"
        )


def _quadratic_then_linear(input: Tensor, target: Tensor, cut: float):  # noqa: A002
    """(the quadratic 0.5 d**2 where |d| < cut, the linear |d| - 0.5 cut beyond, where to
    switch). NaN takes the quadratic branch (gradient d: NaN, as torch's); the inner where
    keeps an infinite d out of it, so its unused gradient is 0, not 0 * inf."""
    d = input - target
    size = E.abs(d)
    beyond = size >= cut
    small = E.where(beyond, 0.0, d)
    return 0.5 * small * small, size - 0.5 * cut, beyond


def smooth_l1_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta 0: L1."""
    _check_reduction("smooth_l1_loss", reduction)
    _same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    if beta == 0:  # torch's l1_loss then, integers included
        return l1_loss(input, target, reduction)
    _check_not_both_integer("smooth_l1_loss", input, target)
    quadratic, linear, beyond = _quadratic_then_linear(input, target, beta)
    return _reduce("smooth_l1_loss", E.where(beyond, linear, quadratic / beta), reduction)


def huber_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
) -> Tensor:
    """0.5 d**2 where |d| < delta, else delta (|d| - 0.5 delta)."""
    _check_reduction("huber_loss", reduction)
    if input.array.dtype.kind != "f":  # torch writes the loss in the input's dtype
        raise TypeError(f"huber_loss: expected a floating point input, got {input.dtype}")
    _same_shape("huber_loss", input, target)
    if delta <= 0:
        raise RuntimeError(
            f"huber_loss does not support non-positive values for delta, got {delta}"
        )
    quadratic, linear, beyond = _quadratic_then_linear(input, target, delta)
    return _reduce("huber_loss", E.where(beyond, delta * linear, quadratic), reduction)


def kl_div(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """target (log target - input) per element, input holding log-probabilities (0 where target
    is 0); reduction 'batchmean' divides the sum by the batch size, the KL divergence's own
    definition, 'mean' by the number of elements."""
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(
            f"kl_div: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}"
        )
    _check_floats("kl_div", input, target)  # torch: integral inputs not supported
    _same_shape("kl_div", input, target)
    if log_target:
        loss = E.exp(target) * (target - input)
    else:
        # as torch: xlogy(target, target), 0 at target 0 (where the target's gradient is NaN)
        loss = Xlogy.apply(*promote("kl_div", target, target)) - target * input
    if reduction == "batchmean":
        total = R.sum(loss)
        return total / input.shape[0] if input.ndim else total
    if reduction == "mean":
        import warnings

        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            UserWarning,
            stacklevel=2,
        )
    return _reduce("kl_div", loss, reduction)
