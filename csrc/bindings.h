// The pybind11 side of both modules, generated from the kernel lists (common/kernel_list.h):
// define_kernels<Module>(m) exports every kernel under its name with its parameters as Python
// sees them (pointers as integer addresses), then `dtype`, then, for CUDA, `stream`. Each call
// checks the sizes and the kernel's argument rule, dispatches the dtype to the launcher template
// and runs it without the GIL. A bad argument raises ValueError naming the kernel; a failed CUDA
// launch, RuntimeError. Module supplies: kName, Half (void: no float16), kStream, and
// launcher<Kernel>(Tag<T>) through the GG_LAUNCHERS macro of each binding file.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cctype>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/functors.h"
#include "common/kernel_list.h"

namespace gg::bind {

namespace py = pybind11;

template <class T>
struct Tag {
  using type = T;
};

// What Python passes for a launcher parameter: pointers travel as integer addresses.
template <class A>
using PyArg = std::conditional_t<std::is_pointer_v<A>, uintptr_t, A>;

template <class A>
A from_py(PyArg<A> value) {
  if constexpr (std::is_pointer_v<A>) {
    return reinterpret_cast<A>(value);
  } else {
    return value;
  }
}

// A pointer parameter of the CPU module: an integer address, None (null) or a NumPy array,
// whose data pointer is read in C++ (Python's arr.__array_interface__ builds a dict per call:
// a microsecond per array, more than a small kernel takes).
struct HostAddress {
  uintptr_t value = 0;
};

template <class A>
using HostPyArg = std::conditional_t<std::is_pointer_v<A>, HostAddress, A>;

template <class A>
A from_py(HostAddress address) {
  return reinterpret_cast<A>(address.value);
}

// "(const T* x, T* y, int64_t n)" -> {"x", "y", "n"}: the last word of each parameter.
inline std::vector<std::string> parameter_names(const std::string& params) {
  std::vector<std::string> names;
  std::string word, last;
  for (char c : params) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      word += c;
      continue;
    }
    if (!word.empty()) last = word;
    word.clear();
    if ((c == ',' || c == ')') && !last.empty()) {
      names.push_back(last);
      last.clear();
    }
  }
  return names;
}

struct Kernel {
  const char* module;  // "gpugrad._C" or "gpugrad._cuda"
  const char* name;
  int check;  // GG_NO_CHECK, GG_CHECK_ACT or GG_CHECK_CLASSES
  std::vector<std::string> names;

  std::string qualname() const { return std::string(module) + "." + name; }
  [[noreturn]] void fail(const std::string& what) const {
    throw py::value_error(qualname() + ": " + what);
  }
};

// Sizes >= 0, then the kernel's own rule (kernel_list.h) over its integer arguments.
template <class... A>
void check_arguments(const Kernel& kernel, const A&... args) {
  int64_t rows = 0, cols = 0;
  size_t index = 0;
  auto visit = [&](const auto& value) {
    using V = std::decay_t<decltype(value)>;
    const std::string& name = kernel.names[index++];
    if constexpr (std::is_same_v<V, int64_t>) {
      if (value < 0) kernel.fail(name + " must be >= 0, got " + std::to_string(value));
      if (name == "rows") rows = value;
      if (name == "cols") cols = value;
    } else if constexpr (std::is_same_v<V, int>) {
      if (kernel.check == GG_CHECK_ACT && (value < 0 || value >= kNumActs)) {
        kernel.fail(name + " must be 0 (identity), 1 (relu), 2 (sigmoid) or 3 (tanh), got " +
                    std::to_string(value));
      }
    }
  };
  (visit(args), ...);
  if (kernel.check == GG_CHECK_CLASSES && rows > 0 && cols == 0) kernel.fail("cols must be >= 1");
}

// Calls f(Tag<T>{}) for dtype "float32" -> float, "float64" -> double and, when Half is not void
// (the module and kernel take float16), "float16" -> Half; any other dtype raises ValueError
// naming the kernel. Only the launchers that exist are instantiated.
template <class Half, class F>
auto dispatch_dtype(const Kernel& kernel, const std::string& dtype, F&& f) {
  if (dtype == "float32") return f(Tag<float>{});
  if (dtype == "float64") return f(Tag<double>{});
  if constexpr (!std::is_void_v<Half>) {
    if (dtype == "float16") return f(Tag<Half>{});
  }
  kernel.fail("unsupported dtype '" + dtype + "'");
}

// Calls launcher `fn` with Python's arguments converted to its own parameter types.
template <class R, class... B, class... P>
R invoke(R (*fn)(B...), P... args) {
  return fn(from_py<B>(args)...);
}

// The names of a kernel's Python arguments, kept alive for pybind11's signatures.
inline const std::vector<std::string>& keep(std::vector<std::string> names) {
  static std::deque<std::vector<std::string>> kept;
  return kept.emplace_back(std::move(names));
}

template <size_t... I>
auto keyword_args(const std::vector<std::string>& names, std::index_sequence<I...>) {
  return std::make_tuple(py::arg(names[I].c_str())...);
}

// Exports one kernel: Signature = void (*)(its parameters with T = float), from which Python's
// argument types come; get(Tag<T>) is the launcher for element type T; kHalf: it has float16.
template <class Module, bool kHalf, class Get, class... A>
void define(py::module_& m, Kernel kernel, const char* doc, Get get, void (*)(A...)) {
  using Half = std::conditional_t<kHalf, typename Module::Half, void>;
  const auto& names = keep(kernel.names);
  auto args = keyword_args(names, std::index_sequence_for<A...>{});
  if constexpr (Module::kStream) {
    auto function = [kernel, get](PyArg<A>... args, const std::string& dtype, uintptr_t stream) {
      check_arguments(kernel, args...);
      const char* error = dispatch_dtype<Half>(kernel, dtype, [&](auto tag) {
        py::gil_scoped_release nogil;
        return invoke(get(tag), args..., stream);
      });
      if (error != nullptr) throw std::runtime_error(kernel.qualname() + ": " + error);
    };
    std::apply([&](auto... a) { m.def(kernel.name, function, a..., py::arg("dtype"),
                                      py::arg("stream"), doc); }, args);
  } else {
    auto function = [kernel, get](HostPyArg<A>... args, const std::string& dtype) {
      check_arguments(kernel, args...);
      dispatch_dtype<Half>(kernel, dtype, [&](auto tag) {
        py::gil_scoped_release nogil;
        invoke(get(tag), args...);
      });
    };
    std::apply([&](auto... a) { m.def(kernel.name, function, a..., py::arg("dtype"), doc); },
               args);
  }
}

// Every kernel of the lists, each name appended to `names` (for kernel_names()). Used inside a
// PYBIND11_MODULE body that has `m`, `names` and a struct Module, with GG_NS naming the
// launchers' namespace (gg::cpu or gg::cuda: map1<F, T>, map2<F, T>, one template per kernel).
#define GG_STRINGIZE(...) #__VA_ARGS__
#define GG_STRING(x) GG_STRINGIZE(x)
#define GG_DEFINE_MAP(name, Functor, inputs, doc)                                             \
  {                                                                                           \
    using T = float;                                                                          \
    ::gg::bind::define<Module, true>(                                                         \
        m,                                                                                    \
        {Module::kName, #name, GG_NO_CHECK,                                                   \
         ::gg::bind::parameter_names(GG_STRING(GG_MAP##inputs##_PARAMS))},                    \
        doc, [](auto tag) { return &GG_NS::map##inputs<::gg::Functor, typename decltype(tag)::type>; }, \
        static_cast<void (*)(GG_PARAMS(GG_MAP##inputs##_PARAMS))>(nullptr));                  \
    names.push_back(#name);                                                                   \
  }
#define GG_DEFINE_KERNEL(name, half, check, params, doc)                                      \
  {                                                                                           \
    using T = float;                                                                          \
    using ::gg::Label;                                                                        \
    ::gg::bind::define<Module, half != 0>(                                                    \
        m, {Module::kName, #name, check, ::gg::bind::parameter_names(#params)},               \
        doc, [](auto tag) { return &GG_NS::name<typename decltype(tag)::type>; },             \
        static_cast<void (*)(GG_PARAMS(params))>(nullptr));                                   \
    names.push_back(#name);                                                                   \
  }

}  // namespace gg::bind

namespace pybind11::detail {

template <>
struct type_caster<gg::bind::HostAddress> {
  PYBIND11_TYPE_CASTER(gg::bind::HostAddress, const_name("int | numpy.ndarray | None"));

  bool load(handle source, bool convert) {
    if (source.is_none()) {
      value.value = 0;
      return true;
    }
    if (isinstance<array>(source)) {
      value.value = reinterpret_cast<uintptr_t>(array_proxy(source.ptr())->data);
      return true;
    }
    make_caster<uintptr_t> address;  // an integer address, as the CUDA module takes
    if (!address.load(source, convert)) return false;
    value.value = cast_op<uintptr_t>(address);
    return true;
  }

  static handle cast(gg::bind::HostAddress address, return_value_policy, handle) {
    return PyLong_FromVoidPtr(reinterpret_cast<void*>(address.value));
  }
};

}  // namespace pybind11::detail
