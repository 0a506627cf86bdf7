// CPU launchers of the fused optimizer steps (SGD with momentum/nesterov, Adam/AdamW, and the
// Steps of functors.h: RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam).
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

// A Step's Hyper with decay() a compile-time constant (see FixedSgdHyper).
template <class H, bool kDecay>
struct FixedDecay : H {
  static constexpr bool decay() { return kDecay; }
};

// One pass of Step over p, g and its state buffers a, b, c (null where Step::kUses says unused).
template <class Step, class T>
void run_step(T* p, const T* g, T* a, T* b, T* c, const double* hyper, int64_t n) {
  if (n == 0) return;  // hyper may be null then
  using H = typename Step::template Hyper<T>;
  const H h = Step::template make<T>(hyper);
  with_bool(h.decay(), [&](auto decay) {
    const FixedDecay<H, decltype(decay)::value> fixed{h};
    parallel_for(n, kGrainMath, [=](int64_t begin, int64_t end, int) {  // sqrt and divides
      T* __restrict__ pr = p;
      const T* __restrict__ gr = g;
      T* __restrict__ ar = a;
      T* __restrict__ br = b;
      T* __restrict__ cr = c;
      T unused_b = T(0), unused_c = T(0);
      for (int64_t i = begin; i < end; ++i) {
        Step::update(pr[i], gr[i], ar[i], buffer_at<(Step::kUses & 2u) != 0>(br, i, unused_b),
                     buffer_at<(Step::kUses & 4u) != 0>(cr, i, unused_c), fixed);
      }
    });
  });
}

template <class T>
void rmsprop_step(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer,
                  const double* hyper, int64_t n) {
  with_bool(grad_avg != nullptr, [&](auto centered) {
    with_bool(momentum_buffer != nullptr, [&](auto momentum) {
      run_step<RmspropStep<decltype(centered)::value, decltype(momentum)::value>>(
          p, g, square_avg, grad_avg, momentum_buffer, hyper, n);
    });
  });
}

template <class T>
void adagrad_step(T* p, const T* g, T* sum, const double* hyper, int64_t n) {
  run_step<AdagradStep, T>(p, g, sum, nullptr, nullptr, hyper, n);
}

template <class T>
void adadelta_step(T* p, const T* g, T* square_avg, T* acc_delta, const double* hyper,
                   int64_t n) {
  run_step<AdadeltaStep, T>(p, g, square_avg, acc_delta, nullptr, hyper, n);
}

template <class T>
void adamax_step(T* p, const T* g, T* exp_avg, T* exp_inf, const double* hyper, int64_t n) {
  run_step<AdamaxStep, T>(p, g, exp_avg, exp_inf, nullptr, hyper, n);
}

template <class T>
void nadam_step(T* p, const T* g, T* exp_avg, T* exp_avg_sq, const double* hyper, int64_t n) {
  run_step<NadamStep, T>(p, g, exp_avg, exp_avg_sq, nullptr, hyper, n);
}

template <class T>
void radam_step(T* p, const T* g, T* exp_avg, T* exp_avg_sq, const double* hyper, int64_t n) {
  run_step<RadamStep, T>(p, g, exp_avg, exp_avg_sq, nullptr, hyper, n);
}

#define GG_INSTANTIATE(T)                                                             \
  template void sgd_step<T>(T*, const T*, T*, const double*, int64_t);                \
  template void adam_step<T>(T*, const T*, T*, T*, const double*, int64_t);           \
  template void rmsprop_step<T>(T*, const T*, T*, T*, T*, const double*, int64_t);    \
  template void adagrad_step<T>(T*, const T*, T*, const double*, int64_t);            \
  template void adadelta_step<T>(T*, const T*, T*, T*, const double*, int64_t);       \
  template void adamax_step<T>(T*, const T*, T*, T*, const double*, int64_t);         \
  template void nadam_step<T>(T*, const T*, T*, T*, const double*, int64_t);          \
  template void radam_step<T>(T*, const T*, T*, T*, const double*, int64_t);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cpu
