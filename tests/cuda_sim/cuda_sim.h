// A CPU stand-in for the slice of CUDA that csrc/cuda uses, so that the real kernel code (its
// index math, 16-byte packs, tails, grid-stride loops, bit-packed masks, warp shuffles, block
// barriers and atomics) runs and is tested on a machine without a GPU.
//
// csrc/cuda/common.cuh includes this file instead of the CUDA runtime when GG_CUDA_SIM is
// defined; tests/cuda_sim/build.py rewrites each `kernel<<<grid, block, smem, stream>>>(args)`
// into gg_sim::launch(grid, block, smem, stream, [&] { kernel(args); }) and compiles the .cu
// files with g++. The fake runtime (cuda_sim.cpp) answers the cudart calls the launchers make.
//
// A block's threads are fibers (ucontext) on the calling OS thread, run in a shuffled order;
// blocks run one after another, also shuffled. Warp collectives and __syncthreads suspend the
// fiber until every thread they need has arrived. What CUDA leaves undefined is an error here,
// reported through cudaGetLastError like a failed launch: a full-warp shuffle with a lane that
// has exited, a barrier some threads skip, collectives that never meet (deadlock), and an
// invalid launch configuration.
//
// Not modelled: concurrency between blocks (no data races are found across blocks), memory
// spaces (device pointers are host pointers), timing, and device math functions (the host's
// libm computes expf/tanhf; functors.h picks the device branch's functions under GG_CUDA_SIM).
#pragma once

// Before the CUDA headers: they keep macros that are already defined.
#define __host__
#define __device__
#define __global__
#define __shared__ static  // blocks run one at a time, so one static array per kernel is a block's
#define __launch_bounds__(...)

#include <cuda_fp16.h>  // __half with host conversions; pulls in the runtime API declarations

#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace gg_sim {

// The index registers of the running fiber.
const uint3& thread_index();
const uint3& block_index();
const dim3& block_dim();
const dim3& grid_dim();

// Warp collectives: every lane of `mask` deposits a 64-bit value and waits for the others.
enum class Collective : int { ShflXor, ShflDown, ShflUp, ShflIdx, Ballot, Any, All };
uint64_t warp_collective(Collective op, unsigned mask, uint64_t value, int arg);
void sync_threads();

// Runs body() once per thread of every block; errors go to cudaGetLastError.
void run_kernel(dim3 grid, dim3 block, size_t shared_bytes, void (*trampoline)(void*), void* body);

template <class Body>
void launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t /*stream*/, Body&& body) {
  using B = std::remove_reference_t<Body>;
  run_kernel(grid, block, shared_bytes, [](void* b) { (*static_cast<B*>(b))(); },
             const_cast<void*>(static_cast<const void*>(&body)));
}

template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}

template <class T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace gg_sim

#define threadIdx (::gg_sim::thread_index())
#define blockIdx (::gg_sim::block_index())
#define blockDim (::gg_sim::block_dim())
#define gridDim (::gg_sim::grid_dim())

inline void __syncthreads() { ::gg_sim::sync_threads(); }

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int /*width*/ = 32) {
  using gg_sim::Collective;
  return gg_sim::from_bits<T>(
      gg_sim::warp_collective(Collective::ShflXor, mask, gg_sim::to_bits(v), lane_mask));
}

template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int /*width*/ = 32) {
  using gg_sim::Collective;
  return gg_sim::from_bits<T>(gg_sim::warp_collective(Collective::ShflDown, mask,
                                                      gg_sim::to_bits(v), int(delta)));
}

template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int /*width*/ = 32) {
  using gg_sim::Collective;
  return gg_sim::from_bits<T>(
      gg_sim::warp_collective(Collective::ShflUp, mask, gg_sim::to_bits(v), int(delta)));
}

template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int /*width*/ = 32) {
  using gg_sim::Collective;
  return gg_sim::from_bits<T>(
      gg_sim::warp_collective(Collective::ShflIdx, mask, gg_sim::to_bits(v), src_lane));
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return unsigned(gg_sim::warp_collective(gg_sim::Collective::Ballot, mask, predicate != 0, 0));
}

inline int __any_sync(unsigned mask, int predicate) {
  return int(gg_sim::warp_collective(gg_sim::Collective::Any, mask, predicate != 0, 0));
}

inline int __all_sync(unsigned mask, int predicate) {
  return int(gg_sim::warp_collective(gg_sim::Collective::All, mask, predicate != 0, 0));
}

// Bit casts (device intrinsics).
inline float __int_as_float(int v) { return gg_sim::from_bits<float>(uint32_t(v)); }
inline int __float_as_int(float v) { return int(uint32_t(gg_sim::to_bits(v))); }
inline double __longlong_as_double(long long v) { return gg_sim::from_bits<double>(uint64_t(v)); }
inline long long __double_as_longlong(double v) { return (long long)gg_sim::to_bits(v); }

// Blocks never run at the same time, so a plain read-modify-write is atomic.
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

template <class T>
T atomicExch(T* address, T value) {
  const T old = *address;
  *address = value;
  return old;
}
