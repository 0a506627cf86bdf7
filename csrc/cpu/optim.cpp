// CPU launchers of the fused optimizer steps (SGD with momentum/nesterov, Adam/AdamW).
#include <type_traits>

#include "common/functors.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

namespace gg::cpu {
// SgdHyper with its switches as compile-time constants: the update loop then has no control
// flow and vectorizes (with runtime switches it stayed scalar, 3x slower than NumPy).
template <class T, bool kDecay, bool kNesterov, bool kFirst>
struct FixedSgdHyper {
  T lr, momentum, one_minus_dampening, weight_decay;
  static constexpr bool nesterov = kNesterov;
  static constexpr bool first_step = kFirst;
  static constexpr bool decay() { return kDecay; }
};

template <class F>
void with_bool(bool value, F&& f) {
  if (value) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

template <class T>
void sgd_step(T* p, const T* g, T* buf, const double* hyper, int64_t n) {
  if (n == 0) return;  // hyper may be null then
  const SgdHyper<T> h = make_sgd_hyper<T>(hyper);
  with_bool(h.decay(), [&](auto decay) {
    with_bool(h.nesterov, [&](auto nest) {
      with_bool(h.first_step, [&](auto first) {
        const FixedSgdHyper<T, decltype(decay)::value, decltype(nest)::value,
                            decltype(first)::value>
            fixed{h.lr, h.momentum, h.one_minus_dampening, h.weight_decay};
        // restrict: p, g and buf never overlap, and saying so lets the loops vectorize
        if (buf != nullptr) {  // momentum != 0
          parallel_for(n, kGrainMemory, [=](int64_t begin, int64_t end, int) {
            T* __restrict__ pr = p;
            const T* __restrict__ gr = g;
            T* __restrict__ br = buf;
            for (int64_t i = begin; i < end; ++i) sgd_update<true>(pr[i], gr[i], br[i], fixed);
          });
        } else {
          parallel_for(n, kGrainMemory, [=](int64_t begin, int64_t end, int) {
            T* __restrict__ pr = p;
            const T* __restrict__ gr = g;
            T unused = T(0);
            for (int64_t i = begin; i < end; ++i) sgd_update<false>(pr[i], gr[i], unused, fixed);
          });
        }
      });
    });
  });
}

// AdamHyper with compile-time switches, for the same reason as FixedSgdHyper.
template <class T, bool kDecay, bool kDecoupled>
struct FixedAdamHyper : AdamHyper<T> {
  static constexpr bool decoupled = kDecoupled;
  static constexpr bool decay() { return kDecay; }
};

template <class T>
void adam_step(T* p, const T* g, T* m, T* v, const double* hyper, int64_t n) {
  if (n == 0) return;  // hyper may be null then
  const AdamHyper<T> h = make_adam_hyper<T>(hyper);
  with_bool(h.decay(), [&](auto decay) {
    with_bool(h.decoupled, [&](auto dec) {
      const FixedAdamHyper<T, decltype(decay)::value, decltype(dec)::value> fixed{h};
      parallel_for(n, kGrainMath, [=](int64_t begin, int64_t end, int) {  // sqrt and a divide
        T* __restrict__ pr = p;
        const T* __restrict__ gr = g;
        T* __restrict__ mr = m;
        T* __restrict__ vr = v;
        for (int64_t i = begin; i < end; ++i) adam_update(pr[i], gr[i], mr[i], vr[i], fixed);
      });
    });
  });
}

#define GG_INSTANTIATE(T)                                                      \
  template void sgd_step<T>(T*, const T*, T*, const double*, int64_t);         \
  template void adam_step<T>(T*, const T*, T*, T*, const double*, int64_t);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cpu
