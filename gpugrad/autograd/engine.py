"""The backward engine: walk the recorded graph from the outputs in reverse topological
order (iteratively, with dependency counts: no recursion, so 100k-node chains work), apply
each node's vector-Jacobian product and hand the results to the next nodes."""
from __future__ import annotations

from gpugrad import replay
from gpugrad.autograd import mode
from gpugrad.autograd.function import AccumulateGrad, gradient_edge
from gpugrad.backend import cupy_backend as _gpus
from gpugrad.backend import device_guard, xp_of
from gpugrad.tensor import Tensor


# Called as observer(node, grad_outputs, grad_inputs) after each node runs; empty on the
# normal path, so recording per-edge gradients (gg.viz, flow reports) costs nothing unless asked.
observers: list = []
# Callbacks to run once the backward pass now running has finished (queue_callback).
_final_callbacks: list = []


def queue_callback(callback) -> None:
    """Run callback() when the running backward pass ends, after every .grad is accumulated
    (torch's Variable._execution_engine.queue_callback; DDP waits for its all-reduces here)."""
    _final_callbacks.append(callback)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` into the .grad of the leaves of their graph."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    roots, grads = _roots(tensors, grad_tensors, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    capture = None
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        capture = {gradient_edge(t): i for i, t in enumerate(inputs)}
    claimed = {_owner(g.array) for g in grads}  # the caller's arrays: never adopt them as .grad
    with _QueuedCallbacksRunAtEnd():
        captured = _run(roots, grads, retain_graph, create_graph, capture, claimed)
        if inputs is not None:  # backward(inputs=...) accumulates into those tensors only
            for t, g in zip(inputs, captured):
                if g is not None:
                    with device_guard(t.array):
                        _accumulate_into(t, g, create_graph, claimed)
                        _post_accumulate(t)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Return d(outputs)/d(inputs) · grad_outputs without touching any .grad."""
    single_input = isinstance(inputs, Tensor)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if single_input else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    roots, grads = _roots(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    capture = {}
    for i, t in enumerate(inputs):
        capture.setdefault(gradient_edge(t), []).append(i)
    with _QueuedCallbacksRunAtEnd():
        captured = _run(roots, grads, retain_graph, create_graph, capture)
    result = []
    for i, (t, g) in enumerate(zip(inputs, captured)):
        if g is None:
            if materialize_grads:
                from gpugrad import creation

                g = creation.zeros_like(t)
            elif not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {tuple(t.shape)}) was not used in the graph of the "
                    "outputs; pass allow_unused=True if this is intended"
                )
        elif not create_graph and g.requires_grad:
            g = g.detach()
        result.append(g)
    return tuple(result)


class _QueuedCallbacksRunAtEnd:
    """Run the callbacks queued inside the block once it succeeds; drop them if it fails. A
    backward started from a hook runs its own callbacks only, not the outer pass's. (A class,
    not @contextmanager: this wraps every backward, and a generator costs more.)"""

    def __enter__(self):
        self.queued = len(_final_callbacks)

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                while len(_final_callbacks) > self.queued:  # a callback may queue another
                    _final_callbacks.pop(self.queued)()
        finally:
            del _final_callbacks[self.queued:]
        return False


def _roots(tensors, grad_tensors, who):
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    else:
        grad_tensors = [grad_tensors] if isinstance(grad_tensors, Tensor) else list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"{who}: got {len(tensors)} tensors but {len(grad_tensors)} gradients")
    roots, grads = [], []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not t.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if t.array.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; output {i} has "
                    f"shape {tuple(t.shape)}: pass gradient= (the upstream vector) of that shape"
                )
            with device_guard(t.array):  # ones_like, without its argument parsing
                g = Tensor._make(replay.op(xp_of(t.array).ones, t.array.shape, t.array.dtype))
        else:  # the caller's gradient
            if not isinstance(g, Tensor):
                g = Tensor(g, dtype=t.dtype, device=t.device)
            if tuple(g.shape) != tuple(t.shape):
                raise RuntimeError(
                    f"{who}: gradient of shape {tuple(g.shape)} given for an output of shape "
                    f"{tuple(t.shape)}"
                )
            if g.device != t.device:
                raise RuntimeError(
                    f"{who}: gradient on {g.device} given for an output on {t.device}"
                )
        roots.append(gradient_edge(t))
        grads.append(g)
    return roots, grads


def _graph(roots):
    """Dependency counts (edges into each node) of every node reachable from roots; the keys
    are those nodes, roots included."""
    deps = {node: 0 for node, _ in roots}
    stack = list(deps)
    while stack:
        for edge in stack.pop().next_edges:
            if edge is None:
                continue
            nxt = edge[0]
            if nxt in deps:
                deps[nxt] += 1
            else:  # first visit
                deps[nxt] = 1
                stack.append(nxt)
    return deps


def _needed(seen, capture):
    """Nodes whose execution can reach a captured edge (autograd.grad runs only those)."""
    targets = {node for node, _ in capture}
    needed = {}
    for start in seen:
        if start in needed:
            continue
        stack = [(start, iter(start.next_edges))]
        while stack:
            node, it = stack[-1]
            for edge in it:
                if edge is None:
                    continue
                nxt = edge[0]
                if nxt not in needed:
                    stack.append((nxt, iter(nxt.next_edges)))
                    break
            else:
                stack.pop()
                needed[node] = any(
                    e is not None and (needed[e[0]] or e[0] in targets) for e in node.next_edges
                )
    return needed


def _run(roots, root_grads, retain_graph, create_graph, capture, claimed=None):
    deps = _graph(roots)
    needed = _needed(deps, capture) if capture is not None else None
    buffers: dict = {}
    for (node, nr), g in zip(roots, root_grads):
        _add_to_buffer(buffers, node, nr, g)
    ready = []
    for node, _ in roots:
        if deps[node] == 0 and node not in ready:
            ready.append(node)
    captured = None
    if capture is not None:
        size = sum(len(v) if isinstance(v, list) else 1 for v in capture.values())
        captured = [None] * size

    state = mode.state
    prev_grad_mode = state.grad_enabled
    state.grad_enabled = create_graph
    multi_gpu = _gpus.multi_gpu  # then each node runs with its gradients' GPU current
    anomaly = state.anomaly
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node, None)  # None: no gradient reached this node
            if capture is not None:
                for nr, g in enumerate(grads or ()):
                    slots = capture.get((node, nr))
                    if slots is not None and g is not None:
                        for slot in slots if isinstance(slots, list) else [slots]:
                            captured[slot] = g
                if not needed.get(node, False):
                    _release_subgraph(node, deps, ready, retain_graph)
                    continue
            if isinstance(node, AccumulateGrad):
                if grads is None:
                    continue
                if multi_gpu:
                    with device_guard(node.variable.array):
                        _accumulate_leaf(node, grads[0], create_graph, claimed)
                else:
                    _accumulate_leaf(node, grads[0], create_graph, claimed)
                continue
            if grads is None:  # nothing flowed here: nothing flows on
                grad_inputs = [None] * len(node.next_edges)
            elif multi_gpu:
                with device_guard(next(g.array for g in grads if g is not None)):
                    grad_inputs = _apply_node(node, grads, anomaly)
            else:
                grad_inputs = _apply_node(node, grads, anomaly)
            if not retain_graph and node._saved is not None:
                node.release()
            for edge, g in zip(node.next_edges, grad_inputs):
                if edge is None:
                    continue
                nxt, nr = edge
                if g is not None:  # _add_to_buffer, inline
                    buf = buffers.get(nxt)
                    if buf is None:
                        buf = buffers[nxt] = [None] * nxt.num_outputs
                    buf[nr] = g if buf[nr] is None else buf[nr] + g
                left = deps[nxt] - 1
                deps[nxt] = left
                if left == 0:
                    ready.append(nxt)
    finally:
        state.grad_enabled = prev_grad_mode
    return captured


def _release_subgraph(node, deps, ready, retain_graph):
    """A node autograd.grad does not need: skip it, but count its edges as done."""
    if not retain_graph and not isinstance(node, AccumulateGrad):
        node.release()
    for edge in node.next_edges:
        if edge is None:
            continue
        nxt = edge[0]
        deps[nxt] -= 1
        if deps[nxt] == 0:
            ready.append(nxt)


def _add_to_buffer(buffers, node, nr, g):
    buf = buffers.get(node)
    if buf is None:
        buf = buffers[node] = [None] * node.num_outputs
    buf[nr] = g if buf[nr] is None else buf[nr] + g


def _apply_node(node, grads, anomaly: bool):
    hooks = node._pre_hooks
    if hooks:
        grads = list(grads)
        for nr, fns in hooks.items():
            for fn in list(fns):
                if grads[nr] is None:
                    continue
                new = fn(grads[nr])
                if new is not None:
                    grads[nr] = new
    if node.num_outputs > 1 and node.materialize_grads and any(g is None for g in grads):
        grads = [
            g if g is not None else _zeros_for_output(node, nr) for nr, g in enumerate(grads)
        ]
    result = node.fn.backward(node, *grads)
    if not isinstance(result, tuple):
        result = (result,)
    if len(result) != len(node.next_edges):
        result = _one_per_input(node, result)
    out = []
    for i, (g, edge, meta) in enumerate(zip(result, node.next_edges, node.input_meta)):
        if g is None or edge is None:
            out.append(None)
            continue
        if not isinstance(g, Tensor):
            g = Tensor._make(g)
        if g.array.shape != meta[0] or g.array.dtype != meta[1]:
            g = _validate_grad(node, i, g)
        out.append(g)
    if anomaly:
        from gpugrad.autograd.anomaly import check_node

        check_node(node, out)
    if observers:
        for observer in observers:
            observer(node, grads, out)
    return out


def _one_per_input(node, result) -> tuple:
    """A backward's gradients, one per input: a lone None stands for all of them, extra ones
    must be None."""
    n_inputs = len(node.next_edges)
    too_few = len(result) < n_inputs and (len(result) != 1 or result[0] is not None)
    too_many = len(result) > n_inputs and any(g is not None for g in result[n_inputs:])
    if too_few or too_many:
        raise RuntimeError(
            f"function {node.name()} returned an incorrect number of gradients "
            f"(expected {n_inputs}, got {len(result)})"
        )
    return (result + (None,) * n_inputs)[:n_inputs]


def _validate_grad(node, i, g):
    """Reduce a broadcast gradient to its input's shape; cast it to the input's dtype."""
    shape, dtype = node.input_meta[i]
    if g.array.shape != shape:
        from gpugrad.ops import shape as shape_ops

        if not shape_ops.expandable(shape, g.array.shape):
            raise RuntimeError(
                f"function {node.name()} returned an invalid gradient at index {i} - got "
                f"{list(g.shape)} but expected shape compatible with {list(shape)}"
            )
        g = shape_ops.sum_to(g, shape)
    if g.array.dtype != dtype:
        g = g.to(dtype=dtype.name)
    return g


def _zeros_for_output(node, nr) -> Tensor:
    shape, dtype, xp = node.output_meta[nr]
    return Tensor._make(replay.op(xp.zeros, shape, dtype))


def _owner(array) -> int:
    """Identity of the memory an array views (a reshape of g is still g's memory)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return id(array)


def _accumulate_leaf(node, g, create_graph, claimed):
    if g is None:
        return
    leaf = node.variable
    if leaf._hooks:
        for fn in list(leaf._hooks):
            new = fn(g)
            if new is not None:
                g = new
    _accumulate_into(leaf, g, create_graph, claimed)
    _post_accumulate(leaf)


def _post_accumulate(leaf):
    if leaf._post_accumulate_hooks:
        for fn in list(leaf._post_accumulate_hooks):
            fn(leaf)


def _accumulate_into(leaf, g, create_graph, claimed):
    # every write of leaf.grad is a capture op: a recorded step (gg.capture) makes it again, with
    # that replay's arrays, and reads the .grad the leaf has then
    if create_graph:
        if leaf.grad is None:
            leaf.grad = g
        else:
            leaf.grad = leaf.grad + g
        return
    if leaf.grad is None:
        # Adopt the engine's fresh gradient as .grad (no copy) unless its memory is the
        # caller's or already another leaf's .grad in this pass (Add hands the same g to both
        # inputs): .grad may later be changed in place, which must not reach anything else.
        owner = _owner(g.array)
        if owner in claimed or not g.array.flags.c_contiguous:
            # a copy (C-ordered: a transposed view from matmul's backward would make every
            # later in-place update and fused optimizer step slower)
            replay.op(_set_grad_copy, leaf, g.array)
        else:
            claimed.add(owner)
            replay.op(_set_grad, leaf, g.array)
    elif leaf.grad.requires_grad:
        replay.op(_add_to_grad, leaf, g.array)
    else:
        replay.op(_add_into_grad, leaf, g.array)


def _add_into_grad(leaf, array):
    leaf.grad.array += array
    leaf.grad._bump_version()


def _set_grad(leaf, array):
    leaf.grad = Tensor._make(array)


def _set_grad_copy(leaf, array):
    leaf.grad = Tensor._make(array.copy())


def _add_to_grad(leaf, array):
    leaf.grad = Tensor._make(leaf.grad.array + array)
