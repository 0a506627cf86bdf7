// Shared by the two pybind11 modules: dtype-string dispatch to template instantiations,
// argument checks that raise ValueError naming the kernel, and raw-address casts.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace gg::bind {

namespace py = pybind11;

struct Kernel {
  const char* module;  // "gpugrad._C" or "gpugrad._cuda"
  const char* name;    // "sigmoid_fwd", ...
  std::string qualname() const { return std::string(module) + "." + name; }
};

template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) for dtype "float32" -> float, "float64" -> double and, when HalfT is not
// void, "float16" -> HalfT; any other dtype raises ValueError naming the kernel.
template <class HalfT, class F>
void dispatch_dtype(const Kernel& kernel, const std::string& dtype, F&& f) {
  if (dtype == "float32") return f(Tag<float>{});
  if (dtype == "float64") return f(Tag<double>{});
  if constexpr (!std::is_void_v<HalfT>) {
    if (dtype == "float16") return f(Tag<HalfT>{});
  }
  throw py::value_error(kernel.qualname() + ": unsupported dtype '" + dtype + "'");
}

inline void check_size(const Kernel& kernel, const char* what, int64_t value) {
  if (value < 0) {
    throw py::value_error(kernel.qualname() + ": " + what + " must be >= 0, got " +
                          std::to_string(value));
  }
}

inline void check_act(const Kernel& kernel, int act) {
  if (act < 0 || act > 3) {
    throw py::value_error(kernel.qualname() + ": act must be 0 (identity), 1 (relu), "
                          "2 (sigmoid) or 3 (tanh), got " + std::to_string(act));
  }
}

// softmax cross-entropy needs at least one class per row to have a valid target
inline void check_classes(const Kernel& kernel, int64_t rows, int64_t cols) {
  check_size(kernel, "rows", rows);
  check_size(kernel, "cols", cols);
  if (rows > 0 && cols == 0) throw py::value_error(kernel.qualname() + ": cols must be >= 1");
}

// The kernel functions both modules export, under the same names.
inline std::vector<std::string> kernel_names() {
  return {"sigmoid_fwd",      "sigmoid_bwd",      "tanh_fwd",     "tanh_bwd",
          "relu_fwd",         "relu_bwd",         "bias_act_fwd", "bias_act_bwd",
          "softmax_xent_fwd", "softmax_xent_bwd", "sgd_step",     "adam_step"};
}

template <class T>
T* address(uintptr_t value) {
  return reinterpret_cast<T*>(value);
}

}  // namespace gg::bind
