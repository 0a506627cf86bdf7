"""What every GPU result row names: the GPU, its driver, the CUDA runtime and driver API, NVRTC,
CuPy, torch (and its CUDA), NumPy and Python, and whether this is scripts/gpu_check.sh's
rehearsal on the fake GPU (tests/fake_cupy). As a script it prints them and writes JSON:

    python benchmarks/gpu_env.py --out gpu-results/gpu_env.json
"""
from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import sys


def _cuda_version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"  # 13000 -> "13.0", as CUDA numbers them


def _ask(what: str, answer) -> str:
    """answer() as a string, or why it could not be had: a report must never raise."""
    try:
        return str(answer())
    except Exception as exc:  # noqa: BLE001 - missing tool, library or device: say which
        return f"unavailable ({what}: {type(exc).__name__}: {exc})"


def _driver() -> str:
    done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.splitlines()[0].strip()


def _nvrtc() -> str:
    from cupy_backends.cuda.libs import nvrtc

    return ".".join(map(str, nvrtc.getVersion()))


@functools.cache
def versions() -> dict:
    """The run's GPU and software: strings, and `rehearsal` (never raises once CuPy imports)."""
    import cupy

    runtime = cupy.cuda.runtime

    def device_property(key):
        return runtime.getDeviceProperties(runtime.getDevice())[key]

    def torch_version(attribute):
        import torch

        return torch.__version__ if attribute == "torch" else torch.version.cuda

    return {
        "rehearsal": cupy.__version__.endswith("+fake"),
        "gpu": _ask("device name", lambda: device_property("name").decode()),
        "compute_capability": _ask("device properties", lambda: "{}.{}".format(
            device_property("major"), device_property("minor"))),
        "driver": _ask("nvidia-smi", _driver),
        "cuda_driver_api": _ask("driver API", lambda: _cuda_version(runtime.driverGetVersion())),
        "cuda_runtime": _ask("runtime", lambda: _cuda_version(runtime.runtimeGetVersion())),
        "nvrtc": _ask("NVRTC", _nvrtc),
        "cupy": cupy.__version__,
        "torch": _ask("torch", lambda: torch_version("torch")),
        "torch_cuda": _ask("torch", lambda: torch_version("cuda")),
        "numpy": _ask("numpy", lambda: __import__("numpy").__version__),
        "python": platform.python_version(),
    }


def one_line(env: dict) -> str:
    """The versions as one line, for a log or a test report's name."""
    return (("REHEARSAL on the fake GPU: " if env["rehearsal"] else "")
            + f"{env['gpu']} (sm {env['compute_capability']}), driver {env['driver']}, "
            f"CUDA {env['cuda_runtime']} (driver API {env['cuda_driver_api']}), "
            f"CuPy {env['cupy']}, torch {env['torch']} (CUDA {env['torch_cuda']})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the versions here as JSON")
    args = parser.parse_args(argv)
    env = versions()
    for key, value in env.items():
        print(f"{key}: {value}")
    print(one_line(env))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(env, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
