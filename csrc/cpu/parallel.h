// A static-chunk parallel loop over OpenMP (serial when built without OpenMP or when the
// work is too small to pay for waking threads).
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gg::cpu {

// Number of workers parallel_for will use for `work` items, each worker getting >= `grain`.
inline int worker_count(int64_t work, int64_t grain) {
#ifdef _OPENMP
  if (work < 2 * grain) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), work / grain));
#else
  (void)work;
  (void)grain;
  return 1;
#endif
}

// Calls body(begin, end, worker) on contiguous chunks covering [0, n); worker < worker_count.
template <class Body>
void parallel_for(int64_t n, int64_t grain, Body body) {
  if (n <= 0) return;
  const int workers = worker_count(n, grain);
  if (workers <= 1) {
    body(int64_t(0), n, 0);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(workers)
  {
    const int worker = omp_get_thread_num();
    const int64_t team = omp_get_num_threads();  // may be fewer than asked for
    const int64_t chunk = (n + team - 1) / team;
    const int64_t begin = std::min(n, worker * chunk);
    const int64_t end = std::min(n, begin + chunk);
    if (begin < end) body(begin, end, worker);
  }
#endif
}

}  // namespace gg::cpu
