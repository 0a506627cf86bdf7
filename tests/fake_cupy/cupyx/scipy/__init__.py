"""cupyx.scipy for the fake CuPy: the special functions gpugrad uses."""
