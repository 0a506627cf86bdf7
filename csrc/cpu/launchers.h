// Host launchers of the CPU kernels (module gpugrad._C), declared from the kernel lists.
// Pointers address C-contiguous arrays; T is float or double. The bindings have checked the
// sizes (non-negative) and the other argument rules of common/kernel_list.h.
#pragma once

#include <cstdint>

#include "common/kernel_list.h"

namespace gg::cpu {

// The elementwise maps of GG_MAP_KERNELS: F is the functor.
template <class F, class T>
void map1(GG_PARAMS(GG_MAP1_PARAMS));
template <class F, class T>
void map2(GG_PARAMS(GG_MAP2_PARAMS));

#define GG_DECLARE(name, half, check, params, doc) \
  template <class T>                               \
  void name(GG_PARAMS(params));
GG_KERNELS(GG_DECLARE)
#undef GG_DECLARE

}  // namespace gg::cpu
