// The element math of every native kernel, written once and compiled three ways: by g++ for
// the CPU launchers in csrc/cpu (gpugrad._C), by nvcc for the CUDA kernels in csrc/cuda
// (gpugrad._cuda) and by NVRTC at run time when _cuda is not built (gpugrad/backend/nvrtc.py).
// So: nothing here may include a standard header (portable.h has what NVRTC lacks). Templates
// take the compute type T (float or double; CUDA's __half storage computes in float).
#pragma once

#include "common/portable.h"

namespace gg {

// ---- sigmoid: y = 1 / (1 + exp(-x)); backward from the output: gx = g * y * (1 - y) ----

template <class T>
GG_HD inline T sigmoid(T x) {
  // stable: exp only ever sees -|x|, so it cannot overflow (x = +-1000 gives exactly 1 / 0);
  // one exp and a select rather than a branch, so the CPU loop vectorizes
  const T e = math_exp(x < T(0) ? x : -x);
  const T s = T(1) / (T(1) + e);
  return x >= T(0) ? s : e * s;
}

template <class T>
GG_HD inline T sigmoid_backward(T y, T g) {
  return g * y * (T(1) - y);
}

// ---- tanh: backward from the output: gx = g * (1 - y^2) ----

template <class T>
GG_HD inline T tanh_forward(T x) {
  return math_tanh(x);
}

template <class T>
GG_HD inline T tanh_backward(T y, T g) {
  return g * (T(1) - y * y);
}

// ---- relu as torch: y = x < 0 ? 0 : x, so NaN stays NaN and -0.0 stays -0.0; the saved mask
// holds one bit per element: bit j of word w is !(x[32w + j] <= 0) (x > 0 or NaN: torch's
// backward zeroes the gradient only where the output is <= 0), ceil(n / 32) words, bits past
// n are 0 ----

template <class T>
GG_HD inline bool relu_active(T x) {
  return !(x <= T(0));
}

template <class T>
GG_HD inline T relu(T x) {
  return x < T(0) ? T(0) : x;
}

template <class T>
GG_HD inline T relu_backward(bool active, T g) {
  return active ? g : T(0);
}

GG_HD inline bool mask_bit(const uint32_t* mask, int64_t i) {
  return (mask[i >> 5] >> (i & 31)) & 1u;
}

// ---- bias + activation: y[r, c] = act(x[r, c] + bias[c]) ----

enum Act : int { kIdentity = 0, kRelu = 1, kSigmoid = 2, kTanh = 3 };
constexpr int kNumActs = 4;

template <int ACT, class T>
GG_HD inline T act_forward(T x) {
  if constexpr (ACT == kRelu) {
    return relu(x);
  } else if constexpr (ACT == kSigmoid) {
    return sigmoid(x);
  } else if constexpr (ACT == kTanh) {
    return tanh_forward(x);
  } else {
    return x;
  }
}

// gx = g * act'(pre-activation), expressed through the saved output y
template <int ACT, class T>
GG_HD inline T act_backward(T y, T g) {
  if constexpr (ACT == kRelu) {
    return relu_backward(relu_active(y), g);  // y = relu(z) is <= 0 exactly where z is
  } else if constexpr (ACT == kSigmoid) {
    return sigmoid_backward(y, g);
  } else if constexpr (ACT == kTanh) {
    return tanh_backward(y, g);
  } else {
    return g;
  }
}

#if !defined(__CUDACC_RTC__)  // host code: the launchers pick the kernel for a runtime act
// Calls f(IntConstant<ACT>{}) for a runtime act code already checked to be in
// [0, kNumActs), so the activation is a compile-time constant inside the kernel loops.
template <class F>
inline void with_act(int act, F&& f) {
  switch (act) {
    case kRelu: f(IntConstant<kRelu>{}); break;
    case kSigmoid: f(IntConstant<kSigmoid>{}); break;
    case kTanh: f(IntConstant<kTanh>{}); break;
    default: f(IntConstant<kIdentity>{}); break;
  }
}
#endif

// ---- row-wise softmax cross-entropy on logits x (rows x cols), targets t ----
// forward: m = max_c x, s = sum_c exp(x - m), lse = m + log(s), loss = lse - x[t]
// backward: gx[r, c] = (exp(x[r, c] - lse[r]) - (c == t[r])) * scale[r]

template <class T>
GG_HD inline T shifted_exp(T x, T row_max) {
  return math_exp(x - row_max);  // stable: the exponent is <= 0
}

template <class T>
GG_HD inline T logsumexp_finish(T row_max, T sum_shifted_exp) {
  return row_max + math_log(sum_shifted_exp);
}

template <class T>
GG_HD inline T xent_loss(T lse, T target_logit) {
  return lse - target_logit;
}

template <class T>
GG_HD inline T xent_backward(T x, T lse, bool is_target, T scale) {
  return (math_exp(x - lse) - (is_target ? T(1) : T(0))) * scale;
}

// A row's target: a class to pick, ignore_index (the row's loss and gradient are 0, as torch's),
// or anything else out of [0, cols): a bad target, reported through the kernels' bad_target.
enum TargetKind { kPickTarget, kIgnoreRow, kBadTarget };

GG_HD inline int target_kind(int64_t target, int64_t cols, Label ignore_index) {
  if (target == ignore_index) return kIgnoreRow;
  return target >= 0 && target < cols ? kPickTarget : kBadTarget;
}

// ---- fused optimizer steps, one in-place pass per parameter ----

// torch.optim.SGD: d = g + wd * p; with momentum: buf = first ? d : mu * buf + (1 - damp) * d,
// d = nesterov ? d + mu * buf : buf; then p -= lr * d. The hyperparameters arrive as an array
// of doubles in the order of SgdSlot (host memory for _C, device memory for CUDA), so that a
// recorded step (gg.capture, a CUDA graph) reads the values of the step it replays.
enum SgdSlot { kSgdLr, kSgdMomentum, kSgdDampening, kSgdWeightDecay, kSgdNesterov, kSgdFirstStep,
               kSgdSlots };

template <class T>
struct SgdHyper {
  T lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, first_step;
  GG_HD bool decay() const { return weight_decay != T(0); }
};

template <class T>
GG_HD inline SgdHyper<T> make_sgd_hyper(const double* hyper) {
  return {T(hyper[kSgdLr]),       T(hyper[kSgdMomentum]),     T(1.0 - hyper[kSgdDampening]),
          T(hyper[kSgdWeightDecay]), hyper[kSgdNesterov] != 0.0, hyper[kSgdFirstStep] != 0.0};
}

// kMomentum is momentum != 0; without it `buf` is neither read nor written. H is SgdHyper<T>
// or any type with the same members (the CPU passes one whose switches are compile-time).
template <bool kMomentum, class T, class H>
GG_HD inline void sgd_update(T& p, T g, T& buf, const H& h) {
  T d = g;
  if (h.decay()) d += h.weight_decay * p;
  if constexpr (kMomentum) {
    buf = h.first_step ? d : h.momentum * buf + h.one_minus_dampening * d;
    d = h.nesterov ? d + h.momentum * buf : buf;
  }
  p -= h.lr * d;
}

// torch.optim.Adam / AdamW (amsgrad=False): decoupled ? p *= 1 - lr * wd : g += wd * p;
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr * (m / bc1) / (sqrt(v / bc2) + eps),
// evaluated as torch does: step_size = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps. The
// hyperparameters arrive as an array of doubles in the order of AdamSlot (see SgdSlot).
enum AdamSlot { kAdamLr, kAdamBeta1, kAdamBeta2, kAdamEps, kAdamWeightDecay,
                kAdamBiasCorrection1, kAdamBiasCorrection2, kAdamDecoupled, kAdamSlots };

template <class T>
struct AdamHyper {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
  T step_size, bias_correction2_sqrt, decay_factor;
  bool decoupled;
  GG_HD bool decay() const { return weight_decay != T(0); }
};

template <class T>
GG_HD inline AdamHyper<T> make_adam_hyper(const double* hyper) {
  const double lr = hyper[kAdamLr], weight_decay = hyper[kAdamWeightDecay];
  return {T(hyper[kAdamBeta1]),
          T(1.0 - hyper[kAdamBeta1]),
          T(hyper[kAdamBeta2]),
          T(1.0 - hyper[kAdamBeta2]),
          T(hyper[kAdamEps]),
          T(weight_decay),
          T(lr / hyper[kAdamBiasCorrection1]),
          T(math_sqrt(hyper[kAdamBiasCorrection2])),
          T(1.0 - lr * weight_decay),
          hyper[kAdamDecoupled] != 0.0};
}

// H is AdamHyper<T> or any type with the same members (the CPU's has compile-time switches).
template <class T, class H>
GG_HD inline void adam_update(T& p, T g, T& m, T& v, const H& h) {
  if (h.decay()) {
    if (h.decoupled) {
      p *= h.decay_factor;
    } else {
      g += h.weight_decay * p;
    }
  }
  m = h.beta1 * m + h.one_minus_beta1 * g;
  v = h.beta2 * v + h.one_minus_beta2 * g * g;
  const T denom = math_sqrt(v) / h.bias_correction2_sqrt + h.eps;
  p -= h.step_size * (m / denom);
}

// ---- dropout: a counter-based random stream, the same numbers on the CPU and the GPU ----
// u(i) = SplitMix64's output for state seed + (offset + i + 1) * gamma, top 53 bits in [0, 1):
// element i of a stream needs no state but (seed, offset), which a recorded step (gg.capture)
// keeps in memory and advances between replays.
GG_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

GG_HD inline double uniform_at(uint64_t seed, uint64_t counter) {
  return double(mix64(seed + (counter + 1) * 0x9e3779b97f4a7c15ULL) >> 11) *
         (1.0 / 9007199254740992.0);
}

// rng = (seed, offset, p) as doubles (seeds and offsets below 2^53): the scale of element i is
// 1 / (1 - p) where u(offset + i) >= p (kept), else 0
enum DropoutSlot { kDropoutSeed, kDropoutOffset, kDropoutP, kDropoutSlots };

template <class T>
GG_HD inline T dropout_scale_at(const double* rng, int64_t i) {
  const double p = rng[kDropoutP];
  const bool keep = uniform_at(uint64_t(rng[kDropoutSeed]), uint64_t(rng[kDropoutOffset]) + uint64_t(i)) >= p;
  return keep ? T(1.0 / (1.0 - p)) : T(0);
}

// ---- SiLU: y = x * sigmoid(x); backward from the input: gx = g * s * (1 + x * (1 - s)) ----

template <class T>
GG_HD inline T silu(T x) {
  return x * sigmoid(x);
}

template <class T>
GG_HD inline T silu_backward(T x, T g) {
  const T s = sigmoid(x);
  return g * (s * (T(1) + x * (T(1) - s)));
}

// ---- GELU (exact): y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; backward from the input:
// gx = g * (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) ----

template <class T>
GG_HD inline T gelu_cdf(T x) {
  return T(0.5) * (T(1) + math_erf(x * T(0.70710678118654752440)));
}

template <class T>
GG_HD inline T gelu(T x) {
  return x * gelu_cdf(x);
}

template <class T>
GG_HD inline T gelu_backward(T x, T g) {
  const T pdf = math_exp(T(-0.5) * x * x) * T(0.39894228040143267794);
  return g * (gelu_cdf(x) + x * pdf);
}

// ---- functor wrappers, so one generic map kernel/loop serves every elementwise op; each is
// named in csrc/common/kernel_list.h ----

#define GG_UNARY_FUNCTOR(Name, fn) \
  struct Name {                    \
    template <class T>             \
    GG_HD T operator()(T x) const { \
      return fn(x);                \
    }                              \
  };
#define GG_BINARY_FUNCTOR(Name, fn) \
  struct Name {                     \
    template <class T>              \
    GG_HD T operator()(T a, T b) const { \
      return fn(a, b);              \
    }                               \
  };

GG_UNARY_FUNCTOR(SigmoidFwd, sigmoid)
GG_BINARY_FUNCTOR(SigmoidBwd, sigmoid_backward)
GG_UNARY_FUNCTOR(TanhFwd, tanh_forward)
GG_BINARY_FUNCTOR(TanhBwd, tanh_backward)
GG_UNARY_FUNCTOR(SiluFwd, silu)
GG_BINARY_FUNCTOR(SiluBwd, silu_backward)
GG_UNARY_FUNCTOR(GeluFwd, gelu)
GG_BINARY_FUNCTOR(GeluBwd, gelu_backward)

#undef GG_UNARY_FUNCTOR
#undef GG_BINARY_FUNCTOR

}  // namespace gg
