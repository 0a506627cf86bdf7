// Device queries: GPU count for Python, and the resident-block cap for grid-stride launches.
#include <atomic>

#include "cuda/common.cuh"

namespace gg::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device is an answer here, not an error
    return 0;
  }
  return count;
}

int resident_block_limit() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return 1024;
  }
  if (device < 0 || device >= kMaxDevices) device = 0;
  int limit = cached[device].load(std::memory_order_relaxed);
  if (limit == 0) {
    int sms = 0;
    int threads_per_sm = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor,
                               device) != cudaSuccess) {
      cudaGetLastError();
      return 1024;
    }
    limit = sms * (threads_per_sm / kThreads);
    if (limit < 1) limit = 1;
    cached[device].store(limit, std::memory_order_relaxed);
  }
  return limit;
}

}  // namespace gg::cuda
