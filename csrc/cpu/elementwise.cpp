// CPU launchers of the elementwise activations: sigmoid, tanh, relu (with its bit mask).
#include <algorithm>

#include "common/functors.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

namespace gg::cpu {
namespace {

constexpr int64_t kGrain = int64_t(1) << 15;  // elements per worker before threads pay off

template <class T, class F>
void map_unary(const T* x, T* y, int64_t n, F f) {
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) y[i] = f(x[i]);
  });
}

template <class T, class F>
void map_binary(const T* a, const T* b, T* y, int64_t n, F f) {
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) y[i] = f(a[i], b[i]);
  });
}

}  // namespace

template <class T>
void sigmoid_fwd(const T* x, T* y, int64_t n) {
  map_unary(x, y, n, SigmoidFwd{});
}

template <class T>
void sigmoid_bwd(const T* y, const T* g, T* gx, int64_t n) {
  map_binary(y, g, gx, n, SigmoidBwd{});
}

template <class T>
void tanh_fwd(const T* x, T* y, int64_t n) {
  map_unary(x, y, n, TanhFwd{});
}

template <class T>
void tanh_bwd(const T* y, const T* g, T* gx, int64_t n) {
  map_binary(y, g, gx, n, TanhBwd{});
}

template <class T>
void relu_fwd(const T* x, T* y, uint32_t* mask, int64_t n) {
  const int64_t words = (n + 31) / 32;
  // workers split whole words, so each mask word is written by exactly one of them
  parallel_for(words, kGrain / 32, [=](int64_t w_begin, int64_t w_end, int) {
    for (int64_t w = w_begin; w < w_end; ++w) {
      const int64_t base = w * 32;
      const int len = static_cast<int>(std::min<int64_t>(32, n - base));
      uint32_t bits = 0;
      for (int j = 0; j < len; ++j) {
        const T v = x[base + j];
        bits |= uint32_t(relu_active(v)) << j;
        y[base + j] = relu(v);
      }
      mask[w] = bits;
    }
  });
}

template <class T>
void relu_bwd(const T* g, const uint32_t* mask, T* gx, int64_t n) {
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) gx[i] = relu_backward(mask_bit(mask, i), g[i]);
  });
}

#define GG_INSTANTIATE(T)                                                \
  template void sigmoid_fwd<T>(const T*, T*, int64_t);                   \
  template void sigmoid_bwd<T>(const T*, const T*, T*, int64_t);         \
  template void tanh_fwd<T>(const T*, T*, int64_t);                      \
  template void tanh_bwd<T>(const T*, const T*, T*, int64_t);            \
  template void relu_fwd<T>(const T*, T*, uint32_t*, int64_t);           \
  template void relu_bwd<T>(const T*, const uint32_t*, T*, int64_t);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cpu
