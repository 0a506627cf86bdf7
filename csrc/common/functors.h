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

// ---- the table-driven optimizers (gpugrad/optim/optimizer.py): one Step each ----
// A Step has Hyper<T> (its hyperparameters in the compute type, made once per thread by
// make<T>(hyper) from the doubles of its Slot enum), kUses (bit k set: state buffer k is read and
// written; an unused one is a dummy never touched) and update(p, g, a, b, c, h) over one element
// of the parameter, its gradient and the state buffers a, b, c. Each follows torch's
// single-tensor order of operations, as the array references in gpugrad/backend/optim_updates.py
// do; step-dependent scalars (bias corrections, NAdam's mu products, ...) are computed on the
// host per step and arrive in `hyper`.

// What every Step's Hyper starts with: maximize and weight decay, L2 into g
// or decoupled (p *= 1 - lr * wd, AdamW's way). The CPU launchers replace decay() by a
// compile-time constant, so that their loops have no control flow.
template <class T>
struct DecayHyper {
  T weight_decay, decay_factor;
  bool maximize, decoupled;
  GG_HD bool decay() const { return weight_decay != T(0); }
};

template <class T>
GG_HD inline DecayHyper<T> make_decay_hyper(double lr, double weight_decay, double decoupled,
                                            double maximize) {
  return {T(weight_decay), T(1.0 - lr * weight_decay), maximize != 0.0, decoupled != 0.0};
}

// g after maximize and weight decay (which may also scale p).
template <class T, class H>
GG_HD inline T decayed_gradient(T& p, T g, const H& h) {
  g = h.maximize ? -g : g;
  if (h.decay()) {
    if (h.decoupled) {
      p *= h.decay_factor;
    } else {
      g += h.weight_decay * p;
    }
  }
  return g;
}

// torch's lerp(start, end, weight): start + w (end - start) for w < 0.5, else
// end - (end - start)(1 - w); `weight` holds w, 1 - w and which form applies.
template <class T>
struct LerpWeight {
  T weight, one_minus_weight;
  bool from_start;
};

template <class T>
GG_HD inline LerpWeight<T> make_lerp_weight(double weight) {
  return {T(weight), T(1.0 - weight), weight < 0.5};
}

template <class T>
GG_HD inline T lerp(T start, T end, const LerpWeight<T>& w) {
  return w.from_start ? start + w.weight * (end - start)
                      : end - (end - start) * w.one_minus_weight;
}

// torch.maximum: NaN when either is NaN.
template <class T>
GG_HD inline T maximum_nan(T a, T b) {
  return (a != a || a > b) ? a : b;
}

// Buffer k of a Step at element i, or `unused` when the Step does not use it (base may be null).
template <bool kUsed, class T>
GG_HD inline T& buffer_at(T* base, int64_t i, T& unused) {
  if constexpr (kUsed) {
    return base[i];
  } else {
    return unused;
  }
}

// What a Step declares besides make and update: its Hyper template and which buffers it uses.
template <template <class> class HyperOf, unsigned kBuffers>
struct StepOf {
  static constexpr unsigned kUses = kBuffers;
  template <class T>
  using Hyper = HyperOf<T>;
};

// torch.optim.Adam / AdamW (adam_update above): a = m, b = v. The CPU runs adam_update in a
// loop of its own (decoupled a compile-time switch too); CUDA runs it as a Step.
struct AdamStep : StepOf<AdamHyper, 3u> {
  template <class T>
  GG_HD static Hyper<T> make(const double* hyper) {
    return make_adam_hyper<T>(hyper);
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& m, T& v, T&, const H& h) {
    adam_update(p, g, m, v, h);
  }
};

// torch.optim.RMSprop: a = square_avg, b = grad_avg (centered), c = momentum_buffer (momentum).
// v = alpha v + (1 - alpha) g^2; centered: g_avg = lerp(g_avg, g, 1 - alpha), avg = sqrt(v -
// g_avg^2) + eps, else sqrt(v) + eps; momentum: buf = momentum buf + g / avg, p -= lr buf; else
// p -= lr g / avg.
enum RmspropSlot { kRmspropLr, kRmspropAlpha, kRmspropEps, kRmspropWeightDecay,
                   kRmspropMomentum, kRmspropMaximize, kRmspropSlots };

template <class T>
struct RmspropHyper : DecayHyper<T> {
  T neg_lr, alpha, one_minus_alpha, eps, momentum;
  LerpWeight<T> to_grad;
};

template <bool kCentered, bool kMomentum>
struct RmspropStep : StepOf<RmspropHyper, 1u | (kCentered ? 2u : 0u) | (kMomentum ? 4u : 0u)> {
  template <class T>
  GG_HD static RmspropHyper<T> make(const double* hyper) {  // a dependent base hides Hyper
    const double alpha = hyper[kRmspropAlpha];
    return {make_decay_hyper<T>(0.0, hyper[kRmspropWeightDecay], 0.0, hyper[kRmspropMaximize]),
            T(-hyper[kRmspropLr]), T(alpha), T(1.0 - alpha), T(hyper[kRmspropEps]),
            T(hyper[kRmspropMomentum]), make_lerp_weight<T>(1.0 - alpha)};
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& square_avg, T& grad_avg, T& buf, const H& h) {
    g = decayed_gradient(p, g, h);
    square_avg = square_avg * h.alpha + h.one_minus_alpha * g * g;
    T avg;
    if constexpr (kCentered) {
      grad_avg = lerp(grad_avg, g, h.to_grad);
      avg = math_sqrt(square_avg + T(-1) * grad_avg * grad_avg);
    } else {
      avg = math_sqrt(square_avg);
    }
    avg += h.eps;
    if constexpr (kMomentum) {
      buf = buf * h.momentum + g / avg;
      p += h.neg_lr * buf;
    } else {
      p += h.neg_lr * g / avg;
    }
  }
};

// torch.optim.Adagrad: a = sum. s += g^2; p -= clr g / (sqrt(s) + eps), clr = lr / (1 + (t - 1)
// lr_decay) computed on the host.
enum AdagradSlot { kAdagradClr, kAdagradEps, kAdagradWeightDecay, kAdagradMaximize,
                   kAdagradSlots };

template <class T>
struct AdagradHyper : DecayHyper<T> {
  T neg_clr, eps;
};

struct AdagradStep : StepOf<AdagradHyper, 1u> {
  template <class T>
  GG_HD static Hyper<T> make(const double* hyper) {
    return {make_decay_hyper<T>(0.0, hyper[kAdagradWeightDecay], 0.0, hyper[kAdagradMaximize]),
            T(-hyper[kAdagradClr]), T(hyper[kAdagradEps])};
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& sum, T&, T&, const H& h) {
    g = decayed_gradient(p, g, h);
    sum += g * g;
    const T root = math_sqrt(sum) + h.eps;
    p += h.neg_clr * g / root;
  }
};

// torch.optim.Adadelta: a = square_avg, b = acc_delta. v = rho v + (1 - rho) g^2;
// d = sqrt(u + eps) / sqrt(v + eps) g; u = rho u + (1 - rho) d^2; p -= lr d.
enum AdadeltaSlot { kAdadeltaLr, kAdadeltaRho, kAdadeltaEps, kAdadeltaWeightDecay,
                    kAdadeltaMaximize, kAdadeltaSlots };

template <class T>
struct AdadeltaHyper : DecayHyper<T> {
  T neg_lr, rho, one_minus_rho, eps;
};

struct AdadeltaStep : StepOf<AdadeltaHyper, 3u> {
  template <class T>
  GG_HD static Hyper<T> make(const double* hyper) {
    const double rho = hyper[kAdadeltaRho];
    return {make_decay_hyper<T>(0.0, hyper[kAdadeltaWeightDecay], 0.0, hyper[kAdadeltaMaximize]),
            T(-hyper[kAdadeltaLr]), T(rho), T(1.0 - rho), T(hyper[kAdadeltaEps])};
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& square_avg, T& acc_delta, T&, const H& h) {
    g = decayed_gradient(p, g, h);
    square_avg = square_avg * h.rho + h.one_minus_rho * g * g;
    const T root = math_sqrt(square_avg + h.eps);
    const T delta = math_sqrt(acc_delta + h.eps) / root * g;
    acc_delta = acc_delta * h.rho + h.one_minus_rho * delta * delta;
    p += h.neg_lr * delta;
  }
};

// torch.optim.Adamax: a = exp_avg, b = exp_inf. m = lerp(m, g, 1 - b1); u = max(b2 u, |g| +
// eps); p -= clr m / u, clr = lr / (1 - b1^t) computed on the host.
enum AdamaxSlot { kAdamaxClr, kAdamaxBeta1, kAdamaxBeta2, kAdamaxEps, kAdamaxWeightDecay,
                  kAdamaxMaximize, kAdamaxSlots };

template <class T>
struct AdamaxHyper : DecayHyper<T> {
  T neg_clr, beta2, eps;
  LerpWeight<T> to_grad;
};

struct AdamaxStep : StepOf<AdamaxHyper, 3u> {
  template <class T>
  GG_HD static Hyper<T> make(const double* hyper) {
    return {make_decay_hyper<T>(0.0, hyper[kAdamaxWeightDecay], 0.0, hyper[kAdamaxMaximize]),
            T(-hyper[kAdamaxClr]), T(hyper[kAdamaxBeta2]), T(hyper[kAdamaxEps]),
            make_lerp_weight<T>(1.0 - hyper[kAdamaxBeta1])};
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& exp_avg, T& exp_inf, T&, const H& h) {
    g = decayed_gradient(p, g, h);
    exp_avg = lerp(exp_avg, g, h.to_grad);
    exp_inf = maximum_nan(exp_inf * h.beta2, (g < T(0) ? -g : g) + h.eps);
    p += h.neg_clr * exp_avg / exp_inf;
  }
};

// torch.optim.NAdam: a = exp_avg, b = exp_avg_sq. m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2)
// g^2; denom = sqrt(v / bc2) + eps; p += grad_coef g / denom; p += avg_coef m / denom, the
// coefficients (from the mu schedule and its running product) computed on the host.
enum NadamSlot { kNadamLr, kNadamBeta1, kNadamBeta2, kNadamEps, kNadamWeightDecay,
                 kNadamDecoupled, kNadamBiasCorrection2, kNadamGradCoef, kNadamAvgCoef,
                 kNadamMaximize, kNadamSlots };

template <class T>
struct NadamHyper : DecayHyper<T> {
  T beta2, one_minus_beta2, eps, bias_correction2, grad_coef, avg_coef;
  LerpWeight<T> to_grad;
};

struct NadamStep : StepOf<NadamHyper, 3u> {
  template <class T>
  GG_HD static Hyper<T> make(const double* hyper) {
    const double beta2 = hyper[kNadamBeta2];
    return {make_decay_hyper<T>(hyper[kNadamLr], hyper[kNadamWeightDecay],
                                hyper[kNadamDecoupled], hyper[kNadamMaximize]),
            T(beta2), T(1.0 - beta2), T(hyper[kNadamEps]), T(hyper[kNadamBiasCorrection2]),
            T(hyper[kNadamGradCoef]), T(hyper[kNadamAvgCoef]),
            make_lerp_weight<T>(1.0 - hyper[kNadamBeta1])};
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& exp_avg, T& exp_avg_sq, T&, const H& h) {
    g = decayed_gradient(p, g, h);
    exp_avg = lerp(exp_avg, g, h.to_grad);
    exp_avg_sq = exp_avg_sq * h.beta2 + h.one_minus_beta2 * g * g;
    const T denom = math_sqrt(exp_avg_sq / h.bias_correction2) + h.eps;
    p += h.grad_coef * g / denom;
    p += h.avg_coef * exp_avg / denom;
  }
};

// torch.optim.RAdam: a = exp_avg, b = exp_avg_sq. m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2)
// g^2; with rectification (rho_t > 5, decided on the host with the term `rect`):
// p -= m / bc1 * lr * (sqrt(bc2) / (sqrt(v) + eps)) * rect, else p -= m / bc1 * lr.
enum RadamSlot { kRadamLr, kRadamBeta1, kRadamBeta2, kRadamEps, kRadamWeightDecay,
                 kRadamDecoupled, kRadamBiasCorrection1, kRadamBiasCorrection2Sqrt, kRadamRect,
                 kRadamRectified, kRadamMaximize, kRadamSlots };

template <class T>
struct RadamHyper : DecayHyper<T> {
  T lr, beta2, one_minus_beta2, eps, bias_correction1, bias_correction2_sqrt, rect;
  LerpWeight<T> to_grad;
  bool rectified;
};

struct RadamStep : StepOf<RadamHyper, 3u> {
  template <class T>
  GG_HD static Hyper<T> make(const double* hyper) {
    const double beta2 = hyper[kRadamBeta2];
    return {make_decay_hyper<T>(hyper[kRadamLr], hyper[kRadamWeightDecay],
                                hyper[kRadamDecoupled], hyper[kRadamMaximize]),
            T(hyper[kRadamLr]), T(beta2), T(1.0 - beta2), T(hyper[kRadamEps]),
            T(hyper[kRadamBiasCorrection1]), T(hyper[kRadamBiasCorrection2Sqrt]),
            T(hyper[kRadamRect]), make_lerp_weight<T>(1.0 - hyper[kRadamBeta1]),
            hyper[kRadamRectified] != 0.0};
  }

  template <class T, class H>
  GG_HD static void update(T& p, T g, T& exp_avg, T& exp_avg_sq, T&, const H& h) {
    g = decayed_gradient(p, g, h);
    exp_avg = lerp(exp_avg, g, h.to_grad);
    exp_avg_sq = exp_avg_sq * h.beta2 + h.one_minus_beta2 * g * g;
    const T corrected = exp_avg / h.bias_correction1;
    if (h.rectified) {
      const T root = math_sqrt(exp_avg_sq) + h.eps;
      p += -(corrected * h.lr * (h.bias_correction2_sqrt / root) * h.rect);
    } else {
      p += -(corrected * h.lr);
    }
  }
};

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
