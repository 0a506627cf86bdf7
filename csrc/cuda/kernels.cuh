// Every CUDA kernel of gpugrad, written once and compiled twice: by nvcc, through the launchers
// in csrc/cuda/*.cu (module gpugrad._cuda), and by NVRTC at run time through CuPy when _cuda is
// not built (gpugrad/backend/nvrtc.py instantiates these same templates by name). So this file
// and what it includes use no standard header and no host code; the math is common/functors.h.
// Memory-bound kernels move 16-byte packs when every pointer allows it (W > 1; scalar tails),
// keep kIlp packs in flight per thread and loop grid-stride.
#pragma once

#include "common/functors.h"

#if !defined(__CUDACC_RTC__) && !defined(GG_CUDA_SIM)
#include <cuda_fp16.h>
#endif

namespace gg::cuda {

constexpr int kThreads = 256;  // threads per block for the 1-D kernels
constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kIlp = 2;        // packs loaded before any is stored

// ---- storage types: float and double compute as themselves, IEEE binary16 in float ----------

#if defined(__CUDACC_RTC__)
// NVRTC has no cuda_fp16.h: 16 bits converted by the PTX instructions that header uses.
struct __align__(2) half_t {
  unsigned short bits;
};
#else
using half_t = __half;
#endif

template <class S>
struct Storage {
  using compute = S;
  __device__ static __forceinline__ S load(S v) { return v; }
  __device__ static __forceinline__ S store(S v) { return v; }
};

template <>
struct Storage<half_t> {
  using compute = float;
#if defined(__CUDACC_RTC__)
  __device__ static __forceinline__ float load(half_t v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
    return f;
  }
  __device__ static __forceinline__ half_t store(float f) {
    half_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
    return h;
  }
#else
  __device__ static __forceinline__ float load(half_t v) { return __half2float(v); }
  __device__ static __forceinline__ half_t store(float f) { return __float2half_rn(f); }
#endif
};

template <class S>
using compute_t = typename Storage<S>::compute;

template <class S>
__device__ __forceinline__ compute_t<S> to_compute(S v) {
  return Storage<S>::load(v);
}

template <class S>
__device__ __forceinline__ S to_storage(compute_t<S> v) {
  return Storage<S>::store(v);
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

__device__ __forceinline__ float quiet_nan(float) { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double quiet_nan(double) {
  return __longlong_as_double(static_cast<long long>(0x7ff8000000000000ULL));
}
__device__ __forceinline__ float negative_infinity(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double negative_infinity(double) {
  return __longlong_as_double(static_cast<long long>(0xfff0000000000000ULL));
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

// out = F(a) (NIN == 1) or F(a, b) (NIN == 2), W elements per pack, n % W tail scalar.
template <int NIN, int W, class S, class F>
__device__ __forceinline__ void map_body(const S* a, const S* b, S* out, int64_t n) {
  const F f{};
  using P = Pack<S, W>;
  const int64_t packs = n / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t base = tid; base < packs; base += stride * kIlp) {
    P in_a[kIlp];
    [[maybe_unused]] P in_b[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        in_a[k] = load_pack<S, W>(a, i * W);
        if constexpr (NIN == 2) in_b[k] = load_pack<S, W>(b, i * W);
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        P result;
#pragma unroll
        for (int j = 0; j < W; ++j) {
          if constexpr (NIN == 2) {
            result.v[j] = to_storage<S>(f(to_compute(in_a[k].v[j]), to_compute(in_b[k].v[j])));
          } else {
            result.v[j] = to_storage<S>(f(to_compute(in_a[k].v[j])));
          }
        }
        store_pack<S, W>(out, i * W, result);
      }
    }
  }
  const int64_t i = packs * W + tid;  // tail: fewer than W elements, one per thread
  if (i < n) {
    if constexpr (NIN == 2) {
      out[i] = to_storage<S>(f(to_compute(a[i]), to_compute(b[i])));
    } else {
      out[i] = to_storage<S>(f(to_compute(a[i])));
    }
  }
}


template <int W, class S, class F>
__global__ void __launch_bounds__(kThreads) map1_kernel(const S* x, S* y, int64_t n) {
  map_body<1, W, S, F>(x, nullptr, y, n);
}

template <int W, class S, class F>
__global__ void __launch_bounds__(kThreads)
    map2_kernel(const S* a, const S* b, S* out, int64_t n) {
  map_body<2, W, S, F>(a, b, out, n);
}

// relu forward + mask. A warp owns chunks of 32 * W elements (W words of mask): lane l holds
// elements [l * W, l * W + W) of the chunk, so 32 / W neighbouring lanes share a word; their
// W-bit pieces are OR-ed together with xor-shuffles and one lane writes the word. The loop
// bound is warp-uniform, so every shuffle sees the full warp. The last n % (32 * W) elements
// go one word at a time through a ballot in warp 0; bits past n come out 0.
template <int W, class S>
__global__ void __launch_bounds__(kThreads)
    relu_fwd_kernel(const S* x, S* y, uint32_t* mask, int64_t n) {
  using P = Pack<S, W>;
  constexpr int kLanesPerWord = 32 / W;
  constexpr int64_t kChunk = 32 * W;
  const int lane = threadIdx.x & 31;
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  const int64_t chunks = n / kChunk;
  for (int64_t c = warp; c < chunks; c += warps) {
    const int64_t first = c * kChunk + int64_t(lane) * W;
    const P in = load_pack<S, W>(x, first);
    P out;
    uint32_t bits = 0;
#pragma unroll
    for (int j = 0; j < W; ++j) {
      const auto v = to_compute(in.v[j]);
      bits |= uint32_t(relu_active(v)) << j;
      out.v[j] = to_storage<S>(relu(v));
    }
    store_pack<S, W>(y, first, out);
    uint32_t word;
    if constexpr (W == 1) {
      word = __ballot_sync(kFullWarp, bits != 0);
    } else {
      word = bits << (W * (lane % kLanesPerWord));
#pragma unroll
      for (int offset = 1; offset < kLanesPerWord; offset <<= 1) {
        word |= __shfl_xor_sync(kFullWarp, word, offset);
      }
    }
    if (lane % kLanesPerWord == 0) mask[c * W + lane / kLanesPerWord] = word;
  }
  if (warp == 0) {
    for (int64_t first = chunks * kChunk; first < n; first += 32) {
      const int64_t i = first + lane;
      bool active = false;
      if (i < n) {
        const auto v = to_compute(x[i]);
        active = relu_active(v);
        y[i] = to_storage<S>(relu(v));
      }
      const uint32_t word = __ballot_sync(kFullWarp, active);
      if (lane == 0) mask[first >> 5] = word;
    }
  }
}


// gx = bit ? g : 0. A pack starts at a multiple of W and W divides 32, so its bits sit in one
// mask word.
template <int W, class S>
__global__ void __launch_bounds__(kThreads)
    relu_bwd_kernel(const S* g, const uint32_t* mask, S* gx, int64_t n) {
  using P = Pack<S, W>;
  const int64_t packs = n / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t base = tid; base < packs; base += stride * kIlp) {
    P in[kIlp];
    uint32_t words[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        in[k] = load_pack<S, W>(g, i * W);
        words[k] = mask[(i * W) >> 5] >> ((i * W) & 31);
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        P out;
#pragma unroll
        for (int j = 0; j < W; ++j) {
          out.v[j] = to_storage<S>(relu_backward((words[k] >> j) & 1u, to_compute(in[k].v[j])));
        }
        store_pack<S, W>(gx, i * W, out);
      }
    }
  }
  const int64_t i = packs * W + tid;
  if (i < n) gx[i] = to_storage<S>(relu_backward(mask_bit(mask, i), to_compute(g[i])));
}


// y[r, c] = act(x[r, c] + bias[c]) over the flat matrix; W > 1 only when cols % W == 0, so a
// pack never straddles two rows and there is no tail.
template <int ACT, int W, class S>
__global__ void __launch_bounds__(kThreads)
    bias_act_fwd_kernel(const S* x, const S* bias, S* y, int64_t total, int64_t cols) {
  using P = Pack<S, W>;
  const int64_t packs = total / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t base = tid; base < packs; base += stride * kIlp) {
    P in_x[kIlp];
    P in_bias[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        in_x[k] = load_pack<S, W>(x, i * W);
        in_bias[k] = load_pack<S, W>(bias, (i * W) % cols);
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        P out;
#pragma unroll
        for (int j = 0; j < W; ++j) out.v[j] = act_forward<ACT>(in_x[k].v[j] + in_bias[k].v[j]);
        store_pack<S, W>(y, i * W, out);
      }
    }
  }
}

// Backward: blocks of 32 columns x 8 row lanes. Lane (tx, ty) walks rows ty, ty + 8 * grid.y,
// ... of column tx, writing gx and summing it; the 8 row lanes are then added in a fixed order.
// With one block row (grid.y == 1) that sum is gbias; otherwise each block row adds its share
// into gbias, zeroed beforehand, with atomicAdd.
constexpr int kColTile = 32;
constexpr int kRowLanes = kThreads / kColTile;

template <int ACT, class S>
__global__ void __launch_bounds__(kThreads)
    bias_act_bwd_kernel(const S* y, const S* g, S* gx, S* gbias, int64_t rows, int64_t cols,
                        bool accumulate) {
  __shared__ S partial[kRowLanes][kColTile];
  const int64_t col = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  S sum = S(0);
  if (col < cols) {
    const int64_t row_step = int64_t(gridDim.y) * kRowLanes;
#pragma unroll 4
    for (int64_t r = int64_t(blockIdx.y) * kRowLanes + threadIdx.y; r < rows; r += row_step) {
      const int64_t i = r * cols + col;
      const S grad = act_backward<ACT>(y[i], g[i]);
      gx[i] = grad;
      sum += grad;
    }
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
#pragma unroll
    for (int lane_row = 1; lane_row < kRowLanes; ++lane_row) sum += partial[lane_row][threadIdx.x];
    if (accumulate) {
      atomicAdd(gbias + col, sum);
    } else {
      gbias[col] = sum;
    }
  }
}

// Sum or max over the threads working on one row: a warp (kWarpPerRow) or the whole block.
template <bool kWarpPerRow, bool kMax, class S>
__device__ __forceinline__ S row_reduce(S v, S* scratch) {
  v = kMax ? warp_max(v) : warp_sum(v);
  if constexpr (kWarpPerRow) {
    return v;
  } else {
    const int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) scratch[warp] = v;
    __syncthreads();
    S total = scratch[0];
    for (int w = 1; w < int(blockDim.x >> 5); ++w) {
      total = kMax ? math_max(total, scratch[w]) : total + scratch[w];
    }
    __syncthreads();  // scratch is reused by the next reduction
    return total;
  }
}

// lse[r] = max + log(sum exp(x - max)); loss[r] = lse[r] - x[r, t[r]]. Rows advance uniformly
// per warp (or per block), so the shuffles and barriers in row_reduce see every thread.
template <bool kWarpPerRow, class S>
__global__ void __launch_bounds__(kThreads)
    softmax_xent_fwd_kernel(const S* logits, const int64_t* targets, S* loss, S* lse,
                            int64_t* bad_target, int64_t rows, int64_t cols, Label ignore_index) {
  __shared__ S scratch[kThreads / 32];
  int64_t row;
  int64_t row_step;
  int worker;
  int workers;
  if constexpr (kWarpPerRow) {
    row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    row_step = (int64_t(gridDim.x) * blockDim.x) >> 5;
    worker = threadIdx.x & 31;
    workers = 32;
  } else {
    row = blockIdx.x;
    row_step = gridDim.x;
    worker = threadIdx.x;
    workers = blockDim.x;
  }
  for (; row < rows; row += row_step) {
    const S* xr = logits + row * cols;
    S row_max = negative_infinity(S(0));
    for (int64_t c = worker; c < cols; c += workers) row_max = math_max(row_max, xr[c]);
    row_max = row_reduce<kWarpPerRow, true>(row_max, scratch);
    S sum = S(0);
    for (int64_t c = worker; c < cols; c += workers) sum += shifted_exp(xr[c], row_max);
    sum = row_reduce<kWarpPerRow, false>(sum, scratch);
    if (worker == 0) {
      const S row_lse = logsumexp_finish(row_max, sum);
      lse[row] = row_lse;
      const int64_t target = targets[row];
      const int kind = target_kind(target, cols, ignore_index);
      if (kind == kPickTarget) {
        loss[row] = xent_loss(row_lse, xr[target]);
      } else if (kind == kIgnoreRow) {
        loss[row] = S(0);
      } else {  // reported, not read: the host learns of it at its next read (no sync here)
        loss[row] = quiet_nan(S(0));
        atomicExch(reinterpret_cast<unsigned long long*>(bad_target),
                   static_cast<unsigned long long>(target));
      }
    }
  }
}

// gx[r, c] = (exp(x[r, c] - lse[r]) - (c == t[r])) * scale[r]; flat like bias_act_fwd.
template <int W, class S>
__global__ void __launch_bounds__(kThreads)
    softmax_xent_bwd_kernel(const S* logits, const int64_t* targets, const S* lse,
                            const S* scale, S* gx, int64_t total, int64_t cols) {
  using P = Pack<S, W>;
  const int64_t packs = total / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t base = tid; base < packs; base += stride * kIlp) {
    P in[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) in[k] = load_pack<S, W>(logits, i * W);
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        const int64_t row = (i * W) / cols;
        const int64_t col = (i * W) - row * cols;
        const S row_lse = lse[row];
        const S row_scale = scale[row];
        const int64_t target = targets[row];
        P out;
#pragma unroll
        for (int j = 0; j < W; ++j) {
          out.v[j] = xent_backward(in[k].v[j], row_lse, col + j == target, row_scale);
        }
        store_pack<S, W>(gx, i * W, out);
      }
    }
  }
}


// out[i] = dropout scale of element i (functors.h), grid-stride
template <class S>
__global__ void __launch_bounds__(kThreads) dropout_scale_kernel(S* out, const double* rng,
                                                                  int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = to_storage<S>(dropout_scale_at<compute_t<S>>(rng, i));
  }
}

template <bool kMomentum, int W, class S>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(S* p, const S* g, S* buf, const double* hyper, int64_t n) {
  const SgdHyper<S> h = make_sgd_hyper<S>(hyper);
  using P = Pack<S, W>;
  const int64_t packs = n / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < packs; i += stride) {
    P param = load_pack<S, W>(p, i * W);
    const P grad = load_pack<S, W>(g, i * W);
    [[maybe_unused]] P momentum_buf;
    if constexpr (kMomentum) momentum_buf = load_pack<S, W>(buf, i * W);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      if constexpr (kMomentum) {
        sgd_update<true>(param.v[j], grad.v[j], momentum_buf.v[j], h);
      } else {
        S unused = S(0);
        sgd_update<false>(param.v[j], grad.v[j], unused, h);
      }
    }
    store_pack<S, W>(p, i * W, param);
    if constexpr (kMomentum) store_pack<S, W>(buf, i * W, momentum_buf);
  }
  const int64_t i = packs * W + tid;  // tail: fewer than W elements
  if (i < n) {
    if constexpr (kMomentum) {
      sgd_update<true>(p[i], g[i], buf[i], h);
    } else {
      S unused = S(0);
      sgd_update<false>(p[i], g[i], unused, h);
    }
  }
}

// One pass of an optimizer Step (functors.h: Adam's and the table-driven optimizers') over p, g
// and its state buffers a, b, c (null, or any pointer, where Step::kUses says unused).
template <class Step, int W, class S>
__global__ void __launch_bounds__(kThreads)
    optimizer_step_kernel(S* p, const S* g, S* a, S* b, S* c, const double* hyper, int64_t n) {
  constexpr bool kUsesB = (Step::kUses & 2u) != 0, kUsesC = (Step::kUses & 4u) != 0;
  const typename Step::template Hyper<S> h = Step::template make<S>(hyper);
  using P = Pack<S, W>;
  const int64_t packs = n / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < packs; i += stride) {
    P param = load_pack<S, W>(p, i * W);
    const P grad = load_pack<S, W>(g, i * W);
    P first = load_pack<S, W>(a, i * W);
    P second{}, third{};
    if constexpr (kUsesB) second = load_pack<S, W>(b, i * W);
    if constexpr (kUsesC) third = load_pack<S, W>(c, i * W);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      Step::update(param.v[j], grad.v[j], first.v[j], second.v[j], third.v[j], h);
    }
    store_pack<S, W>(p, i * W, param);
    store_pack<S, W>(a, i * W, first);
    if constexpr (kUsesB) store_pack<S, W>(b, i * W, second);
    if constexpr (kUsesC) store_pack<S, W>(c, i * W, third);
  }
  const int64_t i = packs * W + tid;  // tail: fewer than W elements
  if (i < n) {
    S unused_b = S(0), unused_c = S(0);
    Step::update(p[i], g[i], a[i], buffer_at<kUsesB>(b, i, unused_b),
                 buffer_at<kUsesC>(c, i, unused_c), h);
  }
}

}  // namespace gg::cuda
