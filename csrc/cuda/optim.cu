// Launchers of the fused optimizer steps (cuda/kernels.cuh): one in-place pass over each
// parameter and its state, 16-byte packs when every pointer allows it. The kernels read the
// hyperparameters from `hyper` (device memory), so a captured step replays with new ones.
#include "cuda/common.cuh"

namespace gg::cuda {

template <class T>
Status sgd_step(T* p, const T* g, T* buf, const double* hyper, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<T>;
  const bool vectorized = aligned16(p, g, buf);
  const unsigned blocks = grid_for(vectorized ? ceil_div(n, W) : n);
  if (buf != nullptr) {  // momentum != 0
    if (vectorized) {
      sgd_kernel<true, W><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    } else {
      sgd_kernel<true, 1><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    }
  } else {
    if (vectorized) {
      sgd_kernel<false, W><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    } else {
      sgd_kernel<false, 1><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    }
  }
  return launch_status();
}

template <class T>
Status adam_step(T* p, const T* g, T* m, T* v, const double* hyper, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<T>;
  if (aligned16(p, g, m, v)) {
    adam_kernel<W><<<grid_for(ceil_div(n, W)), kThreads, 0, as_stream(stream)>>>(p, g, m, v, hyper, n);
  } else {
    adam_kernel<1><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(p, g, m, v, hyper, n);
  }
  return launch_status();
}

#define GG_INSTANTIATE(T)                                                              \
  template Status sgd_step<T>(T*, const T*, T*, const double*, int64_t, void*);        \
  template Status adam_step<T>(T*, const T*, T*, T*, const double*, int64_t, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
