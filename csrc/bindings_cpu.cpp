// pybind11 module gpugrad._C: the C++ kernels over host arrays, one function per entry
// of common/kernel_list.h (see bindings.h). Pointers are C-contiguous NumPy arrays or their
// addresses (arr.ctypes.data); dtype is "float32" or "float64". The same file builds _C_avx2 and
// _C_avx512 (GG_CPU_MODULE, GG_CPU_ISA: see CMakeLists.txt).
#include "bindings.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

#ifndef GG_CPU_MODULE
#define GG_CPU_MODULE _C
#define GG_CPU_ISA "baseline"
#endif

namespace {

// Whether this CPU (and its OS, which must save the wider registers) runs an instruction set.
bool cpu_supports(const std::string& isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
#endif
  return isa == "baseline";
}

struct Module {
  static constexpr const char* kName = "gpugrad._C";
  static constexpr bool kStream = false;
  using Half = void;
};

}  // namespace

PYBIND11_MODULE(GG_CPU_MODULE, m) {
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
  m.def("blas_busy_for", &gg::cpu::blas_busy_for, pybind11::arg("seconds"),
        "kernels run on the calling thread for this long (the BLAS's threads spin); 0 ends it");
  m.attr("isa") = GG_CPU_ISA;
  m.def("cpu_supports", &cpu_supports, pybind11::arg("isa"),
        "whether this CPU runs the module built for isa: 'baseline', 'avx2' or 'avx512'");
}
