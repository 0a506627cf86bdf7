// CPU launchers of the fused optimizer steps (SGD with momentum/nesterov, Adam/AdamW).
#include "common/functors.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

namespace gg::cpu {
namespace {

constexpr int64_t kGrain = int64_t(1) << 15;  // elements per worker before threads pay off

}  // namespace

template <class T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first_step) {
  const SgdHyper<T> h =
      make_sgd_hyper<T>(lr, momentum, dampening, weight_decay, nesterov, first_step);
  if (momentum != 0.0) {
    parallel_for(n, kGrain, [=](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) sgd_update<true>(p[i], g[i], buf[i], h);
    });
  } else {
    parallel_for(n, kGrain, [=](int64_t begin, int64_t end, int) {
      T unused = T(0);
      for (int64_t i = begin; i < end; ++i) sgd_update<false>(p[i], g[i], unused, h);
    });
  }
}

template <class T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
               double eps, double weight_decay, double bias_correction1, double bias_correction2,
               bool decoupled) {
  const AdamHyper<T> h = make_adam_hyper<T>(lr, beta1, beta2, eps, weight_decay,
                                            bias_correction1, bias_correction2, decoupled);
  parallel_for(n, kGrain, [=](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) adam_update(p[i], g[i], m[i], v[i], h);
  });
}

#define GG_INSTANTIATE(T)                                                                      \
  template void sgd_step<T>(T*, const T*, T*, int64_t, double, double, double, double, bool,  \
                            bool);                                                             \
  template void adam_step<T>(T*, const T*, T*, T*, int64_t, double, double, double, double,   \
                             double, double, double, bool);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cpu
