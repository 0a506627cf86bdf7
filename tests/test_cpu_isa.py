"""gpugrad._C is built once per instruction set (_C: SSE2 / any CPU; _C_avx2, _C_avx512 on
x86-64): the dispatcher runs the widest one this CPU supports, and every build it may pick
computes what each kernel's reference does (the tests of test_native_kernels.py run the
baseline build directly)."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import kernels
from tests import kernel_cases

pytest.importorskip("gpugrad._C")
MODULES = kernels.cpu_modules()
SIZES = [1, 31, 33, 1000, 4097]


def test_the_widest_supported_build_runs():
    assert "baseline" in MODULES
    widest = next(isa for isa in kernels.CPU_ISAS if isa in MODULES)
    assert kernels.native_cpu() is MODULES[widest]
    assert gg.backend_info()["cpu_kernels"] == f"gpugrad._C ({widest})"
    for isa, module in MODULES.items():
        assert module.isa == isa and module.cpu_supports(isa)
        assert sorted(module.kernel_names()) == sorted(kernels.kernel_names())


@pytest.mark.parametrize("isa", list(MODULES))
@pytest.mark.parametrize("name", kernels.kernel_names())
def test_every_build_matches_the_reference(isa, name, monkeypatch):
    monkeypatch.setitem(kernels._state, "C", MODULES[isa])
    monkeypatch.setitem(kernels._state, "C_loaded", True)
    for dtype in (np.float32, np.float64):
        for n in SIZES:
            for case in kernel_cases.cases(name, n, dtype):
                kernel_cases.check(name, case, dtype, level="native")
        inputs = kernels.KERNELS[name].inputs
        if inputs:  # the maps at NaN, +-inf and -0.0, where vector code takes other paths
            special = [kernel_cases.sample_special(4097, dtype, seed=k) for k in range(inputs)]
            case = kernel_cases.Case(f"{name} special values", tuple(special), scale=4.0)
            with np.errstate(invalid="ignore", over="ignore"):  # the reference meets inf * 0
                kernel_cases.check(name, case, dtype, level="native")
