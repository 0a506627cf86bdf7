// CPU launchers of the row-structured kernels: bias + activation (with the bias gradient's
// column sum) and softmax cross-entropy.
#include <algorithm>
#include <limits>
#include <vector>

#include "common/functors.h"
#include "cpu/launchers.h"
#include "cpu/parallel.h"

namespace gg::cpu {
namespace {

// Whole rows per worker, at least `grain` elements in all.
int64_t rows_per_worker(int64_t cols, int64_t grain) {
  return std::max<int64_t>(1, grain / std::max<int64_t>(cols, 1));
}

}  // namespace

template <class T>
void bias_act_fwd(const T* x, const T* bias, T* y, int64_t rows, int64_t cols, int act) {
  with_act(act, [&](auto act_constant) {
    constexpr int ACT = decltype(act_constant)::value;
    const int64_t grain = ACT == kSigmoid || ACT == kTanh ? kGrainMath : kGrainMemory;
    parallel_for(rows, rows_per_worker(cols, grain), [=](int64_t r_begin, int64_t r_end, int) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        for (int64_t c = 0; c < cols; ++c) yr[c] = act_forward<ACT>(xr[c] + bias[c]);
      }
    });
  });
}

template <class T>
void bias_act_bwd(const T* y, const T* g, T* gx, T* gbias, int64_t rows, int64_t cols, int act) {
  // Each worker sums its rows into its own slice of `partial` (padded to keep workers off
  // each other's cache lines); the slices are then added in worker order, so the result does
  // not depend on thread timing. Row sums stay in T and the pointers are restrict, so the
  // inner loop vectorizes (a double accumulator or possible aliasing kept it scalar, 10x slower);
  // they are summed in blocks of kBlockRows rows, each block then added to the worker's total,
  // so that rounding grows with rows / kBlockRows + kBlockRows instead of with rows.
  constexpr int64_t kBlockRows = 64;
  const int64_t grain = rows_per_worker(cols, kGrainMemory);  // the slope comes from y: no exp
  const int workers = worker_count(rows, grain);
  const int64_t stride = (cols + 15) / 16 * 16;
  std::vector<T> partial(static_cast<size_t>(2 * workers * stride), T(0));
  T* partial_data = partial.data();
  with_act(act, [&](auto act_constant) {
    constexpr int ACT = decltype(act_constant)::value;
    parallel_chunks(rows, workers, [=](int64_t r_begin, int64_t r_end, int worker) {
      T* __restrict__ totals = partial_data + 2 * worker * stride;
      T* __restrict__ sums = totals + stride;
      for (int64_t block = r_begin; block < r_end; block += kBlockRows) {
        const int64_t block_end = std::min(r_end, block + kBlockRows);
        for (int64_t r = block; r < block_end; ++r) {
          const T* __restrict__ yr = y + r * cols;
          const T* __restrict__ gr = g + r * cols;
          T* __restrict__ gxr = gx + r * cols;
          for (int64_t c = 0; c < cols; ++c) {
            const T grad = act_backward<ACT>(yr[c], gr[c]);
            gxr[c] = grad;
            sums[c] += grad;
          }
        }
        for (int64_t c = 0; c < cols; ++c) {
          totals[c] += sums[c];
          sums[c] = T(0);
        }
      }
    });
  });
  for (int64_t c = 0; c < cols; ++c) {
    T total = T(0);
    for (int w = 0; w < workers; ++w) total += partial_data[2 * w * stride + c];
    gbias[c] = total;
  }
}

// reduce(map(x[0..n))) with kLanes independent accumulators, combined at the end: a row
// reduction the compiler can vectorize without reassociating (deterministic, but the
// summation order differs from a left-to-right loop).
constexpr int kLanes = 8;

template <class T, class Map, class Combine>
inline T lanes_reduce(const T* x, int64_t n, T init, Map map, Combine combine) {
  T acc[kLanes];
  for (int k = 0; k < kLanes; ++k) acc[k] = init;
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int k = 0; k < kLanes; ++k) acc[k] = combine(acc[k], map(x[c + k]));
  }
  for (; c < n; ++c) acc[0] = combine(acc[0], map(x[c]));
  T total = acc[0];
  for (int k = 1; k < kLanes; ++k) total = combine(total, acc[k]);
  return total;
}

template <class T>
void softmax_xent_fwd(const T* logits, const int64_t* targets, T* loss, T* lse,
                      int64_t* bad_target, int64_t rows, int64_t cols, Label ignore_index) {
  parallel_for(rows, rows_per_worker(cols, kGrainMath), [=](int64_t r_begin, int64_t r_end, int) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const T* xr = logits + r * cols;
      const T row_max = lanes_reduce(
          xr, cols, -std::numeric_limits<T>::infinity(), [](T v) { return v; },
          [](T a, T b) { return math_max(a, b); });
      const T sum = lanes_reduce(
          xr, cols, T(0), [row_max](T v) { return shifted_exp(v, row_max); },
          [](T a, T b) { return a + b; });
      const T row_lse = logsumexp_finish(row_max, sum);
      lse[r] = row_lse;
      const int64_t target = targets[r];
      switch (target_kind(target, cols, ignore_index)) {
        case kPickTarget: loss[r] = xent_loss(row_lse, xr[target]); break;
        case kIgnoreRow: loss[r] = T(0); break;
        default:
          loss[r] = std::numeric_limits<T>::quiet_NaN();
          __atomic_store_n(bad_target, target, __ATOMIC_RELAXED);  // workers may race here
      }
    }
  });
}

template <class T>
void softmax_xent_bwd(const T* logits, const int64_t* targets, const T* lse, const T* scale,
                      T* gx, int64_t rows, int64_t cols) {
  parallel_for(rows, rows_per_worker(cols, kGrainMath), [=](int64_t r_begin, int64_t r_end, int) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const T* xr = logits + r * cols;
      T* gr = gx + r * cols;
      const T row_lse = lse[r];
      const T row_scale = scale[r];
      const int64_t target = targets[r];
      // every column as a non-target (a loop without an index test vectorizes), then the one
      // target column again
      for (int64_t c = 0; c < cols; ++c) gr[c] = xent_backward(xr[c], row_lse, false, row_scale);
      if (target >= 0 && target < cols) {
        gr[target] = xent_backward(xr[target], row_lse, true, row_scale);
      }
    }
  });
}

#define GG_INSTANTIATE(T)                                                                      \
  template void bias_act_fwd<T>(const T*, const T*, T*, int64_t, int64_t, int);                \
  template void bias_act_bwd<T>(const T*, const T*, T*, T*, int64_t, int64_t, int);            \
  template void softmax_xent_fwd<T>(const T*, const int64_t*, T*, T*, int64_t*, int64_t,      \
                                    int64_t, Label);                                          \
  template void softmax_xent_bwd<T>(const T*, const int64_t*, const T*, const T*, T*, int64_t, \
                                    int64_t);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cpu
