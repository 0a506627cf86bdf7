// Launchers of the CUDA kernels (module gpugrad._cuda), callable from plain C++: the binding
// file is compiled by g++, so nothing here needs CUDA or Python headers. Pointers are device
// pointers to C-contiguous arrays; `stream` is a cudaStream_t passed as void*. Each launcher
// returns nullptr on success, else the CUDA error string (from cudaGetErrorString). None of
// them allocates memory or synchronizes.
#pragma once

#include <cstdint>

namespace gg::cuda {

// Storage tag for IEEE binary16 arrays; the .cu files read them as __half, compute in float.
struct Half;

using Status = const char*;

// T: float, double or Half
template <class T>
Status sigmoid_fwd(const T* x, T* y, int64_t n, void* stream);
template <class T>
Status sigmoid_bwd(const T* y, const T* g, T* gx, int64_t n, void* stream);
template <class T>
Status tanh_fwd(const T* x, T* y, int64_t n, void* stream);
template <class T>
Status tanh_bwd(const T* y, const T* g, T* gx, int64_t n, void* stream);
template <class T>
Status relu_fwd(const T* x, T* y, uint32_t* mask, int64_t n, void* stream);
template <class T>
Status relu_bwd(const T* g, const uint32_t* mask, T* gx, int64_t n, void* stream);

// T: float or double
template <class T>
Status bias_act_fwd(const T* x, const T* bias, T* y, int64_t rows, int64_t cols, int act,
                    void* stream);
template <class T>
Status bias_act_bwd(const T* y, const T* g, T* gx, T* gbias, int64_t rows, int64_t cols, int act,
                    void* stream);
template <class T>
Status softmax_xent_fwd(const T* logits, const int64_t* targets, T* loss, T* lse, int64_t rows,
                        int64_t cols, void* stream);
template <class T>
Status softmax_xent_bwd(const T* logits, const int64_t* targets, const T* lse, const T* scale,
                        T* gx, int64_t rows, int64_t cols, void* stream);
// buf may be null when momentum == 0 (it is not touched then).
template <class T>
Status sgd_step(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov, bool first_step,
                void* stream);
template <class T>
Status adam_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, double bias_correction1,
                 double bias_correction2, bool decoupled, void* stream);

// cudaGetDeviceCount, or 0 when there is no driver or no GPU.
int device_count();

}  // namespace gg::cuda
