"""gg.autograd.functional: torch.autograd.functional's higher-level derivatives of a function
of tensors — vjp, jvp, jacobian, hessian, vhp, hvp — with torch's signatures, argument checks
and return shapes. Inputs and outputs are a Tensor or a tuple of Tensors; results come back
in the same form (detached unless create_graph=True). vectorize is accepted; the Jacobian
rows (or columns, forward mode) are computed one by one. strict=True turns an output that
does not depend on an input into an error instead of zeros. (gg.func holds the torch.func
transforms, grad / vjp / jvp / jacrev / jacfwd / hessian as function wrappers.)"""

from __future__ import annotations

from gpugrad import creation
from gpugrad.autograd import engine, forward_ad
from gpugrad.autograd.forward_ad import _alias
from gpugrad.autograd.mode import enable_grad, is_grad_enabled, set_grad_enabled
from gpugrad.ops import shape as S
from gpugrad.tensor import Tensor

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _as_tuple(value, what: str, fn: str) -> tuple[bool, tuple]:
    """(was it a tuple, the tensors as a tuple), with torch's TypeError otherwise."""
    was_tuple = isinstance(value, tuple)
    items = value if was_tuple else (value,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"value at index {i}" if was_tuple else f"given {what}"
            raise TypeError(
                f"The {what} given to {fn} must be either a Tensor or a tuple of Tensors but the "
                f"{where} has type {type(item)}."
            )
    return was_tuple, items


def _unpack(result, was_tuple):
    """Undo _as_tuple: one level (was_tuple a bool) or two ((outputs, inputs) for Jacobians)."""
    if isinstance(was_tuple, tuple):
        outputs_tuple, inputs_tuple = was_tuple
        if not inputs_tuple:
            result = tuple(row[0] for row in result)
        return result if outputs_tuple else result[0]
    return result if was_tuple else result[0]


def _prepare(inputs: tuple, create_graph: bool, need_graph: bool = True) -> tuple:
    """Differentiable stand-ins for the inputs: with create_graph an input that requires grad
    keeps its graph (so the result can be differentiated again), otherwise a fresh leaf."""
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            with enable_grad():
                out.append(_alias(x))
        else:
            leaf = Tensor._make(x.array, vbox=x._vbox)
            if need_graph:
                leaf.requires_grad_()
            out.append(leaf)
    return tuple(out)


def _finish(tensors: tuple, create_graph: bool) -> tuple:
    if create_graph:
        return tensors
    return tuple(None if t is None else t.detach() for t in tensors)


def _results(outputs, outputs_tuple, result, result_tuple, create_graph: bool):
    """(func's outputs, the derivative) in the caller's form, detached unless create_graph."""
    return (
        _unpack(_finish(outputs, create_graph), outputs_tuple),
        _unpack(_finish(result, create_graph), result_tuple),
    )


def _check_v(v: tuple, other: tuple, other_is_tuple: bool) -> None:
    if len(v) != len(other):
        if other_is_tuple:
            raise RuntimeError(
                f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}."
            )
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, other, strict=True)):
        if tuple(a.shape) != tuple(b.shape):
            prepend = f"Entry {i} in " if other_is_tuple else ""
            raise RuntimeError(
                f"{prepend}v has invalid size: should be {tuple(b.shape)} but got {tuple(a.shape)}."
            )


def _check_requires_grad(tensors: tuple, kind: str, strict: bool) -> None:
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None or not t.requires_grad:
            if kind == "outputs":
                raise RuntimeError(
                    f"The output of the user-provided function is independent of input {i}. This "
                    "is not allowed in strict mode."
                )
            if kind == "jacobian":
                raise RuntimeError(
                    f"The jacobian of the user-provided function with respect to input {i} is "
                    "independent of the input. This is not allowed in strict mode."
                )
            raise RuntimeError(
                f"The gradient with respect to input {i} is independent of the inputs of the "
                "user-provided function. This is not allowed in strict mode."
            )


def _grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None) -> tuple:
    """engine.grad over the outputs that require grad (None for an input nothing reaches)."""
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    pairs = [
        (o, g)
        for o, g in zip(outputs, grad_outputs, strict=True)
        if o is not None and o.requires_grad
    ]
    if not pairs:
        return (None,) * len(inputs)
    outs, seeds = zip(*pairs, strict=True)
    seeds = None if all(g is None for g in seeds) else list(seeds)
    return tuple(
        engine.grad(
            list(outs),
            list(inputs),
            seeds,
            retain_graph=retain_graph,
            create_graph=create_graph,
            allow_unused=True,
        )
    )


def _zeros_for_missing(grads, refs, strict: bool, create_graph: bool, stage: str) -> tuple:
    out = []
    for i, (g, ref) in enumerate(zip(grads, refs, strict=True)):
        if g is None:
            if strict:
                raise RuntimeError(
                    {
                        "back": "The output of the user-provided function is independent of input "
                        f"{i}. This is not allowed in strict mode.",
                        "back_trick": "The gradient with respect to the input is independent of "
                        f"entry {i} in the grad_outputs when using the double backward "
                        "trick to compute forward mode gradients. This is not allowed "
                        "in strict mode.",
                        "double_back": "The hessian of the user-provided function is independent "
                        "of "
                        f"entry {i} in the grad_jacobian. This is not allowed in "
                        "strict mode.",
                    }[stage]
                )
            g = creation.zeros_like(ref)
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError(
                f"The {'jacobian' if stage != 'double_back' else 'hessian'} of the user-provided "
                f"function is independent of input {i}. This is not allowed in strict mode when "
                "create_graph=True."
            )
        out.append(g)
    return tuple(out)


def _vector(
    v,
    against: tuple,
    against_is_tuple: bool,
    fn: str,
    create_graph: bool,
    none_ok: bool,
    none_message: str,
):
    if v is None:
        if not none_ok:
            raise RuntimeError(none_message)
        return None
    _, v = _as_tuple(v, "v", fn)
    v = tuple(t if create_graph else t.detach() for t in v)
    _check_v(v, against, against_is_tuple)
    return v


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product at inputs. v may be omitted when func
    returns one single-element tensor."""
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph)
        outputs_tuple, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", "vjp"
        )
        _check_requires_grad(outputs, "outputs", strict)
        single = len(outputs) == 1 and outputs[0].numel() == 1
        v = _vector(
            v,
            outputs,
            outputs_tuple,
            "vjp",
            create_graph,
            single,
            "The vector v can only be None if the user-provided function returns a single "
            "Tensor with a single element.",
        )
    with set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _grad(outputs, inputs, v, create_graph=create_graph)
        result = _zeros_for_missing(grads, inputs, strict, create_graph, "back")
    return _results(outputs, outputs_tuple, result, inputs_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, by torch's double-backward trick (the
    vjp is linear in its cotangent u, so differentiating u -> J^T u against v gives J v)."""
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph)
        single = len(inputs) == 1 and inputs[0].numel() == 1
        v = _vector(
            v,
            inputs,
            inputs_tuple,
            "jvp",
            create_graph,
            single,
            "The vector v can only be None if the input to the user-provided function is a "
            "single Tensor with a single element.",
        )
        outputs_tuple, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", "jvp"
        )
        _check_requires_grad(outputs, "outputs", strict)
        cotangents = tuple(creation.zeros_like(o, requires_grad=True) for o in outputs)
        grad_inputs = _grad(outputs, inputs, cotangents, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        grads = _grad(grad_inputs, cotangents, v, create_graph=create_graph)
        result = _zeros_for_missing(grads, outputs, strict, create_graph, "back_trick")
    return _results(outputs, outputs_tuple, result, outputs_tuple, create_graph)


def _stack_rows(rows: list, shape: tuple) -> Tensor:
    return S.reshape(S.stack(rows, 0), shape)


def jacobian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """The Jacobian of func at inputs, shaped output.shape + input.shape; a tuple over inputs
    and / or outputs when either is a tuple (outputs outermost). reverse-mode computes one vjp
    per output element, forward-mode one jvp per input element."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(
            f'jacobian: strategy must be "forward-mode" or "reverse-mode", got {strategy!r}'
        )
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(
                "torch.autograd.functional.jacobian: `create_graph=True` and "
                '`strategy="forward-mode"` '
                "are not supported together (yet). Please either set `create_graph=False` or "
                '`strategy="reverse-mode"`.'
            )
        if strict:
            raise RuntimeError(
                "torch.autograd.functional.jacobian: `strict=True` and "
                '`strategy="forward-mode"` are '
                "not supported together (yet). Please either set `strict=False` or "
                '`strategy="reverse-mode"`.'
            )
        return _jacobian_forward(func, inputs)
    if vectorize and strict:
        raise RuntimeError(
            "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
            "supported together. Please either set `strict=False` or `vectorize=False`."
        )
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _prepare(inputs, create_graph)
        outputs_tuple, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", "jacobian"
        )
        _check_requires_grad(outputs, "outputs", strict)
        table = []
        for i, out in enumerate(outputs):
            rows = [[] for _ in inputs]
            flat = S.reshape(out, -1)
            for k in range(out.numel()):
                grads = _grad((flat[k],), inputs, retain_graph=True, create_graph=create_graph)
                for j, (g, x) in enumerate(zip(grads, inputs, strict=True)):
                    if g is None:
                        if strict:
                            raise RuntimeError(
                                f"Output {i} of the user-provided function is independent of input "
                                f"{j}. This is not allowed in strict mode."
                            )
                        g = creation.zeros_like(x)
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(
                            "The jacobian of the user-provided function is independent of "
                            f"input {i}. "
                            "This is not allowed in strict mode when create_graph=True."
                        )
                    rows[j].append(g)
            table.append(
                tuple(
                    _stack_rows(rows[j], tuple(out.shape) + tuple(x.shape))
                    if rows[j]
                    else creation.zeros(
                        *(tuple(out.shape) + tuple(x.shape)), dtype=x.dtype, device=x.device
                    )
                    for j, x in enumerate(inputs)
                )
            )
    table = tuple(_finish(row, create_graph) for row in table)
    return _unpack(table, (outputs_tuple, inputs_tuple))


def _basis(x: Tensor):
    """The unit tangents of x's elements, one at a time."""
    for k in range(x.numel()):
        e = creation.zeros(x.numel(), dtype=x.dtype, device=x.device)
        e.array[k] = 1
        yield S.reshape(e, x.shape)


def _jacobian_forward(func, inputs):
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = tuple(x.detach() for x in inputs)
    columns, outputs_tuple, outputs = [[] for _ in inputs], None, None
    for j, x in enumerate(inputs):
        for e in _basis(x):
            with forward_ad.dual_level():
                duals = [forward_ad.make_dual(a, e) if i == j else a for i, a in enumerate(inputs)]
                outputs_tuple, outs = _as_tuple(
                    func(*duals), "outputs of the user-provided function", "jacobian"
                )
                unpacked = [forward_ad.unpack_dual(o) for o in outs]
            outputs = tuple(u.primal.detach() for u in unpacked)
            columns[j].append(
                tuple(
                    creation.zeros_like(u.primal) if u.tangent is None else u.tangent.detach()
                    for u in unpacked
                )
            )
    table = []
    for i, out in enumerate(outputs):
        row = []
        for j, x in enumerate(inputs):
            stacked = S.stack([column[i] for column in columns[j]], -1)  # out.shape + (x.numel(),)
            row.append(S.reshape(stacked, tuple(out.shape) + tuple(x.shape)))
        table.append(tuple(row))
    return _unpack(tuple(table), (outputs_tuple, inputs_tuple))


def _scalar_output(fn: str, outputs_tuple: bool, outputs: tuple) -> None:
    if outputs_tuple:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(
            f"The Tensor returned by the function given to {fn} should contain a single element"
        )


def hessian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar func at inputs, shaped input.shape + input.shape (a tuple of
    tuples over pairs of inputs when inputs is a tuple): the Jacobian of its gradient."""
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(
            'hessian: outer_jacobian_strategy must be "forward-mode" or "reverse-mode", got '
            f"{outer_jacobian_strategy!r}"
        )
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        if outer_jacobian_strategy == "forward-mode":  # dual inputs: track them, tangents kept
            from gpugrad.func import _track

            xs = tuple(_track(x) for x in xs)
        outputs_tuple, outputs = _as_tuple(
            func(*xs), "outputs of the user-provided function", "hessian"
        )
        _scalar_output("hessian", outputs_tuple, outputs)
        _check_requires_grad(outputs, "outputs", strict)
        grads = _grad(outputs, xs, create_graph=True)
        return _zeros_for_missing(grads, xs, strict, True, "back")

    with enable_grad():  # gradient returns a tuple and inputs is one: a tuple of tuples back
        result = jacobian(
            gradient,
            inputs,
            create_graph=create_graph,
            strict=strict,
            vectorize=vectorize,
            strategy=outer_jacobian_strategy,
        )
    return _unpack(result, (inputs_tuple, inputs_tuple))


def _second_order(
    fn: str, func, inputs, v, create_graph: bool, strict: bool, forward_over_back: bool
):
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn)
        inputs = _prepare(inputs, create_graph)
        single = len(inputs) == 1 and inputs[0].numel() == 1
        v = _vector(
            v,
            inputs,
            inputs_tuple,
            fn,
            create_graph,
            single,
            "The vector v can only be None if the input to the user-provided function is a "
            "single Tensor with a single element.",
        )
        outputs_tuple, outputs = _as_tuple(
            func(*inputs), "outputs of the user-provided function", fn
        )
        _check_requires_grad(outputs, "outputs", strict)
        _scalar_output(fn, outputs_tuple, outputs)
        jac = _grad(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        if (
            forward_over_back
        ):  # hvp: differentiate u -> (d/dx) <jac(x), u> against v (torch's trick)
            cotangents = tuple(creation.zeros_like(x, requires_grad=True) for x in inputs)
            double = _grad(jac, inputs, cotangents, create_graph=True)
            _check_requires_grad(jac, "hessian", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        if forward_over_back:
            grads = _grad(double, cotangents, v, create_graph=create_graph)
        else:
            grads = _grad(jac, inputs, v, create_graph=create_graph)
        result = _zeros_for_missing(grads, inputs, strict, create_graph, "double_back")
    return _results(outputs, outputs_tuple, result, inputs_tuple, create_graph)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H) for a scalar func: the vector-Hessian product."""
    return _second_order("vhp", func, inputs, v, create_graph, strict, forward_over_back=False)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) for a scalar func: the Hessian-vector product (H v = (v^T H)^T for a
    twice-differentiable func; computed by the double-backward trick, as torch)."""
    return _second_order("hvp", func, inputs, v, create_graph, strict, forward_over_back=True)
