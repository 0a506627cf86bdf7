// Launchers of the CUDA kernels (module gpugrad._cuda), declared from the kernel lists and
// callable from plain C++: the binding file is compiled by g++, so nothing here needs CUDA or
// Python headers. Pointers are device pointers to C-contiguous arrays; `stream` is a
// cudaStream_t passed as void*. Each launcher returns nullptr on success, else the CUDA error
// string. None of them allocates memory or synchronizes.
#pragma once

#include <cstdint>

#include "common/kernel_list.h"

namespace gg::cuda {

// Storage tag for IEEE binary16 arrays; the kernels read them as half_t and compute in float.
struct Half;

using Status = const char*;

// The elementwise maps of GG_MAP_KERNELS (F: the functor); T: float, double or Half.
template <class F, class T>
Status map1(GG_PARAMS(GG_MAP1_PARAMS), void* stream);
template <class F, class T>
Status map2(GG_PARAMS(GG_MAP2_PARAMS), void* stream);

// T: float, double, and Half where the list says half = 1.
#define GG_DECLARE(name, half, check, params, doc) \
  template <class T>                               \
  Status name(GG_PARAMS(params), void* stream);
GG_KERNELS(GG_DECLARE)
#undef GG_DECLARE

// cudaGetDeviceCount, or 0 when there is no driver or no GPU.
int device_count();

}  // namespace gg::cuda
