"""Module: the parameter / buffer / submodule registry every layer builds on, with hooks,
traversal, train / eval, state_dict / load_state_dict and device and dtype moves."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gpugrad import backend, dtypes, replay
from gpugrad.autograd.mode import no_grad
from gpugrad.nn.parameter import Parameter
from gpugrad.tensor import Tensor

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _HookHandle:
    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks, self.id = hooks, _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)


class _WithKwargs:
    """A hook registered with with_kwargs=True: it also receives forward's keyword arguments."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable):
        self.fn = fn


def _add_indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _check_name(kind: str, name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')


def _source_array(key: str, value):
    """The array behind a state_dict value: a gg Tensor, a NumPy array or a torch tensor."""
    if isinstance(value, Tensor):
        return value.array
    if isinstance(value, np.ndarray):
        return value
    # before __cuda_array_interface__: a torch CUDA tensor has one, but no NumPy-style dtype
    if all(hasattr(value, name) for name in ("detach", "cpu", "numpy")):  # a torch.Tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "__cuda_array_interface__"):  # CuPy, Numba...: as a CuPy array
        from gpugrad.creation import _gpu_array

        return _gpu_array(value)
    raise TypeError(
        f'While copying the parameter named "{key}", expected a tensor or an array in the '
        f"state_dict, got {type(value).__name__}"
    )


class Module:
    """Base class of every layer: assign Parameters and Modules as attributes to register them;
    subclasses define forward(...), and calling the module runs it."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            if isinstance(hook, _WithKwargs):
                result = hook.fn(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of (new_args, "
                            f"new_kwargs), but got {result}."
                        )
                    args, kwargs = result
                continue
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            if isinstance(hook, _WithKwargs):
                result = hook.fn(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    @staticmethod
    def _add_hook(
        hooks: OrderedDict, hook: Callable, prepend: bool, with_kwargs: bool
    ) -> _HookHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        handle = _HookHandle(hooks)
        hooks[handle.id] = _WithKwargs(hook) if with_kwargs else hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> _HookHandle:
        """hook(module, args) -> None or new args, run before forward (with_kwargs:
        hook(module, args, kwargs) -> None or (new_args, new_kwargs)); prepend runs it first."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> _HookHandle:
        """hook(module, args, output) -> None or a new output, run after forward (with_kwargs:
        hook(module, args, kwargs, output)); prepend runs it first."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)

    # ---- registration ------------------------------------------------------------------
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder) under `name`."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(gg.nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add state that is not a parameter (saved in state_dict unless persistent=False)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object "
                f"to buffer '{name}' (Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under `name` (reachable as an attribute)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call")
        _check_name("module", name)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def _forget(self, name: str, keep: str) -> None:
        """Remove `name` from every registry but `keep` (which keeps its position)."""
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry != keep:
                self.__dict__[registry].pop(name, None)
        self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        modules = self.__dict__.get("_modules")
        buffers = self.__dict__.get("_buffers")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(gg.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep="_modules")
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child "
                    f"module '{name}' (gg.nn.Module or None expected)"
                )
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as "
                    f"buffer '{name}' (Tensor or None expected)"
                )
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, ()):
                del self.__dict__[registry][name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )

    # ---- traversal ---------------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(qualified name, module) for this module and every descendant, self first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(
                memo, prefix + ("." if prefix else "") + name, remove_duplicate
            )

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(
        self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool = True
    ):
        seen = set()
        owners = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for owner_prefix, owner in owners:
            for name, value in owner.__dict__[registry].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield owner_prefix + ("." if owner_prefix else "") + name, value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(qualified name, parameter), each shared parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The descendant at a dotted path such as '0' or 'encoder.2'."""
        module = self
        for item in target.split(".") if target else []:
            child = module._modules.get(item)
            if child is None:
                raise AttributeError(
                    f"{type(module).__name__} has no submodule `{item}` (looking up '{target}')"
                )
            module = child
        return module

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call fn on every submodule (children first), then on self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients -------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops) on this module and its descendants."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")  # noqa: TRY004  (as torch)
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's .grad (or zero it in place with set_to_none=False)."""
        for param in self.parameters():
            _zero_grad(param, set_to_none)

    # ---- state_dict ----------------------------------------------------------------------
    def state_dict(
        self, *args, destination=None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict:
        """Parameters and persistent buffers by qualified name ('0.weight'), detached but
        sharing memory with the module; a parameter shared by two modules appears under both."""
        if args:
            raise TypeError(
                "state_dict() takes keyword arguments only (destination=, prefix=, keep_vars=)"
            )
        out = OrderedDict() if destination is None else destination
        for module_prefix, module in self.named_modules(
            prefix=prefix.rstrip("."), remove_duplicate=False
        ):
            head = module_prefix + "." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    out[head + name] = param if keep_vars else param.detach()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    out[head + name] = buffer if keep_vars else buffer.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values into the existing parameters and buffers (same objects, same device and
        dtype). Everything is checked before anything is written: a shape mismatch always fails,
        and with strict=True so do missing and unexpected keys. Returns (missing, unexpected)."""
        if assign:
            raise NotImplementedError(
                "load_state_dict(assign=True) is not supported; values are copied"
            )
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}."
            )
        own = self.state_dict(keep_vars=True)
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        errors, plan = [], []
        if strict and unexpected:
            errors.append(
                "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". "
            )
        if strict and missing:
            errors.append(
                "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". "
            )
        for key, target in own.items():
            if key not in state_dict:
                continue
            try:
                source = _source_array(key, state_dict[key])
            except TypeError as exc:
                errors.append(str(exc))
                continue
            if tuple(source.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param "
                    f"with shape {tuple(source.shape)} from "
                    f"checkpoint, the shape in current model is {tuple(target.shape)}."
                )
                continue
            if source.dtype.kind not in "biuf":
                errors.append(
                    f"dtype mismatch for {key}: can't copy "
                    f"{source.dtype} values into {target.dtype}"
                )
                continue
            plan.append((target, backend.to_device(source, target.device)))
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        with no_grad():
            for target, source in plan:
                if source is not target.array:
                    with backend.device_guard(target.array):
                        target.array[...] = source
                target._bump_version()
        return _IncompatibleKeys(missing, unexpected)

    # ---- devices and dtypes ----------------------------------------------------------------
    def _apply_to_arrays(self, convert: Callable) -> Module:
        """Replace the array of every parameter, its grad and every buffer (objects are kept,
        so optimizers holding the parameters stay valid)."""
        seen = set()
        for module in self.modules():
            for tensor in list(module._parameters.values()) + list(module._buffers.values()):
                if tensor is None or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                tensor.array = convert(tensor.array)
                if tensor.grad is not None:
                    tensor.grad.array = convert(tensor.grad.array)
        return self

    def to(self, *args, **kwargs) -> Module:
        """to(device) / to(dtype) / to(device, dtype), in place; dtype casts floating tensors."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                device, dtype = arg.device, arg.dtype
            elif isinstance(arg, (str, backend.Device)) or hasattr(arg, "index"):
                device = arg
            else:
                dtype = arg
        target_device = backend.as_device(device) if device is not None else None
        target_dtype = dtypes.as_dtype(dtype) if dtype is not None else None
        if target_dtype is not None:
            if not target_dtype.is_floating_point:
                raise TypeError(
                    "Module.to only accepts floating point "
                    f"dtypes, but got desired dtype={target_dtype}"
                )
            if target_dtype.np is None:
                dtypes._no_bfloat16()
        if target_device is not None and target_device.type == "cuda":
            backend.xp_for(target_device)  # raises a clear error when no GPU is usable

        def convert(array):
            if (
                target_dtype is not None
                and array.dtype.kind == "f"
                and array.dtype != target_dtype.np
            ):
                with backend.device_guard(array):  # CuPy casts onto the current GPU
                    array = array.astype(target_dtype.np)
            if target_device is not None:
                array = backend.to_device(array, target_device)
            return array

        return self._apply_to_arrays(convert)

    def cuda(self, device=None) -> Module:
        return self.to(
            "cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device
        )

    def cpu(self) -> Module:
        return self.to("cpu")

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    def half(self) -> Module:
        return self.to(dtypes.float16)

    # ---- printing ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override in layers)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, module in self._modules.items():
            lines.append(f"({name}): " + _add_indent(repr(module), 2))
        if not self._modules:
            return f"{self._get_name()}({extra})"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


def _zero_grad(param: Tensor, set_to_none: bool) -> None:
    if param.grad is not None:
        # .grad is read and written when this runs: a captured step (gg.capture) does it again
        # at each replay, on the .grad the parameter has then
        replay.op(_drop_grad if set_to_none else _zero_grad_in_place, param)


def _drop_grad(param: Tensor) -> None:
    param.grad = None


def _zero_grad_in_place(param: Tensor) -> None:
    if param.grad.grad_fn is not None:
        param.grad = param.grad.detach()
    else:
        param.grad.requires_grad = False
    param.grad.array[...] = 0
    param.grad._bump_version()
