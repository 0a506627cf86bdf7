// Helpers shared by the .cu files: storage <-> compute types, 16-byte packs, launch geometry
// and error status. Never included by C++-only code.
#pragma once

#ifdef GG_CUDA_SIM
#include "cuda_sim.h"  // tests/cuda_sim: the kernels run on the CPU, in the tests
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <cstdint>

#include "common/functors.h"
#include "cuda/launchers.h"

namespace gg::cuda {

constexpr int kThreads = 256;  // threads per block for the 1-D kernels
constexpr unsigned kFullWarp = 0xffffffffu;

// Array element type as stored on the device: the launcher's T, with Half read as __half.
template <class T>
struct StorageOf {
  using type = T;
};
template <>
struct StorageOf<Half> {
  using type = __half;
};
template <class T>
using storage_t = typename StorageOf<T>::type;

template <class T>
storage_t<T>* device_ptr(T* p) {
  return reinterpret_cast<storage_t<T>*>(p);
}
template <class T>
const storage_t<T>* device_ptr(const T* p) {
  return reinterpret_cast<const storage_t<T>*>(p);
}

// Arithmetic happens in float for __half, in the storage type otherwise.
template <class S>
struct ComputeOf {
  using type = S;
};
template <>
struct ComputeOf<__half> {
  using type = float;
};
template <class S>
using compute_t = typename ComputeOf<S>::type;

__device__ __forceinline__ float to_compute(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_compute(float v) { return v; }
__device__ __forceinline__ double to_compute(double v) { return v; }

template <class S, class C>
__device__ __forceinline__ S to_storage(C v) {
  if constexpr (std::is_same_v<S, __half>) {
    return __float2half_rn(v);
  } else {
    return v;
  }
}

// W consecutive elements moved as one aligned access: W * sizeof(S) == 16 is a 128-bit load.
template <class S, int W>
struct alignas(sizeof(S) * W) Pack {
  S v[W];
};

template <class S>
constexpr int kVecWidth = 16 / static_cast<int>(sizeof(S));

template <class S, int W>
__device__ __forceinline__ Pack<S, W> load_pack(const S* base, int64_t i) {
  return *reinterpret_cast<const Pack<S, W>*>(base + i);
}

template <class S, int W>
__device__ __forceinline__ void store_pack(S* base, int64_t i, const Pack<S, W>& pack) {
  *reinterpret_cast<Pack<S, W>*>(base + i) = pack;
}

// True when every pointer allows 16-byte vector access (null pointers count as aligned).
template <class... P>
bool aligned16(const P*... ptrs) {
  return ((reinterpret_cast<uintptr_t>(ptrs) % 16 == 0) && ...);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks that fit on the current device at once (cached per device); grid-stride kernels
// launch at most this many.
int resident_block_limit();

// Blocks for `units` independent thread work items: enough to cover them, capped at what the
// GPU holds at once (grid-stride loops do the rest), at least one.
inline unsigned grid_for(int64_t units) {
  const int64_t wanted = ceil_div(units, kThreads);
  const int64_t limit = resident_block_limit();
  return static_cast<unsigned>(wanted < 1 ? 1 : (wanted < limit ? wanted : limit));
}

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// After every launch: nullptr, or the error string of the failed launch.
inline Status launch_status() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

inline Status status_of(cudaError_t err) {
  if (err == cudaSuccess) return nullptr;
  cudaGetLastError();  // clear it, so a later launch check does not report it again
  return cudaGetErrorString(err);
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = math_max(v, __shfl_xor_sync(kFullWarp, v, offset));
  }
  return v;
}

}  // namespace gg::cuda
