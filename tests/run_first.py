"""pytest plugin (`-p tests.run_first`) for scripts/gpu_check.sh: the cuda tests that say the
most about a GPU run first, so that a run cut off by its time limit still has them: CuPy's
contract, the native kernels, the GPU conditions, the fused kernels at each level, then the op
table; every other test keeps its place after them. Under pytest -n (xdist) every worker sorts
alike, and the first tests handed out are these."""
from __future__ import annotations

FIRST = (
    "tests/test_cupy_semantics.py",
    "tests/test_native_kernels.py",
    "tests/test_cuda_conditions.py",
    "tests/test_cuda.py::test_fused_kernel",  # ..._on_cuda and ..._take_strided_inputs_on_cuda
    "tests/test_cuda.py::test_op_on_cuda",
)


def rank(nodeid: str) -> int:
    return next((i for i, prefix in enumerate(FIRST) if nodeid.startswith(prefix)), len(FIRST))


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: rank(item.nodeid))  # stable: within a rank, the file's order
