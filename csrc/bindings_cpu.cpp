// pybind11 module gpugrad._C: the C++ kernels over host arrays, one function per entry
// of common/kernel_list.h (see bindings.h). Pointers are addresses of C-contiguous arrays
// (numpy: arr.ctypes.data); dtype is "float32" or "float64".
#include "bindings.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

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
  m.def("get_num_threads", &gg::cpu::num_threads, "threads a kernel may use, the caller included");
  m.def(
      "set_num_threads",
      [](int threads) {
        if (threads < 1) {
          throw pybind11::value_error("gpugrad._C.set_num_threads: threads must be >= 1, got " +
                                      std::to_string(threads));
        }
        gg::cpu::set_num_threads(threads);
      },
      pybind11::arg("threads"), "threads the kernels may use from now on (>= 1)");
  m.def("started_workers", &gg::cpu::started_workers,
        "pool threads started so far (they sleep between kernels)");
}
