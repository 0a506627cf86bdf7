// Every native kernel, declared once. From these lists come the launcher declarations of
// csrc/cpu and csrc/cuda, both pybind11 modules (gpugrad._C over host arrays, gpugrad._cuda over
// device arrays: the same names and parameters, _cuda adding a final `stream`) and their
// kernel_names(). gpugrad/backend/kernels.py declares the same names with their array
// references; a test keeps the two in step. Host code only (NVRTC never sees this file).
#pragma once

// GG_PARAMS((a, b)) -> a, b: how a parenthesized parameter list (or a macro naming one) becomes
// a real one.
#define GG_UNPAREN(...) __VA_ARGS__
#define GG_PARAMS(list) GG_UNPAREN list

// Elementwise maps out[i] = Functor(in[i]...), the functor from common/functors.h:
// X(name, Functor, inputs, doc). Exported as name(x, y, n, dtype) for one input and
// name(a, b, out, n, dtype) for two; _cuda takes float16 as well.
#define GG_MAP_KERNELS(X)                                                                     \
  X(sigmoid_fwd, SigmoidFwd, 1, "y = 1 / (1 + exp(-x)), stable")                              \
  X(sigmoid_bwd, SigmoidBwd, 2, "gx = g * y * (1 - y) from the output: a = y, b = g")         \
  X(tanh_fwd, TanhFwd, 1, "y = tanh(x)")                                                      \
  X(tanh_bwd, TanhBwd, 2, "gx = g * (1 - y^2) from the output: a = y, b = g")                 \
  X(silu_fwd, SiluFwd, 1, "y = x * sigmoid(x)")                                               \
  X(silu_bwd, SiluBwd, 2, "gx = g * s * (1 + x (1 - s)), s = sigmoid(x): a = x, b = g")       \
  X(gelu_fwd, GeluFwd, 1, "y = x * Phi(x), Phi the normal CDF (erf form)")                    \
  X(gelu_bwd, GeluBwd, 2, "gx = g * (Phi(x) + x phi(x)): a = x, b = g")

// The parameter lists of the two map shapes (names for Python and for argument errors).
#define GG_MAP1_PARAMS (const T* x, T* y, int64_t n)
#define GG_MAP2_PARAMS (const T* a, const T* b, T* out, int64_t n)

// Argument rules beyond "every int64_t size is >= 0", checked by the bindings.
#define GG_NO_CHECK 0
#define GG_CHECK_ACT 1      // int act in [0, kNumActs): 0 identity, 1 relu, 2 sigmoid, 3 tanh
#define GG_CHECK_CLASSES 2  // cols >= 1 when rows > 0 (a row needs a class to be a target)

// Kernels with launchers of their own: X(name, half, check, (parameters), doc). T is the element
// type; half = 1 when _cuda takes float16 too. Optimizer hyperparameters come as an array of
// doubles (SgdSlot / AdamSlot in functors.h), host or device memory like the tensors.
#define GG_KERNELS(X)                                                                         \
  X(relu_fwd, 1, GG_NO_CHECK, (const T* x, T* y, uint32_t* mask, int64_t n),                  \
    "y = x < 0 ? 0 : x (NaN and -0.0 pass); mask: ceil(n/32) uint32 words, bit j of word w "  \
    "set unless x[32w+j] <= 0")                                                               \
  X(relu_bwd, 1, GG_NO_CHECK, (const T* g, const uint32_t* mask, T* gx, int64_t n),           \
    "gx = mask bit ? g : 0")                                                                  \
  X(bias_act_fwd, 0, GG_CHECK_ACT,                                                            \
    (const T* x, const T* bias, T* y, int64_t rows, int64_t cols, int act),                   \
    "y[r, c] = act(x[r, c] + bias[c]); act 0 identity, 1 relu, 2 sigmoid, 3 tanh")            \
  X(bias_act_bwd, 0, GG_CHECK_ACT,                                                            \
    (const T* y, const T* g, T* gx, T* gbias, int64_t rows, int64_t cols, int act),           \
    "gx = g * act'(y) from the output y; gbias[c] = sum_r gx[r, c] (overwritten)")            \
  X(softmax_xent_fwd, 0, GG_CHECK_CLASSES,                                                    \
    (const T* logits, const int64_t* targets, T* loss, T* lse, int64_t* bad_target,           \
     int64_t rows, int64_t cols, Label ignore_index),                                         \
    "lse[r] = logsumexp(logits[r]); loss[r] = lse[r] - logits[r, targets[r]], 0 where the "   \
    "target is ignore_index; a target out of [0, cols) gives NaN and is stored in "          \
    "bad_target[0]")                                                                          \
  X(softmax_xent_bwd, 0, GG_CHECK_CLASSES,                                                    \
    (const T* logits, const int64_t* targets, const T* lse, const T* scale, T* gx,            \
     int64_t rows, int64_t cols),                                                             \
    "gx[r, c] = (softmax(logits)[r, c] - (c == targets[r])) * scale[r] (a target out of "    \
    "[0, cols), such as an ignored row's, picks no column: give that row scale 0)")           \
  X(dropout_scale, 1, GG_NO_CHECK, (T* out, const double* rng, int64_t n),                    \
    "out[i] = 1 / (1 - p) where u_i >= p, else 0, u_i uniform in [0, 1) from the stream "      \
    "rng = (seed, offset, p) (SplitMix64 at counter offset + i)")                             \
  X(sgd_step, 0, GG_NO_CHECK, (T* p, const T* g, T* buf, const double* hyper, int64_t n),     \
    "in-place torch.optim.SGD step of p (and momentum buffer buf, null when momentum == 0); "  \
    "hyper: lr, momentum, dampening, weight_decay, nesterov, first_step")                     \
  X(adam_step, 0, GG_NO_CHECK,                                                                \
    (T* p, const T* g, T* m, T* v, const double* hyper, int64_t n),                           \
    "in-place torch.optim.Adam / AdamW step; hyper: lr, beta1, beta2, eps, weight_decay, "    \
    "bias_correction1, bias_correction2, decoupled")                                          \
  X(rmsprop_step, 0, GG_NO_CHECK,                                                             \
    (T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer, const double* hyper,   \
     int64_t n),                                                                              \
    "in-place torch.optim.RMSprop step (grad_avg null unless centered, momentum_buffer null " \
    "unless momentum > 0); hyper: lr, alpha, eps, weight_decay, momentum, maximize")          \
  X(adagrad_step, 0, GG_NO_CHECK, (T* p, const T* g, T* sum, const double* hyper, int64_t n), \
    "in-place torch.optim.Adagrad step; hyper: clr (lr / (1 + (step - 1) lr_decay)), eps, "   \
    "weight_decay, maximize")                                                                 \
  X(adadelta_step, 0, GG_NO_CHECK,                                                            \
    (T* p, const T* g, T* square_avg, T* acc_delta, const double* hyper, int64_t n),          \
    "in-place torch.optim.Adadelta step; hyper: lr, rho, eps, weight_decay, maximize")        \
  X(adamax_step, 0, GG_NO_CHECK,                                                              \
    (T* p, const T* g, T* exp_avg, T* exp_inf, const double* hyper, int64_t n),               \
    "in-place torch.optim.Adamax step; hyper: clr (lr / (1 - beta1^step)), beta1, beta2, "    \
    "eps, weight_decay, maximize")                                                            \
  X(nadam_step, 0, GG_NO_CHECK,                                                               \
    (T* p, const T* g, T* exp_avg, T* exp_avg_sq, const double* hyper, int64_t n),            \
    "in-place torch.optim.NAdam step; hyper: lr, beta1, beta2, eps, weight_decay, decoupled, " \
    "bias_correction2, grad_coef, avg_coef (from the mu schedule), maximize")                 \
  X(radam_step, 0, GG_NO_CHECK,                                                               \
    (T* p, const T* g, T* exp_avg, T* exp_avg_sq, const double* hyper, int64_t n),            \
    "in-place torch.optim.RAdam step; hyper: lr, beta1, beta2, eps, weight_decay, decoupled, " \
    "bias_correction1, sqrt(bias_correction2), rect, rectified (rho_t > 5), maximize")
