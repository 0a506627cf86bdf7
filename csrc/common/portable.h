// What the element math needs from its compiler, spelled so that g++ (gpugrad._C), nvcc
// (gpugrad._cuda), NVRTC (the CuPy fallback, which has no standard headers at all) and the CUDA
// simulator in tests/ all accept it: fixed-width integers, GG_HD, and float/double math.
#pragma once

#if defined(__CUDACC_RTC__)
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef int int32_t;
typedef unsigned int uint32_t;
#else
#include <math.h>

#include <cstdint>
#endif

#if defined(__CUDACC__)
#define GG_HD __host__ __device__
#else
#define GG_HD
#endif

namespace gg {

#if !defined(__CUDA_ARCH__) && !defined(__CUDACC_RTC__)
// expf for the CPU loops, branch-free so they vectorize (libm's expf is a call per element:
// sigmoid ran 8x slower than torch). 2^n * p(r) with n = round(x log2 e), r = x - n ln 2 in
// two parts and Cephes' degree-6 polynomial: within 2 ulp of expf on [-87.3, 88.7]; 0 below
// that range (where expf is denormal or 0), inf above it, NaN stays NaN. n is rounded by
// adding and subtracting 1.5 * 2^23 (SSE2 has no vector round; a select between +-0.5 made
// g++ evaluate the whole polynomial twice).
inline float host_expf(float x) {
  const float clamped = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
  const float fn = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const int n = static_cast<int>(fn);
  float r = clamped - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  // 2^n as 2^(n/2) * 2^(n - n/2), each built as a float's exponent: n reaches 128 at the top
  // of the range (x > 127.5 ln 2), where 2^n alone is not a float
  const int32_t half = n / 2;
  const int32_t bits1 = (half + 127) << 23, bits2 = (n - half + 127) << 23;
  float scale1, scale2;
  __builtin_memcpy(&scale1, &bits1, sizeof(scale1));
  __builtin_memcpy(&scale2, &bits2, sizeof(scale2));
  float result = p * scale1 * scale2;
  result = x < -87.33654f ? 0.0f : result;             // underflow (expf gives a denormal)
  result = x > 88.72283f ? __builtin_inff() : result;  // overflow
  return x != x ? x : result;                           // NaN in, NaN out
}

// tanhf for the CPU loops, branch-free (libm's tanhf is a call per element: the tanh kernel
// ran at 2% of copy bandwidth). Below |x| = 0.625 Cephes' odd polynomial (no cancellation near
// 0), above it 1 - 2 / (exp(2|x|) + 1) with x's sign: within 2e-7 relative of tanh; +-inf give
// +-1, NaN stays NaN, -0.0 stays -0.0.
inline float host_tanhf(float x) {
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x * (1.0f + p * z);
  const float a = x < 0.0f ? -x : x;
  const float large = 1.0f - 2.0f / (host_expf(2.0f * a) + 1.0f);
  return a < 0.625f ? small : (x < 0.0f ? -large : large);
}

// erff for the CPU loops, branch-free (libm's erff is a call per element: GELU ran at 3% of copy
// bandwidth). Below |x| = 1.5, x * P(x^2); above, 1 - exp(-x^2) / |x| * Q(1 / x^2) with x's
// sign. P and Q are degree-7 and degree-9 Chebyshev fits (done in float64, then rounded to
// float) of erf(a) / a on a^2 in [0, 2.25] and of erfc(a) exp(a^2) a on 1 / a^2 in (0, 1 / 2.25];
// within 2.5e-7 of erf (absolute; relative below 1.5), -0.0 stays -0.0, NaN stays NaN.
inline float host_erff(float x) {
  const float z = x * x;
  float p = -5.743642456e-06f;
  p = p * z + 9.267608942e-05f;
  p = p * z - 8.065859195e-04f;
  p = p * z + 5.175918045e-03f;
  p = p * z - 2.683966660e-02f;
  p = p * z + 1.128306596e-01f;
  p = p * z - 3.761256270e-01f;
  p = p * z + 1.128379154e+00f;
  const float a = x < 0.0f ? -x : x;
  const float b = a < 1.5f ? 1.5f : a;  // the tail's argument, kept off 0 in the lanes it skips
  const float inv = 1.0f / b;
  const float s = inv * inv;
  float q = -1.206496459e+01f;
  q = q * s + 2.911061131e+01f;
  q = q * s - 3.114041856e+01f;
  q = q * s + 1.983844197e+01f;
  q = q * s - 8.721057615e+00f;
  q = q * s + 3.044591161e+00f;
  q = q * s - 1.022475730e+00f;
  q = q * s + 4.221027720e-01f;
  q = q * s - 2.820823971e-01f;
  q = q * s + 5.641895585e-01f;
  const float large = 1.0f - host_expf(-b * b) * q * inv;
  return a < 1.5f ? x * p : (x < 0.0f ? -large : large);
}
#endif

// One spelling for float and double that resolves to expf/exp etc. on host and device alike
// (float exp, tanh and erf on the host are the vectorizable host_* functions above; the CUDA
// simulator in tests/ runs the device's choice).
#if defined(__CUDA_ARCH__) || defined(__CUDACC_RTC__) || defined(GG_CUDA_SIM)
GG_HD inline float math_exp(float x) { return expf(x); }
GG_HD inline float math_tanh(float x) { return tanhf(x); }
GG_HD inline float math_erf(float x) { return erff(x); }
#else
GG_HD inline float math_exp(float x) { return host_expf(x); }
GG_HD inline float math_tanh(float x) { return host_tanhf(x); }
GG_HD inline float math_erf(float x) { return host_erff(x); }
#endif
GG_HD inline double math_exp(double x) { return exp(x); }
GG_HD inline double math_tanh(double x) { return tanh(x); }
GG_HD inline double math_erf(double x) { return erf(x); }
GG_HD inline float math_log(float x) { return logf(x); }
GG_HD inline double math_log(double x) { return log(x); }
GG_HD inline float math_sqrt(float x) { return sqrtf(x); }
GG_HD inline double math_sqrt(double x) { return sqrt(x); }
template <class T>
GG_HD inline T math_max(T a, T b) {
  return a > b ? a : b;
}

// A class label or cross-entropy's ignore_index: may be negative, so not a size (the bindings
// check every int64_t argument to be >= 0).
typedef long long Label;

// A compile-time int as a type (std::integral_constant, which NVRTC cannot include).
template <int V>
struct IntConstant {
  static constexpr int value = V;
};

}  // namespace gg
