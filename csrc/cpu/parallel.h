// gpugrad's CPU threads: one policy for every kernel of gpugrad._C. A loop runs on the calling
// thread plus pool workers that sleep on a condition variable between loops (they never spin,
// so they never take a core from numpy's BLAS threads between two GEMMs), and goes parallel
// only when each worker gets at least `grain` elements: below that, waking a thread costs more
// than it saves. No OpenMP: its idle workers spin after every parallel region, and its wait
// policy is fixed by environment variables read when the runtime loads.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gg::cpu {

// Elements per worker before a second thread pays: a pass over memory (relu, SGD, bias add)
// and a pass that also evaluates exp / erf / sqrt per element (sigmoid, GELU, softmax, Adam).
// Waking a sleeping worker and waiting for it cost ~50 µs on the 2-core VM this was measured on
// (2026-12-03, quiet: 2 threads ran 32K-element sigmoid at 0.31x, 256K at 1.15x; SGD broke even
// near 300K), so a loop splits only where one thread would take >~ 150 µs.
constexpr int64_t kGrainMemory = int64_t(1) << 18;
constexpr int64_t kGrainMath = int64_t(1) << 17;

// Threads a parallel loop may use (the caller included); >= 1. Default: OMP_NUM_THREADS when
// set (as torch reads it), else the cores this process may run on.
int num_threads();
void set_num_threads(int threads);
// Pool workers started so far (they start on the first loop that needs them).
int started_workers();

// The BLAS's own threads stay busy for `seconds` from now (OpenBLAS's spin, yielding, ~0.1 s
// after each multi-threaded call): until then loops run on the calling thread, since a worker
// woken onto a core a BLAS thread spins on ran a loop slower than the caller alone did.
void blas_busy_for(double seconds);
// Threads a loop may use now: num_threads(), or 1 while the BLAS is busy.
int threads_now();

using Task = void (*)(void* context, int worker);

// Calls task(context, w) for every w in [0, workers), w = 0 on the calling thread, and returns
// when all have finished. When the pool is taken (a loop from another thread, or a loop nested
// in a loop) the calls run one after another on the caller: the same split, no new threads.
void run_parallel(int workers, Task task, void* context);

// Number of workers parallel_for uses for `work` items, each worker getting >= `grain`.
inline int worker_count(int64_t work, int64_t grain) {
  if (work < 2 * grain) return 1;
  return static_cast<int>(std::min<int64_t>(threads_now(), work / grain));
}

// Calls body(begin, end, worker) on `workers` contiguous chunks covering [0, n). The chunks
// depend only on n and workers, so results never depend on thread timing.
template <class Body>
void parallel_chunks(int64_t n, int workers, Body body) {
  if (n <= 0) return;
  if (workers <= 1) {
    body(int64_t(0), n, 0);
    return;
  }
  struct Loop {
    Body* body;
    int64_t n, chunk;
  } loop{&body, n, (n + workers - 1) / workers};
  run_parallel(
      workers,
      [](void* context, int worker) {
        const Loop& l = *static_cast<const Loop*>(context);
        const int64_t begin = std::min(l.n, worker * l.chunk);
        const int64_t end = std::min(l.n, begin + l.chunk);
        if (begin < end) (*l.body)(begin, end, worker);
      },
      &loop);
}

// parallel_chunks over worker_count(n, grain) workers.
template <class Body>
void parallel_for(int64_t n, int64_t grain, Body body) {
  parallel_chunks(n, worker_count(n, grain), body);
}

}  // namespace gg::cpu
