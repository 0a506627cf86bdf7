// Launchers of the row-structured CUDA kernels (cuda/kernels.cuh) on row-major (rows x cols)
// matrices: bias + activation (forward; backward with the bias gradient's column sum) and
// softmax cross-entropy (forward: one warp or one block per row; backward: elementwise).
#include <algorithm>

#include "cuda/common.cuh"

namespace gg::cuda {

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
Status softmax_xent_fwd(const T* logits, const int64_t* targets, T* loss, T* lse,
                        int64_t* bad_target, int64_t rows, int64_t cols, Label ignore_index,
                        void* stream) {
  if (rows == 0) return nullptr;
  constexpr int64_t kWarpMaxCols = 1024;  // wider rows get a whole block each
  if (cols <= kWarpMaxCols) {
    const int64_t blocks = std::min<int64_t>(ceil_div(rows, kThreads / 32), resident_block_limit());
    softmax_xent_fwd_kernel<true><<<unsigned(blocks), kThreads, 0, as_stream(stream)>>>(
        logits, targets, loss, lse, bad_target, rows, cols, ignore_index);
  } else {
    const int64_t blocks = std::min<int64_t>(rows, resident_block_limit());
    softmax_xent_fwd_kernel<false><<<unsigned(blocks), kThreads, 0, as_stream(stream)>>>(
        logits, targets, loss, lse, bad_target, rows, cols, ignore_index);
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
  template Status softmax_xent_fwd<T>(const T*, const int64_t*, T*, T*, int64_t*, int64_t,   \
                                      int64_t, Label, void*);                                 \
  template Status softmax_xent_bwd<T>(const T*, const int64_t*, const T*, const T*, T*,       \
                                      int64_t, int64_t, void*);
GG_INSTANTIATE(float)
GG_INSTANTIATE(double)
#undef GG_INSTANTIATE

}  // namespace gg::cuda
