"""ElementwiseKernel and RawKernel for the fake CuPy: the CUDA source is compiled by g++ against
the CUDA simulator (tests/cuda_sim/cuda_sim.h) and run on host arrays through ctypes.

ElementwiseKernel follows CuPy's rules that gpugrad relies on: non-raw array arguments
broadcast to one shape, outputs not passed are allocated with it, a type placeholder (T) takes
its dtype from the array arguments and must agree across them, typed scalars are cast to their
parameter's type, `i` is the C-order index, raw arrays are indexed by the kernel code. RawKernel
runs the kernel's threads on the simulator's fibers; a scalar argument whose size does not match
its C parameter is an error here (CuPy would pass the wrong bytes).
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


def _library(source: str):
    lib = _libraries.get(source)
    if lib is None:
        from tests.cuda_sim import build

        lib = _libraries[source] = ctypes.CDLL(str(build.build_library(source)))
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
        from cupy import _on_current_device, ndarray

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
        from cupy import _on_current_device, ndarray

        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.params)} parameters")
        _on_current_device(args, self.name)
        storage = []
        for k, (ctype, arg) in enumerate(zip(self.params, args)):
            if "*" in ctype:
                if not isinstance(arg, ndarray):
                    raise TypeError(f"{self.name}: argument {k} ({ctype}) must be a cupy.ndarray")
                storage.append(ctypes.c_void_p(arg._a.ctypes.data))
                continue
            dtype = np.dtype(_C_SCALARS[ctype.replace("const ", "")])
            if isinstance(arg, np.generic) and arg.dtype != dtype:
                raise TypeError(f"{self.name}: argument {k} is {arg.dtype} for a '{ctype}' "
                                f"parameter: CuPy would pass {arg.dtype.itemsize} bytes")
            if isinstance(arg, (int, float)) and not isinstance(arg, bool) and dtype.itemsize != 8:
                raise TypeError(f"{self.name}: argument {k} is a Python {type(arg).__name__} for "
                                f"a '{ctype}' parameter: CuPy would pass 8 bytes")
            storage.append(np.array(arg, dtype=dtype))
        pointers = (ctypes.c_void_p * len(storage))(
            *(ctypes.addressof(s) if isinstance(s, ctypes.c_void_p) else s.ctypes.data
              for s in storage))
        dims = [*(tuple(grid) + (1, 1))[:3], *(tuple(block) + (1, 1))[:3]]
        lib = _library(self._source())
        lib.gg_sim_launch.restype = ctypes.c_char_p
        error = lib.gg_sim_launch((ctypes.c_uint * 6)(*dims), ctypes.c_size_t(shared_mem), pointers)
        if error is not None:
            raise RuntimeError(f"{self.name}: {error.decode()}")

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
