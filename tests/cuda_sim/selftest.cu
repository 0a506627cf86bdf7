// Kernels that test the CUDA simulator itself (module _cudasim_selftest): collectives and
// barriers give CUDA's answers, and the misuses CUDA leaves undefined are reported.
// Compiled only for the simulator (tests/cuda_sim/build.py), never by nvcc.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda/common.cuh"

namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void lane_sums(int64_t* out) {  // warp_sum of the lane ids, by xor and by down
  const int lane = threadIdx.x & 31;
  const int64_t xor_sum = gg::cuda::warp_sum<int64_t>(lane);
  int64_t down = lane;
  for (int offset = 16; offset > 0; offset >>= 1) down += __shfl_down_sync(kFull, down, offset);
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  out[2 * t] = xor_sum;
  out[2 * t + 1] = lane == 0 ? down : -1;  // only lane 0 holds the whole sum
}

__global__ void ballots(int64_t* out) {
  const unsigned word = __ballot_sync(kFull, threadIdx.x % 3 == 0);
  const int any = __any_sync(kFull, threadIdx.x == 7);
  const int all = __all_sync(kFull, threadIdx.x < 1000);
  const int from_lane_9 = __shfl_sync(kFull, int(threadIdx.x) * 10, 9);
  out[4 * threadIdx.x] = word;
  out[4 * threadIdx.x + 1] = any;
  out[4 * threadIdx.x + 2] = all;
  out[4 * threadIdx.x + 3] = from_lane_9;
}

__global__ void block_sum(const int64_t* in, int64_t* out) {  // shared memory + two barriers
  __shared__ int64_t partial[256];
  partial[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t total = 0;
    for (unsigned t = 0; t < blockDim.x; ++t) total += partial[t];
    out[blockIdx.x] = total;
  }
  __syncthreads();
}

__global__ void index_registers(int64_t* out) {
  const int64_t block = (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const int64_t thread = (int64_t(threadIdx.z) * blockDim.y + threadIdx.y) * blockDim.x +
                         threadIdx.x;
  out[block * blockDim.x * blockDim.y * blockDim.z + thread] = block * 1000 + thread;
}

__global__ void atomic_count(int64_t* counter) { atomicAdd(counter, int64_t(1)); }

__global__ void shuffle_after_exit(int64_t* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(kFull, int64_t(threadIdx.x), 1);
}

__global__ void barrier_skipped(int64_t* out) {
  if (threadIdx.x < 10) {
    __syncthreads();
    out[threadIdx.x] = 1;
  }
}

__global__ void collective_deadlock(int64_t* out) {  // half a warp at a shuffle, half at a barrier
  if ((threadIdx.x & 31) < 16) {
    out[threadIdx.x] = __shfl_xor_sync(kFull, int64_t(1), 1);
  } else {
    __syncthreads();
  }
}

__global__ void mixed_collectives(int64_t* out) {
  if ((threadIdx.x & 1) == 0) {
    out[threadIdx.x] = __ballot_sync(kFull, 1);
  } else {
    out[threadIdx.x] = __shfl_xor_sync(kFull, int64_t(1), 1);
  }
}

__global__ void nothing(int64_t*) {}

using Result = std::pair<std::string, std::vector<int64_t>>;  // (error or "", output)

template <class Launch>
Result run(size_t outputs, Launch launch) {
  std::vector<int64_t> out(outputs, -7);
  launch(out.data());
  const cudaError_t error = cudaGetLastError();
  return {error == cudaSuccess ? std::string() : std::string(cudaGetErrorString(error)), out};
}

}  // namespace

PYBIND11_MODULE(_cudasim_selftest, m) {
  m.def("lane_sums", [] {
    return run(2 * 3 * 64, [](int64_t* out) { lane_sums<<<3, 64>>>(out); });
  });
  m.def("ballots", [] { return run(4 * 32, [](int64_t* out) { ballots<<<1, 32>>>(out); }); });
  m.def("block_sum", [](std::vector<int64_t> in) {
    const unsigned blocks = unsigned(in.size() / 256);
    return run(blocks, [&](int64_t* out) { block_sum<<<blocks, 256>>>(in.data(), out); });
  });
  m.def("index_registers", [] {
    return run(2 * 3 * 4 * 5 * 6 * 2, [](int64_t* out) {
      index_registers<<<dim3(2, 3, 4), dim3(5, 6, 2)>>>(out);
    });
  });
  m.def("atomic_count", [] {
    return run(1, [](int64_t* out) {
      out[0] = 0;
      atomic_count<<<7, 96>>>(out);
    });
  });
  m.def("shuffle_after_exit", [] {
    return run(64, [](int64_t* out) { shuffle_after_exit<<<1, 64>>>(out); });
  });
  m.def("barrier_skipped", [] {
    return run(64, [](int64_t* out) { barrier_skipped<<<1, 64>>>(out); });
  });
  m.def("collective_deadlock", [] {
    return run(64, [](int64_t* out) { collective_deadlock<<<1, 64>>>(out); });
  });
  m.def("mixed_collectives", [] {
    return run(32, [](int64_t* out) { mixed_collectives<<<1, 32>>>(out); });
  });
  m.def("too_many_threads", [] {
    return run(1, [](int64_t* out) { nothing<<<1, 2048>>>(out); });
  });
  m.def("empty_grid", [] { return run(1, [](int64_t* out) { nothing<<<0, 32>>>(out); }); });
  m.def("launch_after_error_is_clean", [] {
    std::vector<int64_t> scratch(64);
    shuffle_after_exit<<<1, 64>>>(scratch.data());
    cudaGetLastError();
    return run(2 * 64, [](int64_t* out) { lane_sums<<<1, 64>>>(out); });
  });
}
