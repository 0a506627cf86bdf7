// pybind11 module gpugrad._C: the C++ (OpenMP) kernels over host arrays, one function per entry
// of common/kernel_list.h (see bindings.h). Pointers are addresses of C-contiguous arrays
// (numpy: arr.ctypes.data); dtype is "float32" or "float64".
#include "bindings.h"
#include "cpu/launchers.h"

namespace {

struct Module {
  static constexpr const char* kName = "gpugrad._C";
  static constexpr bool kStream = false;
  using Half = void;
};

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "gpugrad C++ CPU kernels (raw-pointer API, float32/float64)";
  std::vector<std::string> names;
#define GG_NS ::gg::cpu
  GG_MAP_KERNELS(GG_DEFINE_MAP)
  GG_KERNELS(GG_DEFINE_KERNEL)
#undef GG_NS
  m.def("kernel_names", [names] { return names; }, "names of the kernel functions this module exports");
}
