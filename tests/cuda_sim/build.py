"""Build gpugrad's CUDA kernels for the CPU simulator (cuda_sim.h) as the module `_cudasim`.

The .cu files in csrc/cuda are compiled by g++ after one rewrite: every launch
`kernel<<<grid, block, smem, stream>>>(args);` becomes
`::gg_sim::launch(grid, block, smem, stream, [&] { kernel(args); });`. The bindings are
csrc/bindings_cuda.cpp, unchanged, so `_cudasim` has _cuda's functions and arguments; device
pointers are host addresses (numpy: arr.ctypes.data).

    python tests/cuda_sim/build.py       # builds (or finds) the module and prints its path

load() builds once per source version into build/cuda_sim/<hash>/ (or $GG_CUDA_SIM_CACHE/<hash>/)
and imports the result. Builds in parallel processes (pytest -n) are safe: each compiles in its
own work folder and the finished module lands with one atomic rename.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
MODULE = "_cudasim"
# where builds are kept; scripts/gpu_check.sh's rehearsal runs a copy of tests/ and points here
CACHE = Path(os.environ.get("GG_CUDA_SIM_CACHE") or ROOT / "build" / "cuda_sim")
# -U_FORTIFY_SOURCE: the fibers' _longjmp between stacks must not meet glibc's __longjmp_chk
FLAGS = ["-std=c++17", "-O2", "-fPIC", "-fvisibility=hidden", "-DGG_CUDA_SIM", "-U_FORTIFY_SOURCE",
         "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas"]


class Unavailable(RuntimeError):
    """The simulator cannot be built here (no CUDA headers or no C++ compiler)."""


def cuda_include() -> Path:
    """A directory holding cuda_fp16.h and the runtime API headers (the CUDA toolkit's)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    if nvcc := shutil.which("nvcc"):
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.append("/usr/local/cuda")
    for base in filter(None, candidates):
        include = Path(base) / "include"
        if (include / "cuda_fp16.h").is_file() and (include / "cuda_runtime_api.h").is_file():
            return include
    raise Unavailable("no CUDA toolkit headers (cuda_fp16.h) found: install nvcc or set CUDA_HOME")


def _matching(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced {open_}{close} from offset {start}")


def _strip_line_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines()) + "\n"


def _count_arguments(text: str) -> int:
    """Comma-separated arguments in `text`, commas inside brackets not counted."""
    depth = 0
    count = 1
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        count += ch == "," and depth == 0
    return count


def rewrite_launches(text: str) -> str:
    """Turn each `kernel<<<config>>>(args);` statement into a gg_sim::launch call."""
    text = _strip_line_comments(text)
    out = []
    pos = 0
    while (chevrons := text.find("<<<", pos)) != -1:
        statement = max(text.rfind(c, 0, chevrons) for c in ";{}") + 1
        config_end = text.index(">>>", chevrons)
        config = text[chevrons + 3 : config_end].strip()
        open_paren = config_end + 3
        while text[open_paren].isspace():
            open_paren += 1
        if text[open_paren] != "(":
            raise ValueError(f"launch without arguments near: {text[statement:open_paren + 20]!r}")
        close_paren = _matching(text, open_paren, "(", ")")
        semicolon = close_paren
        while text[semicolon].isspace():
            semicolon += 1
        if text[semicolon] != ";":
            raise ValueError(f"launch is not a statement near: {text[statement:semicolon]!r}")
        kernel = text[statement:chevrons].strip()
        arguments = text[open_paren:close_paren]
        given = _count_arguments(config)  # grid, block[, smem[, stream]]: CUDA's defaults
        config += ", 0" * (given < 3) + ", nullptr" * (given < 4)
        out.append(text[pos:statement])
        call = f"::gg_sim::launch({config}, [&] {{ {kernel}{arguments}; }});"
        lines = text.count("\n", statement, semicolon)  # keep line numbers for diagnostics
        out.append(" " + " ".join(call.split()) + "\n" * lines)
        pos = semicolon + 1
    out.append(text[pos:])
    return "".join(out)


def _sources() -> list[Path]:
    return sorted((CSRC / "cuda").glob("*.cu"))


def _key(compiler: str, units: list[Path]) -> str:
    """Hash of every file a build reads, the flags, the compiler and Python."""
    digest = hashlib.sha256()
    headers = [*sorted(CSRC.rglob("*.h")), *sorted(CSRC.rglob("*.cuh")), HERE / "cuda_sim.h"]
    for path in [*units, *headers, Path(__file__).resolve()]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update((" ".join(FLAGS) + _compiler_version(compiler) + sys.version).encode())
    return digest.hexdigest()[:16]


@functools.cache
def _compiler() -> str:
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise Unavailable("no C++ compiler (g++) on PATH")
    return compiler


@functools.cache
def _compiler_version(compiler: str) -> str:
    return subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout


def _run(command: list[str], failure: str, detail: str = "") -> str:
    """Run a compiler command; RuntimeError saying `failure` (and the command) if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{failure}:\n{' '.join(command)}\n{done.stderr}{detail}")
    return done.stderr


def _compile(module: str, rewritten: list[Path], plain: list[Path], out_root: Path | None,
             verbose: bool) -> Path:
    """Build extension `module` from CUDA sources (launches rewritten) and C++ sources."""
    compiler = _compiler()
    include = cuda_include()
    try:
        import pybind11
    except ImportError as exc:
        raise Unavailable(f"pybind11 is not installed: {exc}") from exc
    flags = [*FLAGS, f"-DGG_CUDA_MODULE={module}"]
    out_dir = (out_root or CACHE) / _key(compiler, [*rewritten, *plain])
    target = out_dir / (module + sysconfig.get_config_var("EXT_SUFFIX"))
    if target.is_file():
        return target
    work = out_dir / f"work-{os.getpid()}"  # this process's: another may be building the same
    work.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{CSRC}", f"-I{HERE}", f"-I{include}", f"-I{pybind11.get_include()}",
                f"-I{sysconfig.get_paths()['include']}"]
    units = []
    for source in rewritten:
        unit = work / (source.stem + ".sim.cpp")
        unit.write_text(f'#line 1 "{source}"\n' + rewrite_launches(source.read_text()))
        units.append(unit)
    units += plain

    def compile_unit(unit: Path) -> Path:
        obj = work / (unit.stem + ".o")
        warnings = _run([compiler, *flags, *includes, "-c", str(unit), "-o", str(obj)],
                        f"compiling {unit.name} for the CUDA simulator failed")
        if verbose and warnings:
            print(warnings, file=sys.stderr)
        return obj

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        objects = list(pool.map(compile_unit, units))
    partial = work / target.name
    _run([compiler, "-shared", "-Wl,-Bsymbolic", *map(str, objects), "-o", str(partial)],
         "linking the CUDA simulator failed")
    os.replace(partial, target)  # atomic: a reader never sees half a module
    shutil.rmtree(work, ignore_errors=True)
    return target


def build(out_root: Path | None = None, verbose: bool = False) -> Path:
    """gpugrad's kernels: csrc/cuda/*.cu + csrc/bindings_cuda.cpp as `_cudasim`."""
    return _compile(MODULE, _sources(), [HERE / "cuda_sim.cpp", CSRC / "bindings_cuda.cpp"],
                    out_root, verbose)


def build_selftest(out_root: Path | None = None, verbose: bool = False) -> Path:
    """The simulator's own test kernels (selftest.cu) as `_cudasim_selftest`."""
    return _compile("_cudasim_selftest", [HERE / "selftest.cu"], [HERE / "cuda_sim.cpp"],
                    out_root, verbose)


def build_library(source: str, out_root: Path | None = None, includes=()) -> Path:
    """A plain shared library (for ctypes) from C++ `source` that includes cuda_sim.h, linked
    with the simulator: how the fake CuPy runs ElementwiseKernel / RawKernel / RawModule code.
    `includes`: more header folders (a RawModule's -I options); the caller's source must name
    what it includes from them (the library is cached by source text)."""
    compiler = _compiler()
    include = cuda_include()
    runtime_key = _key(compiler, [HERE / "cuda_sim.cpp"])
    digest = hashlib.sha256(source.encode())
    digest.update(runtime_key.encode())
    out_dir = (out_root or CACHE) / "kernels"
    target = out_dir / f"k{digest.hexdigest()[:20]}.so"
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime = out_dir / f"cuda_sim-{runtime_key}.o"
    if not runtime.is_file():  # the scheduler, compiled once for every kernel library
        partial_runtime = out_dir / f"{runtime.name}.{os.getpid()}.tmp"
        _run([compiler, *FLAGS, f"-I{HERE}", f"-I{include}", "-c", str(HERE / "cuda_sim.cpp"),
              "-o", str(partial_runtime)], "compiling the CUDA simulator failed")
        os.replace(partial_runtime, runtime)
    unit = out_dir / f"{target.stem}.{os.getpid()}.cpp"  # this process's copy of the source
    unit.write_text(source)
    partial = out_dir / f"{target.stem}.{os.getpid()}.tmp"
    # generated code: NVRTC does not fail on unused locals, so neither does this; -O1 compiles
    # the many small kernels faster
    _run([compiler, *FLAGS, "-O1", "-Wno-unused-parameter", "-Wno-unused-function",
          "-Wno-unused-variable", "-Wno-unused-but-set-variable", *(f"-I{d}" for d in includes),
          f"-I{CSRC}", f"-I{HERE}",
          f"-I{include}", "-shared", "-Wl,-Bsymbolic", str(unit), str(runtime), "-o",
          str(partial)],
         "compiling a kernel for the CUDA simulator failed", f"\n--- source ---\n{source}")
    os.replace(partial, target)
    unit.unlink()
    return target


def _import(path: Path):
    name = path.name.split(".", 1)[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(out_root: Path | None = None):
    """Build `_cudasim` if needed and import it."""
    return _import(build(out_root))


def load_selftest(out_root: Path | None = None):
    return _import(build_selftest(out_root))


if __name__ == "__main__":
    print(build(verbose=True))
    print(build_selftest(verbose=True))
