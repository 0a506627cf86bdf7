// pybind11 module gpugrad._cuda: the CUDA kernels over device arrays, one function per entry of
// common/kernel_list.h (see bindings.h): the arguments of gpugrad._C plus a final `stream` (a
// cudaStream_t as int, e.g. cupy.cuda.get_current_stream().ptr). Pointers are device addresses
// (cupy: arr.data.ptr) of C-contiguous arrays. Launches are asynchronous; a failed launch
// raises RuntimeError naming the kernel.
#include "bindings.h"
#include "cuda/launchers.h"

#ifndef GG_CUDA_MODULE
#define GG_CUDA_MODULE _cuda  // tests/cuda_sim builds these bindings as _cudasim
#endif

namespace {

struct Module {
  static constexpr const char* kName = "gpugrad._cuda";
  static constexpr bool kStream = true;
  using Half = gg::cuda::Half;
};

}  // namespace

PYBIND11_MODULE(GG_CUDA_MODULE, m) {
  m.doc() = "gpugrad CUDA kernels (raw-pointer API on a caller-given stream)";
  std::vector<std::string> names;
#define GG_NS ::gg::cuda
  GG_MAP_KERNELS(GG_DEFINE_MAP)
  GG_KERNELS(GG_DEFINE_KERNEL)
#undef GG_NS
  m.def("kernel_names", [names] { return names; }, "names of the kernel functions this module exports");
  m.def("device_count", &gg::cuda::device_count, "CUDA devices visible (0 without a driver)");
}
