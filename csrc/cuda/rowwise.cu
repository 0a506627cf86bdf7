// CUDA kernels of the row-structured ops on row-major (rows x cols) matrices: bias +
// activation (forward; backward with the bias gradient's column sum) and softmax
// cross-entropy (forward: one warp or one block per row; backward: elementwise).
#include <algorithm>

#include "cuda/common.cuh"

namespace gg::cuda {
namespace {

constexpr int kIlp = 2;  // packs loaded before any is stored

// y[r, c] = act(x[r, c] + bias[c]) over the flat matrix; W > 1 only when cols % W == 0, so a
// pack never straddles two rows and there is no tail.
template <int ACT, int W, class S>
__global__ void __launch_bounds__(kThreads)
    bias_act_fwd_kernel(const S* x, const S* bias, S* y, int64_t total, int64_t cols) {
  using P = Pack<S, W>;
  const int64_t packs = total / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t base = tid; base < packs; base += stride * kIlp) {
    P in_x[kIlp];
    P in_bias[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        in_x[k] = load_pack<S, W>(x, i * W);
        in_bias[k] = load_pack<S, W>(bias, (i * W) % cols);
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        P out;
#pragma unroll
        for (int j = 0; j < W; ++j) out.v[j] = act_forward<ACT>(in_x[k].v[j] + in_bias[k].v[j]);
        store_pack<S, W>(y, i * W, out);
      }
    }
  }
}

// Backward: blocks of 32 columns x 8 row lanes. Lane (tx, ty) walks rows ty, ty + 8 * grid.y,
// ... of column tx, writing gx and summing it; the 8 row lanes are then added in a fixed order.
// With one block row (grid.y == 1) that sum is gbias; otherwise each block row adds its share
// into gbias, zeroed beforehand, with atomicAdd.
constexpr int kColTile = 32;
constexpr int kRowLanes = kThreads / kColTile;

template <int ACT, class S>
__global__ void __launch_bounds__(kThreads)
    bias_act_bwd_kernel(const S* y, const S* g, S* gx, S* gbias, int64_t rows, int64_t cols,
                        bool accumulate) {
  __shared__ S partial[kRowLanes][kColTile];
  const int64_t col = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  S sum = S(0);
  if (col < cols) {
    const int64_t row_step = int64_t(gridDim.y) * kRowLanes;
#pragma unroll 4
    for (int64_t r = int64_t(blockIdx.y) * kRowLanes + threadIdx.y; r < rows; r += row_step) {
      const int64_t i = r * cols + col;
      const S grad = act_backward<ACT>(y[i], g[i]);
      gx[i] = grad;
      sum += grad;
    }
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
#pragma unroll
    for (int lane_row = 1; lane_row < kRowLanes; ++lane_row) sum += partial[lane_row][threadIdx.x];
    if (accumulate) {
      atomicAdd(gbias + col, sum);
    } else {
      gbias[col] = sum;
    }
  }
}

// Sum or max over the threads working on one row: a warp (kWarpPerRow) or the whole block.
template <bool kWarpPerRow, bool kMax, class S>
__device__ __forceinline__ S row_reduce(S v, S* scratch) {
  v = kMax ? warp_max(v) : warp_sum(v);
  if constexpr (kWarpPerRow) {
    return v;
  } else {
    const int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) scratch[warp] = v;
    __syncthreads();
    S total = scratch[0];
    for (int w = 1; w < int(blockDim.x >> 5); ++w) {
      total = kMax ? math_max(total, scratch[w]) : total + scratch[w];
    }
    __syncthreads();  // scratch is reused by the next reduction
    return total;
  }
}

// lse[r] = max + log(sum exp(x - max)); loss[r] = lse[r] - x[r, t[r]]. Rows advance uniformly
// per warp (or per block), so the shuffles and barriers in row_reduce see every thread.
template <bool kWarpPerRow, class S>
__global__ void __launch_bounds__(kThreads)
    softmax_xent_fwd_kernel(const S* logits, const int64_t* targets, S* loss, S* lse,
                            int64_t rows, int64_t cols) {
  __shared__ S scratch[kThreads / 32];
  int64_t row;
  int64_t row_step;
  int worker;
  int workers;
  if constexpr (kWarpPerRow) {
    row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    row_step = (int64_t(gridDim.x) * blockDim.x) >> 5;
    worker = threadIdx.x & 31;
    workers = 32;
  } else {
    row = blockIdx.x;
    row_step = gridDim.x;
    worker = threadIdx.x;
    workers = blockDim.x;
  }
  for (; row < rows; row += row_step) {
    const S* xr = logits + row * cols;
    S row_max = S(-INFINITY);
    for (int64_t c = worker; c < cols; c += workers) row_max = math_max(row_max, xr[c]);
    row_max = row_reduce<kWarpPerRow, true>(row_max, scratch);
    S sum = S(0);
    for (int64_t c = worker; c < cols; c += workers) sum += shifted_exp(xr[c], row_max);
    sum = row_reduce<kWarpPerRow, false>(sum, scratch);
    if (worker == 0) {
      const S row_lse = logsumexp_finish(row_max, sum);
      lse[row] = row_lse;
      loss[row] = xent_loss(row_lse, xr[targets[row]]);
    }
  }
}

// gx[r, c] = (exp(x[r, c] - lse[r]) - (c == t[r])) * scale[r]; flat like bias_act_fwd.
template <int W, class S>
__global__ void __launch_bounds__(kThreads)
    softmax_xent_bwd_kernel(const S* logits, const int64_t* targets, const S* lse,
                            const S* scale, S* gx, int64_t total, int64_t cols) {
  using P = Pack<S, W>;
  const int64_t packs = total / W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t base = tid; base < packs; base += stride * kIlp) {
    P in[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) in[k] = load_pack<S, W>(logits, i * W);
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + k * stride;
      if (i < packs) {
        const int64_t row = (i * W) / cols;
        const int64_t col = (i * W) - row * cols;
        const S row_lse = lse[row];
        const S row_scale = scale[row];
        const int64_t target = targets[row];
        P out;
#pragma unroll
        for (int j = 0; j < W; ++j) {
          out.v[j] = xent_backward(in[k].v[j], row_lse, col + j == target, row_scale);
        }
        store_pack<S, W>(gx, i * W, out);
      }
    }
  }
}

}  // namespace

template <class T>
Status bias_act_fwd(const T* x, const T* bias, T* y, int64_t rows, int64_t cols, int act,
                    void* stream) {
  const int64_t total = rows * cols;
  if (total == 0) return nullptr;
  constexpr int W = kVecWidth<T>;
  const bool vectorized = cols % W == 0 && aligned16(x, bias, y);
  with_act(act, [&](auto act_constant) {
    constexpr int ACT = decltype(act_constant)::value;
    if (vectorized) {
      bias_act_fwd_kernel<ACT, W>
          <<<grid_for(ceil_div(total / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
              x, bias, y, total, cols);
    } else {
      bias_act_fwd_kernel<ACT, 1>
          <<<grid_for(ceil_div(total, kIlp)), kThreads, 0, as_stream(stream)>>>(x, bias, y,
                                                                                total, cols);
    }
  });
  return launch_status();
}

template <class T>
Status bias_act_bwd(const T* y, const T* g, T* gx, T* gbias, int64_t rows, int64_t cols, int act,
                    void* stream) {
  if (cols == 0) return nullptr;
  const int64_t col_tiles = ceil_div(cols, kColTile);
  // split the rows over more block rows only while the GPU has room and each lane still gets
  // a few rows; grid.y is capped by CUDA at 65535
  int64_t row_blocks = resident_block_limit() / col_tiles;
  row_blocks = std::min<int64_t>(row_blocks, ceil_div(rows, int64_t(kRowLanes) * 4));
  row_blocks = std::max<int64_t>(1, std::min<int64_t>(row_blocks, 65535));
  const bool accumulate = row_blocks > 1;
  if (accumulate) {
    const Status zeroed =
        status_of(cudaMemsetAsync(gbias, 0, size_t(cols) * sizeof(T), as_stream(stream)));
    if (zeroed != nullptr) return zeroed;
  }
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_blocks));
  const dim3 block(kColTile, kRowLanes);
  with_act(act, [&](auto act_constant) {
    constexpr int ACT = decltype(act_constant)::value;
    bias_act_bwd_kernel<ACT><<<grid, block, 0, as_stream(stream)>>>(y, g, gx, gbias, rows, cols,
                                                                    accumulate);
  });
  return launch_status();
}

template <class T>
Status softmax_xent_fwd(const T* logits, const int64_t* targets, T* loss, T* lse, int64_t rows,
                        int64_t cols, void* stream) {
  if (rows == 0) return nullptr;
  constexpr int64_t kWarpMaxCols = 1024;  // wider rows get a whole block each
  if (cols <= kWarpMaxCols) {
    const int64_t blocks = std::min<int64_t>(ceil_div(rows, kThreads / 32), resident_block_limit());
    softmax_xent_fwd_kernel<true><<<unsigned(blocks), kThreads, 0, as_stream(stream)>>>(
        logits, targets, loss, lse, rows, cols);
  } else {
    const int64_t blocks = std::min<int64_t>(rows, resident_block_limit());
    softmax_xent_fwd_kernel<false><<<unsigned(blocks), kThreads, 0, as_stream(stream)>>>(
        logits, targets, loss, lse, rows, cols);
  }
  return launch_status();
}

template <class T>
Status softmax_xent_bwd(const T* logits, const int64_t* targets, const T* lse, const T* scale,
                        T* gx, int64_t rows, int64_t cols, void* stream) {
  const int64_t total = rows * cols;
  if (total == 0) return nullptr;
  constexpr int W = kVecWidth<T>;
  if (cols % W == 0 && aligned16(logits, gx)) {
    softmax_xent_bwd_kernel<W>
        <<<grid_for(ceil_div(total / W, kIlp)), kThreads, 0, as_stream(stream)>>>(
            logits, targets, lse, scale, gx, total, cols);
  } else {
    softmax_xent_bwd_kernel<1><<<grid_for(ceil_div(total, kIlp)), kThreads, 0,
                                 as_stream(stream)>>>(logits, targets, lse, scale, gx, total,
                                                      cols);
  }
  return launch_status();
}

#define GG_INSTANTIATE(T)                                                                     \
  template Status bias_act_fwd<T>(const T*, const T*, T*, int64_t, int64_t, int, void*);      \
  template Status bias_act_bwd<T>(const T*, const T*, T*, T*, int64_t, int64_t, int, void*);  \
  template Status softmax_xent_fwd<T>(const T*, const int64_t*, T*, T*, int64_t, int64_t,     \
                                      void*);                                                 \
  template Status softmax_xent_bwd<T>(const T*, const int64_t*, const T*, const T*, T*,       \
                                      int64_t, int64_t, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
