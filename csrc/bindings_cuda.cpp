// pybind11 module gpugrad._cuda: the CUDA kernels over device arrays. Same functions and
// arguments as gpugrad._C plus a final `stream` (a cudaStream_t as int, e.g.
// cupy.cuda.get_current_stream().ptr). Pointers are device addresses (cupy: arr.data.ptr) of
// C-contiguous arrays. Launches are asynchronous; a failed launch raises RuntimeError.
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "bindings_common.h"
#include "cuda/launchers.h"

namespace py = pybind11;
using namespace pybind11::literals;
using gg::bind::address;
using gg::bind::check_size;
using gg::bind::Kernel;

namespace {

constexpr const char* kModule = "gpugrad._cuda";

// Dispatches dtype (float32 / float64, plus float16 when HalfT is gg::cuda::Half), runs
// launch(Tag<T>) without the GIL, and turns a CUDA error status into RuntimeError.
template <class HalfT = void, class F>
void run(const char* name, const std::string& dtype, F&& launch) {
  const Kernel kernel{kModule, name};
  gg::cuda::Status status = nullptr;
  gg::bind::dispatch_dtype<HalfT>(kernel, dtype, [&](auto tag) {
    py::gil_scoped_release nogil;
    status = launch(tag);
  });
  if (status != nullptr) throw std::runtime_error(kernel.qualname() + ": " + status);
}

void* as_stream(uintptr_t stream) { return reinterpret_cast<void*>(stream); }

#define GG_T typename decltype(tag)::type

}  // namespace

#ifndef GG_CUDA_MODULE
#define GG_CUDA_MODULE _cuda  // tests/cuda_sim builds these bindings as _cudasim
#endif

PYBIND11_MODULE(GG_CUDA_MODULE, m) {
  m.doc() = "gpugrad CUDA kernels (raw-pointer API on a caller-given stream)";
  namespace cuda = gg::cuda;
  using Half = gg::cuda::Half;

  m.def(
      "sigmoid_fwd",
      [](uintptr_t x, uintptr_t y, int64_t n, const std::string& dtype, uintptr_t stream) {
        check_size({kModule, "sigmoid_fwd"}, "n", n);
        run<Half>("sigmoid_fwd", dtype, [&](auto tag) {
          return cuda::sigmoid_fwd(address<const GG_T>(x), address<GG_T>(y), n, as_stream(stream));
        });
      },
      "x"_a, "y"_a, "n"_a, "dtype"_a, "stream"_a, "y = 1 / (1 + exp(-x)), elementwise, stable");

  m.def(
      "sigmoid_bwd",
      [](uintptr_t y, uintptr_t g, uintptr_t gx, int64_t n, const std::string& dtype,
         uintptr_t stream) {
        check_size({kModule, "sigmoid_bwd"}, "n", n);
        run<Half>("sigmoid_bwd", dtype, [&](auto tag) {
          return cuda::sigmoid_bwd(address<const GG_T>(y), address<const GG_T>(g),
                                   address<GG_T>(gx), n, as_stream(stream));
        });
      },
      "y"_a, "g"_a, "gx"_a, "n"_a, "dtype"_a, "stream"_a, "gx = g * y * (1 - y), from the output");

  m.def(
      "tanh_fwd",
      [](uintptr_t x, uintptr_t y, int64_t n, const std::string& dtype, uintptr_t stream) {
        check_size({kModule, "tanh_fwd"}, "n", n);
        run<Half>("tanh_fwd", dtype, [&](auto tag) {
          return cuda::tanh_fwd(address<const GG_T>(x), address<GG_T>(y), n, as_stream(stream));
        });
      },
      "x"_a, "y"_a, "n"_a, "dtype"_a, "stream"_a, "y = tanh(x), elementwise");

  m.def(
      "tanh_bwd",
      [](uintptr_t y, uintptr_t g, uintptr_t gx, int64_t n, const std::string& dtype,
         uintptr_t stream) {
        check_size({kModule, "tanh_bwd"}, "n", n);
        run<Half>("tanh_bwd", dtype, [&](auto tag) {
          return cuda::tanh_bwd(address<const GG_T>(y), address<const GG_T>(g), address<GG_T>(gx),
                                n, as_stream(stream));
        });
      },
      "y"_a, "g"_a, "gx"_a, "n"_a, "dtype"_a, "stream"_a, "gx = g * (1 - y^2), from the output");

  m.def(
      "relu_fwd",
      [](uintptr_t x, uintptr_t y, uintptr_t mask, int64_t n, const std::string& dtype,
         uintptr_t stream) {
        check_size({kModule, "relu_fwd"}, "n", n);
        run<Half>("relu_fwd", dtype, [&](auto tag) {
          return cuda::relu_fwd(address<const GG_T>(x), address<GG_T>(y), address<uint32_t>(mask),
                                n, as_stream(stream));
        });
      },
      "x"_a, "y"_a, "mask"_a, "n"_a, "dtype"_a, "stream"_a,
      "y = max(x, 0); mask: ceil(n/32) uint32 words, bit j of word w = x[32w+j] > 0");

  m.def(
      "relu_bwd",
      [](uintptr_t g, uintptr_t mask, uintptr_t gx, int64_t n, const std::string& dtype,
         uintptr_t stream) {
        check_size({kModule, "relu_bwd"}, "n", n);
        run<Half>("relu_bwd", dtype, [&](auto tag) {
          return cuda::relu_bwd(address<const GG_T>(g), address<const uint32_t>(mask),
                                address<GG_T>(gx), n, as_stream(stream));
        });
      },
      "g"_a, "mask"_a, "gx"_a, "n"_a, "dtype"_a, "stream"_a, "gx = mask bit ? g : 0");

  m.def(
      "bias_act_fwd",
      [](uintptr_t x, uintptr_t bias, uintptr_t y, int64_t rows, int64_t cols, int act,
         const std::string& dtype, uintptr_t stream) {
        const Kernel k{kModule, "bias_act_fwd"};
        check_size(k, "rows", rows);
        check_size(k, "cols", cols);
        gg::bind::check_act(k, act);
        run("bias_act_fwd", dtype, [&](auto tag) {
          return cuda::bias_act_fwd(address<const GG_T>(x), address<const GG_T>(bias),
                                    address<GG_T>(y), rows, cols, act, as_stream(stream));
        });
      },
      "x"_a, "bias"_a, "y"_a, "rows"_a, "cols"_a, "act"_a, "dtype"_a, "stream"_a,
      "y[r, c] = act(x[r, c] + bias[c]); act 0 identity, 1 relu, 2 sigmoid, 3 tanh");

  m.def(
      "bias_act_bwd",
      [](uintptr_t y, uintptr_t g, uintptr_t gx, uintptr_t gbias, int64_t rows, int64_t cols,
         int act, const std::string& dtype, uintptr_t stream) {
        const Kernel k{kModule, "bias_act_bwd"};
        check_size(k, "rows", rows);
        check_size(k, "cols", cols);
        gg::bind::check_act(k, act);
        run("bias_act_bwd", dtype, [&](auto tag) {
          return cuda::bias_act_bwd(address<const GG_T>(y), address<const GG_T>(g),
                                    address<GG_T>(gx), address<GG_T>(gbias), rows, cols, act,
                                    as_stream(stream));
        });
      },
      "y"_a, "g"_a, "gx"_a, "gbias"_a, "rows"_a, "cols"_a, "act"_a, "dtype"_a, "stream"_a,
      "gx = g * act'(y) from the output y; gbias[c] = sum_r gx[r, c] (overwritten)");

  m.def(
      "softmax_xent_fwd",
      [](uintptr_t logits, uintptr_t targets, uintptr_t loss, uintptr_t lse, int64_t rows,
         int64_t cols, const std::string& dtype, uintptr_t stream) {
        gg::bind::check_classes({kModule, "softmax_xent_fwd"}, rows, cols);
        run("softmax_xent_fwd", dtype, [&](auto tag) {
          return cuda::softmax_xent_fwd(address<const GG_T>(logits),
                                        address<const int64_t>(targets), address<GG_T>(loss),
                                        address<GG_T>(lse), rows, cols, as_stream(stream));
        });
      },
      "logits"_a, "targets"_a, "loss"_a, "lse"_a, "rows"_a, "cols"_a, "dtype"_a, "stream"_a,
      "lse[r] = logsumexp(logits[r]); loss[r] = lse[r] - logits[r, targets[r]]");

  m.def(
      "softmax_xent_bwd",
      [](uintptr_t logits, uintptr_t targets, uintptr_t lse, uintptr_t scale, uintptr_t gx,
         int64_t rows, int64_t cols, const std::string& dtype, uintptr_t stream) {
        gg::bind::check_classes({kModule, "softmax_xent_bwd"}, rows, cols);
        run("softmax_xent_bwd", dtype, [&](auto tag) {
          return cuda::softmax_xent_bwd(address<const GG_T>(logits),
                                        address<const int64_t>(targets), address<const GG_T>(lse),
                                        address<const GG_T>(scale), address<GG_T>(gx), rows, cols,
                                        as_stream(stream));
        });
      },
      "logits"_a, "targets"_a, "lse"_a, "scale"_a, "gx"_a, "rows"_a, "cols"_a, "dtype"_a,
      "stream"_a, "gx[r, c] = (softmax(logits)[r, c] - (c == targets[r])) * scale[r]");

  m.def(
      "sgd_step",
      [](uintptr_t p, uintptr_t g, uintptr_t buf, int64_t n, double lr, double momentum,
         double dampening, double weight_decay, bool nesterov, bool first_step,
         const std::string& dtype, uintptr_t stream) {
        check_size({kModule, "sgd_step"}, "n", n);
        run("sgd_step", dtype, [&](auto tag) {
          return cuda::sgd_step(address<GG_T>(p), address<const GG_T>(g), address<GG_T>(buf), n,
                                lr, momentum, dampening, weight_decay, nesterov, first_step,
                                as_stream(stream));
        });
      },
      "p"_a, "g"_a, "buf"_a, "n"_a, "lr"_a, "momentum"_a, "dampening"_a, "weight_decay"_a,
      "nesterov"_a, "first_step"_a, "dtype"_a, "stream"_a,
      "in-place torch.optim.SGD step on p (and momentum buffer buf, unused if momentum == 0)");

  m.def(
      "adam_step",
      [](uintptr_t p, uintptr_t g, uintptr_t m_buf, uintptr_t v_buf, int64_t n, double lr,
         double beta1, double beta2, double eps, double weight_decay, double bias_correction1,
         double bias_correction2, bool decoupled, const std::string& dtype, uintptr_t stream) {
        check_size({kModule, "adam_step"}, "n", n);
        run("adam_step", dtype, [&](auto tag) {
          return cuda::adam_step(address<GG_T>(p), address<const GG_T>(g), address<GG_T>(m_buf),
                                 address<GG_T>(v_buf), n, lr, beta1, beta2, eps, weight_decay,
                                 bias_correction1, bias_correction2, decoupled,
                                 as_stream(stream));
        });
      },
      "p"_a, "g"_a, "m"_a, "v"_a, "n"_a, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a,
      "weight_decay"_a, "bias_correction1"_a, "bias_correction2"_a, "decoupled"_a, "dtype"_a,
      "stream"_a, "in-place torch.optim.Adam (decoupled=False) / AdamW (decoupled=True) step");

  m.def(
      "kernel_names", []() { return gg::bind::kernel_names(); },
      "names of the kernel functions this module exports");

  m.def(
      "device_count", []() { return gg::cuda::device_count(); },
      "number of CUDA devices (cudaGetDeviceCount), 0 when there is no driver or GPU");
}
