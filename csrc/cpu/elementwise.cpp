// CPU launchers of the elementwise kernels: every map of GG_MAP_KERNELS and relu (with its bit
// mask).
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/functors.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

namespace gg::cpu {
namespace {

// A map's grain: the two backward maps from an output are a pass over memory; the others
// evaluate exp or erf per element.
template <class F>
constexpr int64_t map_grain() {
  return std::is_same_v<F, SigmoidBwd> || std::is_same_v<F, TanhBwd> ? kGrainMemory : kGrainMath;
}

// relu_backward(bit, g) without a branch: AND the bits of g with all-ones or all-zeros (a
// data-dependent branch per element mispredicts half the time on real data).
template <class T>
inline T keep_if(uint32_t bit, T g) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U bits;
  std::memcpy(&bits, &g, sizeof(T));
  bits &= U(0) - U(bit);
  std::memcpy(&g, &bits, sizeof(T));
  return g;
}

// The 8 lanes of one mask byte as all-ones / all-zeros bit patterns: a table lookup per byte
// replaces 8 variable shifts, so the select below vectorizes with plain SSE2.
template <class U>
struct ByteLanes {
  U lanes[256][8];
  ByteLanes() {
    for (int byte = 0; byte < 256; ++byte)
      for (int k = 0; k < 8; ++k) lanes[byte][k] = ((byte >> k) & 1) ? ~U(0) : U(0);
  }
};

template <class T>
inline void keep_byte(uint32_t byte, const T* g, T* gx) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static const ByteLanes<U> table;
  const U* lanes = table.lanes[byte];
  U bits[8];
  std::memcpy(bits, g, sizeof(bits));
  for (int k = 0; k < 8; ++k) bits[k] &= lanes[k];
  std::memcpy(gx, bits, sizeof(bits));
}

// One mask word: y = relu(x) over `len` elements (LEN when it is a compile-time 32, so the
// loop unrolls without branches: signs of real data are random, and a branch per element
// mispredicts half the time), bit j = (x[j] > 0).
template <int LEN, class T>
inline uint32_t relu_word(const T* x, T* y, int64_t len) {
  const int64_t count = LEN ? LEN : len;
  for (int64_t j = 0; j < count; ++j) y[j] = relu(x[j]);  // two loops: each vectorizes
  uint32_t bits = 0;
  for (int64_t j = 0; j < count; ++j) bits |= uint32_t(relu_active(x[j])) << j;
  return bits;
}

}  // namespace

template <class F, class T>
void map1(const T* x, T* y, int64_t n) {
  parallel_for(n, map_grain<F>(), [=](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) y[i] = F{}(x[i]);
  });
}

template <class F, class T>
void map2(const T* a, const T* b, T* out, int64_t n) {
  parallel_for(n, map_grain<F>(), [=](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) out[i] = F{}(a[i], b[i]);
  });
}

template <class T>
void relu_fwd(const T* x, T* y, uint32_t* mask, int64_t n) {
  const int64_t words = (n + 31) / 32;
  // workers split whole words, so each mask word is written by exactly one of them
  parallel_for(words, kGrainMemory / 32, [=](int64_t w_begin, int64_t w_end, int) {
    for (int64_t w = w_begin; w < w_end; ++w) {
      const int64_t base = w * 32;
      const int64_t len = std::min<int64_t>(32, n - base);
      mask[w] = len == 32 ? relu_word<32>(x + base, y + base, 32) : relu_word<0>(x + base, y + base, len);
    }
  });
}

template <class T>
void relu_bwd(const T* g, const uint32_t* mask, T* gx, int64_t n) {
  const int64_t words = (n + 31) / 32;
  parallel_for(words, kGrainMemory / 32, [=](int64_t w_begin, int64_t w_end, int) {
    for (int64_t w = w_begin; w < w_end; ++w) {
      const int64_t base = w * 32;
      const int64_t len = std::min<int64_t>(32, n - base);
      const uint32_t word = mask[w];
      if (len == 32) {
#if defined(__AVX2__)
        // AVX2 shifts every lane by its own count (vpsrlvd): bit j selects lane j directly (the
        // byte table below, which SSE2 needs, ran at a fifth of the bandwidth in this build)
        for (int j = 0; j < 32; ++j) gx[base + j] = keep_if((word >> j) & 1u, g[base + j]);
#else
        for (int b = 0; b < 4; ++b) keep_byte((word >> (8 * b)) & 0xffu, g + base + 8 * b, gx + base + 8 * b);
#endif
      } else {
        for (int64_t j = 0; j < len; ++j) gx[base + j] = keep_if((word >> j) & 1u, g[base + j]);
      }
    }
  });
}

template <class T>
void dropout_scale(T* out, const double* rng, int64_t n) {
  parallel_for(n, kGrainMath, [=](int64_t begin, int64_t end, int) {  // a hash per element
    for (int64_t i = begin; i < end; ++i) out[i] = dropout_scale_at<T>(rng, i);
  });
}

#define GG_MAP_ARGS1(T) const T*, T*, int64_t
#define GG_MAP_ARGS2(T) const T*, const T*, T*, int64_t
#define GG_INSTANTIATE_MAP(name, F, inputs, doc)                      \
  template void map##inputs<F, float>(GG_MAP_ARGS##inputs(float));   \
  template void map##inputs<F, double>(GG_MAP_ARGS##inputs(double));
GG_MAP_KERNELS(GG_INSTANTIATE_MAP)
#undef GG_INSTANTIATE_MAP

#define GG_INSTANTIATE(T)                                        \
  template void relu_fwd<T>(const T*, T*, uint32_t*, int64_t);   \
  template void relu_bwd<T>(const T*, const uint32_t*, T*, int64_t);    \
  template void dropout_scale<T>(T*, const double*, int64_t);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cpu
