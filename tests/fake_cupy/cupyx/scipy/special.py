"""cupyx.scipy.special for the fake CuPy, over SciPy's functions on the host copies."""
from __future__ import annotations

import cupy
from scipy import special as _special


def erf(x):
    if not isinstance(x, cupy.ndarray):
        raise TypeError("fake cupyx.scipy.special.erf: expected a cupy.ndarray")
    # CuPy's erf maps float16 to float64 ('e->d'); SciPy's keeps float16 as float32 ('e->f').
    # The fake gives CuPy's dtype so that code relying on the result dtype is tested as on a GPU.
    out = _special.erf(x._a)
    return cupy.asarray(out.astype("float64") if x.dtype == "float16" else out)
