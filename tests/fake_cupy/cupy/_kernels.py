"""ElementwiseKernel, RawKernel and RawModule for the fake CuPy: the CUDA source is compiled by g++
against the CUDA simulator (tests/cuda_sim/cuda_sim.h) and run on host arrays through ctypes.

ElementwiseKernel follows CuPy's rules that gpugrad relies on: non-raw array arguments
broadcast to one shape, outputs not passed are allocated with it, a type placeholder (T) takes
its dtype from the array arguments and must agree across them, typed scalars are cast to their
parameter's type, `i` is the C-order index, raw arrays are indexed by the kernel code. RawKernel
runs the kernel's threads on the simulator's fibers; a scalar argument whose size does not match
its C parameter is an error here (CuPy would pass the wrong bytes). RawModule compiles its code
with the -I folders of its options and instantiates each name expression (a template such as
`ns::kernel<4, float>`), as NVRTC does for CuPy; get_function takes those expressions.
"""
from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

import numpy as np

_C_TYPES = {"float16": "__half", "float32": "float", "float64": "double", "int8": "signed char",
            "int16": "short", "int32": "int", "int64": "long long", "uint8": "unsigned char",
            "uint16": "unsigned short", "uint32": "unsigned int", "uint64": "unsigned long long",
            "bool": "bool"}
_C_SCALARS = {"float": "float32", "double": "float64", "int": "int32", "long long": "int64",
              "unsigned int": "uint32", "unsigned long long": "uint64", "bool": "bool",
              "ptrdiff_t": "int64", "size_t": "uint64", "long": "int64"}
_libraries: dict = {}


def _library(source: str, includes=()):
    lib = _libraries.get(source)
    if lib is None:
        from tests.cuda_sim import build

        lib = _libraries[source] = ctypes.CDLL(str(build.build_library(source, includes=includes)))
    return lib


@dataclass
class _Param:
    type: str  # a dtype name or a placeholder such as T
    name: str
    raw: bool

    @property
    def placeholder(self) -> bool:
        return self.type not in _C_TYPES


def _params(text: str) -> list[_Param]:
    params = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        words = item.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2:
            raise ValueError(f"fake cupy: cannot read kernel parameter {item!r}")
        params.append(_Param(words[0], words[1], raw))
    return params


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, loop_prep="", after_loop="",
                 options=()):
        self.ins, self.outs = _params(in_params), _params(out_params)
        self.operation, self.name, self.preamble = operation, name, preamble
        self.return_tuple = return_tuple

    def __call__(self, *args, size=None):
        from cupy import _capturing, _on_current_device, ndarray

        if _capturing():  # gpugrad launches no ElementwiseKernel: not emulated under capture
            raise NotImplementedError("fake cupy: ElementwiseKernel under stream capture")

        if len(args) not in (len(self.ins), len(self.ins) + len(self.outs)):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)}")
        _on_current_device(args, self.name)
        params = self.ins + self.outs
        bound = {}
        for param, arg in zip(params, args):
            if param.placeholder and isinstance(arg, ndarray):
                if bound.setdefault(param.type, arg.dtype) != arg.dtype:
                    raise TypeError(f"{self.name}: type {param.type} is mismatched "
                                    f"({bound[param.type]} and {arg.dtype})")
            elif isinstance(arg, np.ndarray):
                raise TypeError(f"{self.name}: Unsupported type {type(arg)} (a NumPy array)")
        elementwise = [a._a for p, a in zip(params, args) if isinstance(a, ndarray) and not p.raw]
        shape = np.broadcast_shapes(*(a.shape for a in elementwise)) if elementwise else ()
        outputs = list(args[len(self.ins):])
        for param in self.outs[len(outputs):]:
            if param.placeholder and param.type not in bound:
                raise TypeError(f"{self.name}: cannot decide the type of output {param.name}")
            dtype = bound[param.type] if param.placeholder else np.dtype(param.type)
            outputs.append(ndarray._of(np.empty(shape, dtype)))
        buffers, keep, write_back = [], [], []
        for param, arg in zip(params, [*args[: len(self.ins)], *outputs]):
            dtype = bound.get(param.type) if param.placeholder else np.dtype(param.type)
            if isinstance(arg, ndarray):
                host = arg._a
                if param in self.outs and not param.raw:
                    if host.shape != shape:
                        raise ValueError(f"{self.name}: output {param.name} has shape "
                                         f"{host.shape}, not {shape}")
                    work = host if host.flags.c_contiguous else np.ascontiguousarray(host)
                    if work is not host:
                        write_back.append((host, work))
                elif param.raw:
                    work = np.ascontiguousarray(host)
                else:
                    work = np.ascontiguousarray(np.broadcast_to(host, shape))
                if dtype is not None and work.dtype != dtype:
                    raise TypeError(f"{self.name}: {param.name} is {work.dtype}, expected {dtype}")
            else:  # a scalar: cast to the parameter's type, as CuPy does
                if dtype is None:
                    raise TypeError(f"{self.name}: cannot decide the type of scalar {param.name}")
                work = np.array(arg, dtype=dtype)
            keep.append(work)
            buffers.append(work.ctypes.data)
        n = int(np.prod(shape))
        pointers = (ctypes.c_void_p * len(buffers))(*buffers)
        sizes = (ctypes.c_longlong * len(keep))(*(a.size for a in keep))
        scalars = {k for k, arg in enumerate(args[: len(self.ins)]) if not isinstance(arg, ndarray)}
        _library(self._source(bound, scalars)).gg_run(pointers, sizes, ctypes.c_longlong(n))
        for host, work in write_back:
            host[...] = work
        if len(outputs) == 1 and not self.return_tuple:
            return outputs[0]
        return tuple(outputs)

    def _source(self, bound, scalars) -> str:
        typedefs = "".join(f"  typedef {_C_TYPES[dt.name]} {t};\n" for t, dt in bound.items())
        lines = []
        for k, param in enumerate(self.ins + self.outs):
            ctype = param.type if param.placeholder else _C_TYPES[param.type]
            is_out = param in self.outs
            if param.raw:
                const = "" if is_out else "const "
                lines.append(f"    gg_raw<{const}{ctype}> {param.name}{{({const}{ctype}*)args[{k}],"
                             f" sizes[{k}]}};")
            elif is_out:
                lines.append(f"    {ctype}& {param.name} = (({ctype}*)args[{k}])[i];")
            elif k in scalars:
                lines.append(f"    const {ctype} {param.name} = *(const {ctype}*)args[{k}];")
            else:
                lines.append(f"    const {ctype} {param.name} = ((const {ctype}*)args[{k}])[i];")
        body = "\n".join(lines)
        return f"""#include "cuda_sim.h"
#include <cstddef>
{self.preamble}
namespace {{
template <class V> struct gg_raw {{
  V* p;
  long long n;
  V& operator[](ptrdiff_t k) const {{ return p[k]; }}
  long long size() const {{ return n; }}
}};
struct gg_index {{
  long long n;
  long long size() const {{ return n; }}
}};
}}  // namespace
extern "C" __attribute__((visibility("default"))) void gg_run(void** args, const long long* sizes,
                                                              long long n) {{
{typedefs}  for (ptrdiff_t i = 0; i < n; ++i) {{
    const gg_index _ind{{n}};
    (void)_ind;
{body}
    {{
{self.operation}
    }}
  }}
}}
"""


class RawKernel:
    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False):
        match = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + re.escape(name) +
                          r"\s*\(([^)]*)\)", code)
        if match is None:
            raise ValueError(f"fake cupy: no extern \"C\" __global__ void {name}(...) in the code")
        self.name, self.code = name, code
        self.params = []
        for item in (p.strip() for p in match.group(1).split(",")):
            words = item.replace("__restrict__", " ").replace("*", " * ").split()
            self.params.append(" ".join(words[:-1]))  # the type, without the name

    def __call__(self, grid, block, args, *, shared_mem=0):
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.params)} parameters")
        params = [(ctype, "*" in ctype, None) for ctype in self.params]
        _launch(self.name, _library(self._source()), "gg_sim_launch", params, grid, block, args,
                shared_mem)

    def _source(self) -> str:
        call = ", ".join(f"*({ctype}*)args[{k}]" for k, ctype in enumerate(self.params))
        return f"""#include "cuda_sim.h"
{self.code}
extern "C" __attribute__((visibility("default"))) const char* gg_sim_launch(
    const unsigned* d, size_t shared_bytes, void** args) {{
  ::gg_sim::launch(dim3(d[0], d[1], d[2]), dim3(d[3], d[4], d[5]), shared_bytes, nullptr,
                   [&] {{ {self.name}({call}); }});
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}}
"""


def _argument(name: str, k: int, ctype: str, pointer: bool, size, arg):
    """Argument k as the bytes CuPy would pass, refusing what would pass the wrong ones."""
    from cupy import ndarray

    if pointer:
        if not isinstance(arg, ndarray):
            raise TypeError(f"{name}: argument {k} ({ctype}) must be a cupy.ndarray")
        return ctypes.c_void_p(arg._a.ctypes.data)
    dtype = np.dtype(_C_SCALARS[ctype.replace("const ", "")]) if ctype else None
    if isinstance(arg, np.generic):
        if dtype is not None and arg.dtype != dtype or size is not None and arg.itemsize != size:
            raise TypeError(f"{name}: argument {k} is {arg.dtype} for a '{ctype or size}' "
                            f"parameter: CuPy would pass {arg.dtype.itemsize} bytes")
        return np.array(arg)
    if isinstance(arg, (int, float)) and not isinstance(arg, bool) and (
            dtype is not None and dtype.itemsize != 8 or size not in (None, 8)):
        raise TypeError(f"{name}: argument {k} is a Python {type(arg).__name__} for a "
                        f"'{ctype or size}' parameter: CuPy would pass 8 bytes")
    if dtype is None:
        raise TypeError(f"{name}: argument {k}: pass a NumPy scalar of the parameter's type")
    return np.array(arg, dtype=dtype)


def _launch(name, lib, entry, params, grid, block, args, shared_mem):
    """Run one kernel of a compiled library on the simulator: params are (C type or '', is a
    pointer, size in bytes or None) per argument."""
    from cupy import _enqueue, _on_current_device

    _on_current_device(args, name)
    storage = [_argument(name, k, ctype, pointer, size, arg)
               for k, ((ctype, pointer, size), arg) in enumerate(zip(params, args))]
    pointers = (ctypes.c_void_p * len(storage))(
        *(ctypes.addressof(s) if isinstance(s, ctypes.c_void_p) else s.ctypes.data
          for s in storage))
    dims = [*(tuple(grid) + (1, 1))[:3], *(tuple(block) + (1, 1))[:3]]
    function = getattr(lib, entry)
    function.restype = ctypes.c_char_p

    def run():
        error = function((ctypes.c_uint * 6)(*dims), ctypes.c_size_t(shared_mem), pointers)
        if error is not None:
            raise RuntimeError(f"{name}: {error.decode()}")

    run.keep = storage  # the argument bytes live as long as the launch may run
    _enqueue(run)


class RawModule:
    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc",
                 translate_cucomplex=False, enable_cooperative_groups=False,
                 name_expressions=None, jitify=False):
        if code is None:
            raise NotImplementedError("fake cupy: RawModule(path=...) is not emulated")
        self.code, self.options = code, tuple(options)
        self.name_expressions = tuple(name_expressions or ())
        self._compiled = None

    def _compile(self):
        if self._compiled is None:
            includes = [o[2:] for o in self.options if o.startswith("-I")]
            lib = _library(self._source(), includes)
            params = []
            for k in range(len(self.name_expressions)):
                sizes, pointers = (ctypes.c_longlong * 64)(), (ctypes.c_int * 64)()
                count = getattr(lib, f"gg_params_{k}")(sizes, pointers)
                params.append([("", bool(pointers[j]), sizes[j]) for j in range(count)])
            self._compiled = (lib, params)
        return self._compiled

    def get_function(self, name):
        if name not in self.name_expressions:
            raise RuntimeError(f"fake cupy: {name!r} is not one of this module's name "
                               "expressions (the fake looks kernels up by those alone)")
        return _ModuleFunction(self, self.name_expressions.index(name), name)

    def _source(self) -> str:
        entries = []
        for k, expression in enumerate(self.name_expressions):
            entries.append(f"""
extern "C" __attribute__((visibility("default"))) const char* gg_launch_{k}(
    const unsigned* d, size_t shared_bytes, void** args) {{
  ::gg_sim::launch(dim3(d[0], d[1], d[2]), dim3(d[3], d[4], d[5]), shared_bytes, nullptr,
                   [&] {{ gg_fake::call(&{expression}, args); }});
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}}
extern "C" __attribute__((visibility("default"))) int gg_params_{k}(long long* sizes,
                                                                   int* pointers) {{
  return gg_fake::describe(&{expression}, sizes, pointers);
}}""")
        return f"""#include "cuda_sim.h"
{self.code}
#include <cstddef>
#include <type_traits>
#include <utility>
namespace gg_fake {{
// a kernel's arguments from CUDA's void** kernelParams (what cuLaunchKernel takes)
template <class... P, size_t... I>
void call_with(void (*kernel)(P...), void** args, std::index_sequence<I...>) {{
  kernel(*static_cast<std::remove_reference_t<P>*>(args[I])...);
}}
template <class... P>
void call(void (*kernel)(P...), void** args) {{
  call_with(kernel, args, std::index_sequence_for<P...>{{}});
}}
template <class... P>
int describe(void (*)(P...), long long* sizes, int* pointers) {{
  const long long s[] = {{static_cast<long long>(sizeof(P))..., 0}};
  const int p[] = {{static_cast<int>(std::is_pointer_v<P>)..., 0}};
  for (size_t k = 0; k < sizeof...(P); ++k) {{
    sizes[k] = s[k];
    pointers[k] = p[k];
  }}
  return static_cast<int>(sizeof...(P));
}}
}}  // namespace gg_fake
{"".join(entries)}
"""


class _ModuleFunction:
    """A kernel of a RawModule, called like CuPy's RawKernel: (grid, block, args)."""

    def __init__(self, module: RawModule, index: int, name: str):
        self.module, self.index, self.name = module, index, name

    def __call__(self, grid, block, args, *, shared_mem=0):
        lib, params = self.module._compile()
        if len(args) != len(params[self.index]):
            raise TypeError(f"{self.name}: {len(args)} arguments for "
                            f"{len(params[self.index])} parameters")
        _launch(self.name, lib, f"gg_launch_{self.index}", params[self.index], grid, block, args,
                shared_mem)
