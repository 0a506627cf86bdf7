"""The CuPy fallback's kernels compile: csrc/cuda/kernels.cuh as gpugrad ships it, every template
instantiation its launchers can ask for (gpugrad/backend/cuda_kernels.py), by NVRTC with the
fallback's own code and options, for sm_80 and sm_90. NVRTC needs no GPU (tests/nvrtc.py), so
this runs here and in CI: the header must stay free of standard headers and host-only code."""
from __future__ import annotations

import pytest

from gpugrad.backend import cuda_kernels, kernels
from tests import nvrtc

pytestmark = pytest.mark.skipif(nvrtc.find_library() is None,
                                reason="libnvrtc not found (pip install nvidia-cuda-nvrtc)")


@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_every_fallback_kernel_compiles_with_nvrtc(arch):
    code, options = cuda_kernels._source()
    table = cuda_kernels.name_expressions()
    expressions = [e for names in table.values() for e in names]
    lowered = nvrtc.compile_program(code, [*options, f"--gpu-architecture={arch}"], expressions)
    assert sorted(lowered) == sorted(expressions) and all(lowered.values())
    # every kernel of the table in every dtype it takes has its instantiations
    for name, entry in kernels.KERNELS.items():
        for dtype in ("float32", "float64") + (("float16",) if entry.half else ()):
            assert table[name, dtype], (name, dtype)


def test_the_header_refuses_what_nvrtc_lacks():
    """The check is real: a standard header in the program is an NVRTC error."""
    code, options = cuda_kernels._source()
    with pytest.raises(nvrtc.CompileError, match="cstdint"):
        nvrtc.compile_program("#include <cstdint>\n" + code,
                              [*options, "--gpu-architecture=compute_90"], [])
