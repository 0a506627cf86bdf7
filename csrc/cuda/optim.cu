// Launchers of the fused optimizer steps (cuda/kernels.cuh: SGD's kernel, and one kernel for the
// Steps of functors.h, Adam's and the others'): one in-place pass over each parameter and its state, 16-byte packs when every
// pointer allows it. The kernels read the hyperparameters from `hyper` (device memory), so a
// captured step replays with new ones.
#include "cuda/common.cuh"

namespace gg::cuda {

// One pass of an optimizer Step (functors.h) over p, g and the state buffers a, b, c (null
// where the Step does not use them).
template <class Step, class T>
Status launch_step(T* p, const T* g, T* a, T* b, T* c, const double* hyper, int64_t n,
                   void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<T>;
  if (aligned16(p, g, a, b, c)) {
    optimizer_step_kernel<Step, W>
        <<<grid_for(ceil_div(n, W)), kThreads, 0, as_stream(stream)>>>(p, g, a, b, c, hyper, n);
  } else {
    optimizer_step_kernel<Step, 1>
        <<<grid_for(n), kThreads, 0, as_stream(stream)>>>(p, g, a, b, c, hyper, n);
  }
  return launch_status();
}

template <class T>
Status sgd_step(T* p, const T* g, T* buf, const double* hyper, int64_t n, void* stream) {
  if (n == 0) return nullptr;
  constexpr int W = kVecWidth<T>;
  const bool vectorized = aligned16(p, g, buf);
  const unsigned blocks = grid_for(vectorized ? ceil_div(n, W) : n);
  if (buf != nullptr) {  // momentum != 0
    if (vectorized) {
      sgd_kernel<true, W><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    } else {
      sgd_kernel<true, 1><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    }
  } else {
    if (vectorized) {
      sgd_kernel<false, W><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    } else {
      sgd_kernel<false, 1><<<blocks, kThreads, 0, as_stream(stream)>>>(p, g, buf, hyper, n);
    }
  }
  return launch_status();
}

template <class T>
Status adam_step(T* p, const T* g, T* m, T* v, const double* hyper, int64_t n, void* stream) {
  return launch_step<AdamStep, T>(p, g, m, v, nullptr, hyper, n, stream);
}

template <class T>
Status rmsprop_step(T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buffer,
                    const double* hyper, int64_t n, void* stream) {
  if (grad_avg != nullptr) {
    return momentum_buffer != nullptr
               ? launch_step<RmspropStep<true, true>>(p, g, square_avg, grad_avg,
                                                      momentum_buffer, hyper, n, stream)
               : launch_step<RmspropStep<true, false>>(p, g, square_avg, grad_avg,
                                                       momentum_buffer, hyper, n, stream);
  }
  return momentum_buffer != nullptr
             ? launch_step<RmspropStep<false, true>>(p, g, square_avg, grad_avg,
                                                     momentum_buffer, hyper, n, stream)
             : launch_step<RmspropStep<false, false>>(p, g, square_avg, grad_avg,
                                                      momentum_buffer, hyper, n, stream);
}

template <class T>
Status adagrad_step(T* p, const T* g, T* sum, const double* hyper, int64_t n, void* stream) {
  return launch_step<AdagradStep, T>(p, g, sum, nullptr, nullptr, hyper, n, stream);
}

template <class T>
Status adadelta_step(T* p, const T* g, T* square_avg, T* acc_delta, const double* hyper,
                     int64_t n, void* stream) {
  return launch_step<AdadeltaStep, T>(p, g, square_avg, acc_delta, nullptr, hyper, n, stream);
}

template <class T>
Status adamax_step(T* p, const T* g, T* exp_avg, T* exp_inf, const double* hyper, int64_t n,
                   void* stream) {
  return launch_step<AdamaxStep, T>(p, g, exp_avg, exp_inf, nullptr, hyper, n, stream);
}

template <class T>
Status nadam_step(T* p, const T* g, T* exp_avg, T* exp_avg_sq, const double* hyper, int64_t n,
                  void* stream) {
  return launch_step<NadamStep, T>(p, g, exp_avg, exp_avg_sq, nullptr, hyper, n, stream);
}

template <class T>
Status radam_step(T* p, const T* g, T* exp_avg, T* exp_avg_sq, const double* hyper, int64_t n,
                  void* stream) {
  return launch_step<RadamStep, T>(p, g, exp_avg, exp_avg_sq, nullptr, hyper, n, stream);
}

#define GG_INSTANTIATE(T)                                                                     \
  template Status sgd_step<T>(T*, const T*, T*, const double*, int64_t, void*);               \
  template Status adam_step<T>(T*, const T*, T*, T*, const double*, int64_t, void*);          \
  template Status rmsprop_step<T>(T*, const T*, T*, T*, T*, const double*, int64_t, void*);   \
  template Status adagrad_step<T>(T*, const T*, T*, const double*, int64_t, void*);           \
  template Status adadelta_step<T>(T*, const T*, T*, T*, const double*, int64_t, void*);      \
  template Status adamax_step<T>(T*, const T*, T*, T*, const double*, int64_t, void*);        \
  template Status nadam_step<T>(T*, const T*, T*, T*, const double*, int64_t, void*);         \
  template Status radam_step<T>(T*, const T*, T*, T*, const double*, int64_t, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
