"""NVRTC through ctypes, to compile gpugrad's CUDA kernels exactly as the CuPy fallback does
(gpugrad/backend/cuda_kernels.py) on a machine without a GPU: NVRTC only needs its library.
The library comes from the `nvidia-cuda-nvrtc` wheel (the test extra) or a CUDA toolkit."""
from __future__ import annotations

import ctypes
import glob
import os
import site
import sys


def find_library() -> str | None:
    """Path of libnvrtc.so, or None."""
    roots = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    patterns = [os.path.join(root, "nvidia", "cu*", "lib", "libnvrtc.so*") for root in roots]
    patterns += [os.path.join(root, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*") for root in roots]
    for base in filter(None, [os.environ.get("CUDA_HOME"), "/usr/local/cuda"]):
        patterns.append(os.path.join(base, "lib64", "libnvrtc.so*"))
    for pattern in patterns:
        found = sorted(p for p in glob.glob(pattern) if "builtins" not in p)
        if found:
            return found[0]
    return None


class CompileError(RuntimeError):
    pass


def compile_program(code: str, options: list[str], name_expressions: list[str]) -> dict[str, str]:
    """Compile `code` to PTX with NVRTC; {name expression: lowered (mangled) name}.
    CompileError carries NVRTC's log."""
    path = find_library()
    if path is None:
        raise FileNotFoundError("libnvrtc not found (pip install nvidia-cuda-nvrtc)")
    lib = ctypes.CDLL(path)
    program = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"gpugrad.cu", 0,
                                       None, None), "nvrtcCreateProgram")
    try:
        for expression in name_expressions:
            _check(lib, lib.nvrtcAddNameExpression(program, expression.encode()),
                   f"nvrtcAddNameExpression({expression})")
        encoded = [o.encode() for o in options]
        status = lib.nvrtcCompileProgram(program, len(encoded), (ctypes.c_char_p * len(encoded))(*encoded))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(program, log)
        if status != 0:
            raise CompileError(log.value.decode(errors="replace"))
        lowered = {}
        for expression in name_expressions:
            name = ctypes.c_char_p()
            _check(lib, lib.nvrtcGetLoweredName(program, expression.encode(), ctypes.byref(name)),
                   f"nvrtcGetLoweredName({expression})")
            lowered[expression] = name.value.decode()
        return lowered
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def _check(lib, status: int, what: str) -> None:
    if status != 0:
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise CompileError(f"{what}: {lib.nvrtcGetErrorString(status).decode()}")
