// CUDA kernels of the fused optimizer steps: one in-place pass over each parameter and its
// state, 16-byte packs when every pointer allows it, grid-stride, scalar tail.
#include "cuda/common.cuh"

namespace gg::cuda {
namespace {

template <bool kMomentum, int W, class S>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(S* p, const S* g, S* buf, int64_t n, SgdHyper<S> h) {
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

template <int W, class S>
__global__ void __launch_bounds__(kThreads)
    adam_kernel(S* p, const S* g, S* m, S* v, int64_t n, AdamHyper<S> h) {
  using P = Pack<S, W>;
  const int64_t packs = n / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < packs; i += stride) {
    P param = load_pack<S, W>(p, i * W);
    const P grad = load_pack<S, W>(g, i * W);
    P first_moment = load_pack<S, W>(m, i * W);
    P second_moment = load_pack<S, W>(v, i * W);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      adam_update(param.v[j], grad.v[j], first_moment.v[j], second_moment.v[j], h);
    }
    store_pack<S, W>(p, i * W, param);
    store_pack<S, W>(m, i * W, first_moment);
    store_pack<S, W>(v, i * W, second_moment);
  }
  const int64_t i = packs * W + tid;
  if (i < n) adam_update(p[i], g[i], m[i], v[i], h);
}

}  // namespace

template <class T>
Status sgd_step(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov, bool first_step,
                void* stream) {
  if (n == 0) return nullptr;
  const SgdHyper<T> h =
      make_sgd_hyper<T>(lr, momentum, dampening, weight_decay, nesterov, first_step);
  constexpr int W = kVecWidth<T>;
  const bool vectorized = aligned16(p, g, buf);
  const unsigned blocks = grid_for(vectorized ? ceil_div(n, W) : n);
  if (momentum != 0.0) {
    if (vectorized) {
      sgd_kernel<true, W><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, n, h);
    } else {
      sgd_kernel<true, 1><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, n, h);
    }
  } else {
    if (vectorized) {
      sgd_kernel<false, W><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, n, h);
    } else {
      sgd_kernel<false, 1><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, n, h);
    }
  }
  return launch_status();
}

template <class T>
Status adam_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, double bias_correction1,
                 double bias_correction2, bool decoupled, void* stream) {
  if (n == 0) return nullptr;
  const AdamHyper<T> h = make_adam_hyper<T>(lr, beta1, beta2, eps, weight_decay,
                                            bias_correction1, bias_correction2, decoupled);
  constexpr int W = kVecWidth<T>;
  if (aligned16(p, g, m, v)) {
    adam_kernel<W><<<grid_for(ceil_div(n, W)), kThreads, 0, as_stream(stream)>>>(p, g, m, v, n,
                                                                                 h);
  } else {
    adam_kernel<1><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(p, g, m, v, n, h);
  }
  return launch_status();
}

#define GG_INSTANTIATE(T)                                                                     \
  template Status sgd_step<T>(T*, const T*, T*, int64_t, double, double, double, double, bool, \
                              bool, void*);                                                   \
  template Status adam_step<T>(T*, const T*, T*, T*, int64_t, double, double, double, double, \
                               double, double, double, bool, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
