// The element math of every native kernel, written once and compiled twice: by g++ for the
// OpenMP launchers in csrc/cpu and by nvcc for the CUDA kernels in csrc/cuda. Templates take
// the compute type T (float or double; CUDA's __half storage computes in float).
#pragma once

#include <math.h>

#include <cstdint>
#include <type_traits>

#ifdef __CUDACC__
#define GG_HD __host__ __device__
#else
#define GG_HD
#endif

namespace gg {

#ifndef __CUDA_ARCH__
// expf for the CPU loops, branch-free so they vectorize (libm's expf is a call per element:
// sigmoid ran 8x slower than torch). 2^n * p(r) with n = round(x log2 e), r = x - n ln 2 in
// two parts and Cephes' degree-6 polynomial: within 2 ulp of expf on [-87.3, 88.7]; 0 below
// that range (where expf is denormal or 0), inf above it, NaN stays NaN.
inline float host_expf(float x) {
  const float clamped = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
  const float t = clamped * 1.44269504088896341f;
  const int n = static_cast<int>(t + (t >= 0.0f ? 0.5f : -0.5f));
  const float fn = static_cast<float>(n);
  float r = clamped - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  // 2^n by building the float's exponent; n + 127 stays in [1, 254] for the clamped range
  const int32_t bits = (n + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  float result = p * scale;
  result = x < -87.33654f ? 0.0f : result;             // underflow (expf gives a denormal)
  result = x > 88.72283f ? __builtin_inff() : result;  // overflow
  return x != x ? x : result;                           // NaN in, NaN out
}
#endif

// One spelling for float and double that resolves to expf/exp etc. on host and device alike
// (float exp on the host is the vectorizable host_expf above; the CUDA simulator in tests/
// runs the device's choice).
#if defined(__CUDA_ARCH__) || defined(GG_CUDA_SIM)
GG_HD inline float math_exp(float x) { return expf(x); }
#else
GG_HD inline float math_exp(float x) { return host_expf(x); }
#endif
GG_HD inline double math_exp(double x) { return exp(x); }
GG_HD inline float math_log(float x) { return logf(x); }
GG_HD inline double math_log(double x) { return log(x); }
GG_HD inline float math_tanh(float x) { return tanhf(x); }
GG_HD inline double math_tanh(double x) { return tanh(x); }
GG_HD inline float math_sqrt(float x) { return sqrtf(x); }
GG_HD inline double math_sqrt(double x) { return sqrt(x); }
template <class T>
GG_HD inline T math_max(T a, T b) {
  return a > b ? a : b;
}

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

// Calls f(std::integral_constant<int, ACT>{}) for a runtime act code already checked to be
// in [0, kNumActs), so the activation is a compile-time constant inside the kernel loops.
template <class F>
inline void with_act(int act, F&& f) {
  switch (act) {
    case kRelu: f(std::integral_constant<int, kRelu>{}); break;
    case kSigmoid: f(std::integral_constant<int, kSigmoid>{}); break;
    case kTanh: f(std::integral_constant<int, kTanh>{}); break;
    default: f(std::integral_constant<int, kIdentity>{}); break;
  }
}

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

// ---- fused optimizer steps, one in-place pass per parameter ----

// torch.optim.SGD: d = g + wd * p; with momentum: buf = first ? d : mu * buf + (1 - damp) * d,
// d = nesterov ? d + mu * buf : buf; then p -= lr * d.
template <class T>
struct SgdHyper {
  T lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, first_step;
  GG_HD bool decay() const { return weight_decay != T(0); }
};

template <class T>
inline SgdHyper<T> make_sgd_hyper(double lr, double momentum, double dampening,
                                  double weight_decay, bool nesterov, bool first_step) {
  return {T(lr), T(momentum), T(1.0 - dampening), T(weight_decay), nesterov, first_step};
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
// evaluated as torch does: step_size = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps.
template <class T>
struct AdamHyper {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
  T step_size, bias_correction2_sqrt, decay_factor;
  bool decoupled;
  GG_HD bool decay() const { return weight_decay != T(0); }
};

template <class T>
inline AdamHyper<T> make_adam_hyper(double lr, double beta1, double beta2, double eps,
                                    double weight_decay, double bias_correction1,
                                    double bias_correction2, bool decoupled) {
  return {T(beta1),
          T(1.0 - beta1),
          T(beta2),
          T(1.0 - beta2),
          T(eps),
          T(weight_decay),
          T(lr / bias_correction1),
          T(sqrt(bias_correction2)),
          T(1.0 - lr * weight_decay),
          decoupled};
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

// ---- functor wrappers, so one generic map kernel/loop serves every elementwise op ----

struct SigmoidFwd {
  template <class T>
  GG_HD T operator()(T x) const {
    return sigmoid(x);
  }
};

struct SigmoidBwd {
  template <class T>
  GG_HD T operator()(T y, T g) const {
    return sigmoid_backward(y, g);
  }
};

struct TanhFwd {
  template <class T>
  GG_HD T operator()(T x) const {
    return tanh_forward(x);
  }
};

struct TanhBwd {
  template <class T>
  GG_HD T operator()(T y, T g) const {
    return tanh_backward(y, g);
  }
};

}  // namespace gg
