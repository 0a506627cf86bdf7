// What the launchers in csrc/cuda/*.cu share: the CUDA runtime (or the simulator's stand-in),
// the kernels, launch geometry and error status. Host code; never included by C++-only code.
#pragma once

#ifdef GG_CUDA_SIM
#include "cuda_sim.h"  // tests/cuda_sim: the kernels run on the CPU, in the tests
#else
#include <cuda_runtime.h>
#endif

#include <cstdint>

#include "cuda/kernels.cuh"
#include "cuda/launchers.h"

namespace gg::cuda {

// Array element type as stored on the device: the launcher's T, with Half read as half_t.
template <class T>
struct StorageOf {
  using type = T;
};
template <>
struct StorageOf<Half> {
  using type = half_t;
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

}  // namespace gg::cuda
