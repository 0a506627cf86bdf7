// CUDA kernels of the elementwise activations: sigmoid, tanh and relu with its bit mask.
// Memory-bound, so: 16-byte packs when every pointer allows it (scalar tail), ILP packs in
// flight per thread, grid-stride loops. Math comes from common/functors.h.
#include "cuda/common.cuh"

namespace gg::cuda {
namespace {

constexpr int kIlp = 2;  // packs loaded before any is stored

// out = f(a) (NIN == 1) or f(a, b) (NIN == 2), W elements per pack, n % W tail scalar.
template <int NIN, int W, class S, class F>
__global__ void __launch_bounds__(kThreads)
    map_kernel(const S* a, const S* b, S* out, int64_t n, F f) {
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

template <int NIN, class S, class F>
Status launch_map(const S* a, const S* b, S* out, int64_t n, F f, void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<S>;
  if (aligned16(a, b, out)) {
    map_kernel<NIN, W><<<grid_for(ceil_div(n / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
        a, b, out, n, f);
  } else {
    map_kernel<NIN, 1><<<grid_for(ceil_div(n, kIlp)), kThreads, 0, as_stream(stream)>>>(
        a, b, out, n, f);
  }
  return launch_status();
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

template <class S>
Status launch_relu_fwd(const S* x, S* y, uint32_t* mask, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<S>;
  if (aligned16(x, y)) {
    relu_fwd_kernel<W><<<grid_for(n / W), kThreads, 0, as_stream(stream)>>>(x, y, mask, n);
  } else {
    relu_fwd_kernel<1><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(x, y, mask, n);
  }
  return launch_status();
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

template <class S>
Status launch_relu_bwd(const S* g, const uint32_t* mask, S* gx, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<S>;
  if (aligned16(g, gx)) {
    relu_bwd_kernel<W><<<grid_for(ceil_div(n / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
        g, mask, gx, n);
  } else {
    relu_bwd_kernel<1><<<grid_for(ceil_div(n, kIlp)), kThreads, 0, as_stream(stream)>>>(
        g, mask, gx, n);
  }
  return launch_status();
}

}  // namespace

template <class T>
Status sigmoid_fwd(const T* x, T* y, int64_t n, void* stream) {
  const storage_t<T>* unused = nullptr;
  return launch_map<1>(device_ptr(x), unused, device_ptr(y), n, SigmoidFwd{}, stream);
}

template <class T>
Status sigmoid_bwd(const T* y, const T* g, T* gx, int64_t n, void* stream) {
  return launch_map<2>(device_ptr(y), device_ptr(g), device_ptr(gx), n, SigmoidBwd{}, stream);
}

template <class T>
Status tanh_fwd(const T* x, T* y, int64_t n, void* stream) {
  const storage_t<T>* unused = nullptr;
  return launch_map<1>(device_ptr(x), unused, device_ptr(y), n, TanhFwd{}, stream);
}

template <class T>
Status tanh_bwd(const T* y, const T* g, T* gx, int64_t n, void* stream) {
  return launch_map<2>(device_ptr(y), device_ptr(g), device_ptr(gx), n, TanhBwd{}, stream);
}

template <class T>
Status relu_fwd(const T* x, T* y, uint32_t* mask, int64_t n, void* stream) {
  return launch_relu_fwd(device_ptr(x), device_ptr(y), mask, n, stream);
}

template <class T>
Status relu_bwd(const T* g, const uint32_t* mask, T* gx, int64_t n, void* stream) {
  return launch_relu_bwd(device_ptr(g), mask, device_ptr(gx), n, stream);
}

#define GG_INSTANTIATE(T)                                                          \
  template Status sigmoid_fwd<T>(const T*, T*, int64_t, void*);                    \
  template Status sigmoid_bwd<T>(const T*, const T*, T*, int64_t, void*);          \
  template Status tanh_fwd<T>(const T*, T*, int64_t, void*);                       \
  template Status tanh_bwd<T>(const T*, const T*, T*, int64_t, void*);             \
  template Status relu_fwd<T>(const T*, T*, uint32_t*, int64_t, void*);            \
  template Status relu_bwd<T>(const T*, const uint32_t*, T*, int64_t, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
GG_INSTANTIATE(Half)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
