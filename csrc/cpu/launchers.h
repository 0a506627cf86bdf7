// Host launchers of the CPU kernels (module gpugrad._C). Pointers address C-contiguous
// arrays; T is float or double. Sizes are validated by the bindings (non-negative).
#pragma once

#include <cstdint>

namespace gg::cpu {

template <class T>
void sigmoid_fwd(const T* x, T* y, int64_t n);
template <class T>
void sigmoid_bwd(const T* y, const T* g, T* gx, int64_t n);
template <class T>
void tanh_fwd(const T* x, T* y, int64_t n);
template <class T>
void tanh_bwd(const T* y, const T* g, T* gx, int64_t n);
template <class T>
void relu_fwd(const T* x, T* y, uint32_t* mask, int64_t n);
template <class T>
void relu_bwd(const T* g, const uint32_t* mask, T* gx, int64_t n);

template <class T>
void bias_act_fwd(const T* x, const T* bias, T* y, int64_t rows, int64_t cols, int act);
template <class T>
void bias_act_bwd(const T* y, const T* g, T* gx, T* gbias, int64_t rows, int64_t cols, int act);

template <class T>
void softmax_xent_fwd(const T* logits, const int64_t* targets, T* loss, T* lse, int64_t rows,
                      int64_t cols);
template <class T>
void softmax_xent_bwd(const T* logits, const int64_t* targets, const T* lse, const T* scale,
                      T* gx, int64_t rows, int64_t cols);

// buf may be null when momentum == 0 (it is not touched then).
template <class T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first_step);
template <class T>
void adam_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
               double eps, double weight_decay, double bias_correction1, double bias_correction2,
               bool decoupled);

}  // namespace gg::cpu
