"""Tensor: an array on a device (NumPy or CuPy) plus the autograd metadata that links it
into the recorded graph: grad, grad_fn, output_nr, a version counter shared with its views,
and a forward-mode tangent. Ops are attached as methods by gpugrad.ops."""
from __future__ import annotations

import weakref

import numpy as np

from gpugrad import backend, dtypes


class Tensor:
    __slots__ = (
        "array",
        "requires_grad",
        "grad",
        "grad_fn",
        "_output_nr",
        "_vbox",
        "_base",
        "_hooks",
        "_post_accumulate_hooks",
        "_accumulator",
        "_tangent",
        "_tangent_level",
        "_retains_grad",
        "__weakref__",
    )
    __array_priority__ = 1000
    __array_ufunc__ = None  # NumPy operators defer to Tensor's (ndarray + Tensor -> Tensor)

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        from gpugrad.creation import _as_array

        array = _as_array(data, dtype, device)
        init_fields(self, array, bool(requires_grad))
        if requires_grad:
            _check_can_require_grad(self)

    @classmethod
    def _result(cls, result) -> Tensor:
        """Wrap the raw result of NumPy / CuPy work done outside Function.apply: NumPy turns a
        0-d result into a scalar (CuPy never does), and a tensor always holds an array."""
        return cls._make(np.asarray(result) if isinstance(result, np.generic) else result)

    @classmethod
    def _make(cls, array, requires_grad=False, grad_fn=None, output_nr=0, vbox=None):
        """Wrap an array without copying or validating it (the engine's fast path)."""
        t = _new(cls)
        init_fields(t, array, requires_grad, grad_fn, output_nr, vbox)
        return t

    # ---- metadata -------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes._BY_NP[self.array.dtype]

    @property
    def device(self) -> backend.Device:
        return backend.device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return not backend.is_host(self.array)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def dim(self) -> int:
        return self.array.ndim

    def size(self, dim=None):
        return self.array.shape if dim is None else self.array.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def element_size(self) -> int:
        return self.array.itemsize

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return self._vbox[0]

    @property
    def output_nr(self) -> int:
        return self._output_nr

    # ---- conversion -----------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        if self.is_cuda:
            raise TypeError(
                f"can't convert {self.device} device type tensor to numpy. "
                "Use Tensor.cpu() to copy the tensor to host memory first."
            )
        return self.array

    def __array__(self, dtype=None, copy=None):
        array = backend.to_host(self.array)
        return array if dtype is None else array.astype(dtype, copy=False)

    def item(self):
        _reading(self, ".item()")
        if backend._deferred:
            backend.raise_deferred()
        if self.array.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.array.size} elements cannot be converted to Scalar"
            )
        return self.array.item()

    def tolist(self):
        _reading(self, ".tolist()")
        return backend.to_host(self.array).tolist()

    def __float__(self):
        _reading(self, "float() of a tensor")
        return float(self.item())

    def __int__(self):
        _reading(self, "int() of a tensor")
        return int(self.item())

    def __index__(self):
        if self.array.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        _reading(self, "bool() of a tensor (a data-dependent branch)")
        if self.array.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.array.size} elements is ambiguous"
            )
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    __hash__ = object.__hash__

    def __dlpack__(self, stream=None):
        if self.requires_grad:
            raise RuntimeError("Can't export a tensor that requires grad; use .detach() first")
        if stream is None:
            return self.array.__dlpack__()
        return self.array.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def to(self, *args, **kwargs) -> "Tensor":
        """to(device) / to(dtype) / to(device, dtype): differentiable copy, or self if nothing changes."""
        from gpugrad.ops import shape as shape_ops

        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None), kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, (str, backend.Device)):
                device = arg
            else:
                dtype = arg
        out = self
        if dtype is not None:
            out = shape_ops.cast(out, dtypes.as_dtype(dtype))
        if device is not None:
            out = shape_ops.to_device(out, backend.as_device(device))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        """A copy on a GPU: device None (the first), an index, or 'cuda:N'."""
        if device is None:
            device = "cuda"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(backend.as_device(device))

    def float(self) -> "Tensor":
        return self.to(dtypes.float32)

    def double(self) -> "Tensor":
        return self.to(dtypes.float64)

    def half(self) -> "Tensor":
        return self.to(dtypes.float16)

    def long(self) -> "Tensor":
        return self.to(dtypes.int64)

    def int(self) -> "Tensor":
        return self.to(dtypes.int32)

    def bool(self) -> "Tensor":
        return self.to(dtypes.bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    # ---- autograd -------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """A tensor sharing this one's data and version counter, cut from the graph."""
        return Tensor._make(self.array, vbox=self._vbox)

    def detach_(self) -> "Tensor":
        self.grad_fn, self.requires_grad, self._output_nr = None, False, 0
        return self

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, value):
        self.array = value.array if isinstance(value, Tensor) else value

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not self.is_leaf:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; "
                "use .detach() to get a leaf"
            )
        self.requires_grad = bool(requires_grad)
        if requires_grad:
            _check_can_require_grad(self)
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad (gradient: the upstream vector)."""
        from gpugrad.autograd import engine

        engine.backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    def register_hook(self, hook):
        """hook(grad) -> new grad or None, called when the gradient w.r.t. this tensor is computed."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            hooks = self.grad_fn.hooks_for(self._output_nr)
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor), called on a leaf after backward has accumulated its .grad."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors"
            )
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        return _RemovableHandle(self._post_accumulate_hooks, hook)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward."""
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        ref = weakref.ref(self)

        def _store(grad):
            tensor = ref()
            if tensor is not None:
                # a copy: the engine may hand this same memory on to a leaf's .grad
                g = Tensor._make(grad.array.copy()) if not grad.requires_grad else grad
                tensor.grad = g if tensor.grad is None else tensor.grad + g

        self.register_hook(_store)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def _bump_version(self):
        self._vbox[0] += 1

    # ---- printing -------------------------------------------------------------------
    def __repr__(self) -> str:
        _reading(self, "printing a tensor")
        array = backend.to_host(self.array)
        body = np.array2string(array, separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self.is_cuda:
            extras.append(f"device='{self.device}'")
        if self.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"


_new = object.__new__
read_guard = None  # set by gpugrad.replay: refuses host reads of a captured step's values


def _reading(t: Tensor, what: str) -> None:
    if read_guard is not None and type(t.array) is not np.ndarray:
        read_guard(t.array, what)



def init_fields(t: Tensor, array, requires_grad=False, grad_fn=None, output_nr=0, vbox=None) -> None:
    """Every field of a tensor, in one place (Tensor(), Tensor._make and nn.Parameter)."""
    t.array = array
    t.requires_grad = requires_grad
    t.grad = None
    t.grad_fn = grad_fn
    t._output_nr = output_nr
    t._vbox = [0] if vbox is None else vbox
    t._base = t._hooks = t._post_accumulate_hooks = t._accumulator = t._tangent = None
    t._tangent_level = 0
    t._retains_grad = False


class _RemovableHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _check_can_require_grad(t: Tensor):
    if t.array.dtype.kind != "f":
        raise RuntimeError(
            f"only Tensors of floating point dtype can require gradients, got {t.dtype}"
        )


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)

