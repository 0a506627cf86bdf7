// Launchers of the elementwise CUDA kernels (cuda/kernels.cuh): every map of GG_MAP_KERNELS,
// and relu with its bit mask. Packed (W > 1) when every pointer allows 16-byte access.
#include "cuda/common.cuh"

namespace gg::cuda {

template <class F, class T>
Status map1(const T* x, T* y, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  using S = storage_t<T>;
  constexpr int W = kVecWidth<S>;
  if (aligned16(x, y)) {
    map1_kernel<W, S, F><<<grid_for(ceil_div(n / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
        device_ptr(x), device_ptr(y), n);
  } else {
    map1_kernel<1, S, F><<<grid_for(ceil_div(n, kIlp)), kThreads, 0, as_stream(stream)>>>(
        device_ptr(x), device_ptr(y), n);
  }
  return launch_status();
}

template <class F, class T>
Status map2(const T* a, const T* b, T* out, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  using S = storage_t<T>;
  constexpr int W = kVecWidth<S>;
  if (aligned16(a, b, out)) {
    map2_kernel<W, S, F><<<grid_for(ceil_div(n / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
        device_ptr(a), device_ptr(b), device_ptr(out), n);
  } else {
    map2_kernel<1, S, F><<<grid_for(ceil_div(n, kIlp)), kThreads, 0, as_stream(stream)>>>(
        device_ptr(a), device_ptr(b), device_ptr(out), n);
  }
  return launch_status();
}

template <class T>
Status relu_fwd(const T* x, T* y, uint32_t* mask, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  using S = storage_t<T>;
  constexpr int W = kVecWidth<S>;
  if (aligned16(x, y)) {
    relu_fwd_kernel<W><<<grid_for(n / W), kThreads, 0, as_stream(stream)>>>(
        device_ptr(x), device_ptr(y), mask, n);
  } else {
    relu_fwd_kernel<1><<<grid_for(n), kThreads, 0, as_stream(stream)>>>(device_ptr(x),
                                                                       device_ptr(y), mask, n);
  }
  return launch_status();
}

template <class T>
Status relu_bwd(const T* g, const uint32_t* mask, T* gx, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  using S = storage_t<T>;
  constexpr int W = kVecWidth<S>;
  if (aligned16(g, gx)) {
    relu_bwd_kernel<W><<<grid_for(ceil_div(n / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
        device_ptr(g), mask, device_ptr(gx), n);
  } else {
    relu_bwd_kernel<1><<<grid_for(ceil_div(n, kIlp)), kThreads, 0, as_stream(stream)>>>(
        device_ptr(g), mask, device_ptr(gx), n);
  }
  return launch_status();
}

template <class T>
Status dropout_scale(T* out, const double* rng, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  dropout_scale_kernel<<<grid_for(n), kThreads, 0, as_stream(stream)>>>(device_ptr(out), rng, n);
  return launch_status();
}

#define GG_MAP_ARGS1(T) const T*, T*, int64_t, void*
#define GG_MAP_ARGS2(T) const T*, const T*, T*, int64_t, void*
#define GG_INSTANTIATE_MAP(name, F, inputs, doc)                            \
  template Status map##inputs<F, float>(GG_MAP_ARGS##inputs(float));       \
  template Status map##inputs<F, double>(GG_MAP_ARGS##inputs(double));     \
  template Status map##inputs<F, Half>(GG_MAP_ARGS##inputs(Half));
GG_MAP_KERNELS(GG_INSTANTIATE_MAP)
#undef GG_INSTANTIATE_MAP

#define GG_INSTANTIATE(T)                                                          \
  template Status relu_fwd<T>(const T*, T*, uint32_t*, int64_t, void*);            \
  template Status relu_bwd<T>(const T*, const uint32_t*, T*, int64_t, void*);      \
  template Status dropout_scale<T>(T*, const double*, int64_t, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
GG_INSTANTIATE(Half)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
