// The thread pool behind parallel_for: workers that block on a condition variable (a futex on
// Linux) until a loop hands them a chunk, and a caller that blocks until the last chunk is done.
#include "cpu/parallel.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace gg::cpu {
namespace {

int usable_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int default_threads() {
  if (const char* text = std::getenv("OMP_NUM_THREADS")) {
    const long value = std::strtol(text, nullptr, 10);  // "4" or the first of "4,2"
    if (value >= 1) return static_cast<int>(std::min<long>(value, 1024));
  }
  return usable_cores();
}

std::atomic<int> g_threads{0};  // 0: not read yet

thread_local bool t_in_loop = false;  // this thread runs a chunk of a loop (or is a worker)

class Pool {
 public:
  // Runs the loop if the pool is free; false (nothing run) when another loop holds it.
  bool try_run(int workers, Task task, void* context) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    // chunks 1..helpers go to workers; the caller runs chunk 0 and any a worker could not take
    // (the system refused a thread): the same chunks either way
    const int helpers = start_workers(workers - 1);
    task_ = task;
    context_ = context;
    remaining_.store(helpers, std::memory_order_relaxed);
    for (int w = 1; w <= helpers; ++w) slots_[w - 1]->post();
    task(context, 0);
    for (int w = helpers + 1; w < workers; ++w) task(context, w);
    std::unique_lock<std::mutex> lock(done_mutex_);
    done_.wait(lock, [this] { return remaining_.load(std::memory_order_acquire) == 0; });
    return true;
  }

  int started() const { return static_cast<int>(started_.load(std::memory_order_relaxed)); }

 private:
  // One sleeping worker: `posted` flips to true when it has a chunk to run.
  struct Slot {
    std::mutex mutex;
    std::condition_variable wake;
    bool posted = false;

    void post() {
      {
        std::lock_guard<std::mutex> lock(mutex);
        posted = true;
      }
      wake.notify_one();
    }
    void wait() {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [this] { return posted; });
      posted = false;
    }
  };

  // Starts workers until there are `count`; returns how many there are (fewer when the system
  // refuses a thread: the loop then runs their chunks on the caller).
  int start_workers(int count) {
    while (static_cast<int>(slots_.size()) < count) {
      const int worker = static_cast<int>(slots_.size()) + 1;
      auto slot = std::make_unique<Slot>();
      slots_.reserve(slots_.size() + 1);  // so that nothing can throw once the thread runs
      try {
        // detached: the pool lives until the process ends (and a forked child gets a new one)
        std::thread([this, worker, raw = slot.get()] { work(worker, raw); }).detach();
      } catch (const std::system_error&) {
        break;
      }
      slots_.push_back(std::move(slot));
      started_.fetch_add(1, std::memory_order_relaxed);
    }
    return std::min(count, static_cast<int>(slots_.size()));
  }

  void work(int worker, Slot* slot) {
    t_in_loop = true;
    for (;;) {
      slot->wait();
      task_(context_, worker);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(done_mutex_);  // the caller is waiting or about to
        done_.notify_one();
      }
    }
  }

  std::mutex busy_;  // held by the thread whose loop runs on the pool
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<int> started_{0};
  Task task_ = nullptr;
  void* context_ = nullptr;
  std::atomic<int> remaining_{0};
  std::mutex done_mutex_;
  std::condition_variable done_;
};

std::atomic<Pool*> g_pool{nullptr};

Pool& pool() {
  Pool* existing = g_pool.load(std::memory_order_acquire);
  if (existing != nullptr) return *existing;
  Pool* created = new Pool();  // never deleted: its workers sleep in it until the process ends
  if (g_pool.compare_exchange_strong(existing, created, std::memory_order_acq_rel)) return *created;
  delete created;  // another thread made one first (ours has started no thread)
  return *existing;
}

#if defined(__unix__) || defined(__APPLE__)
// A forked child has only the forking thread: the parent's workers are gone, and the pool's
// mutexes may have been held by them. The child leaves that pool alone and makes its own.
void forget_pool_in_child() {
  g_pool.store(nullptr, std::memory_order_relaxed);
  t_in_loop = false;
}

[[maybe_unused]] const bool g_atfork_registered = [] {
  pthread_atfork(nullptr, nullptr, forget_pool_in_child);
  return true;
}();
#endif

}  // namespace

int num_threads() {
  int threads = g_threads.load(std::memory_order_relaxed);
  if (threads == 0) {
    int unset = 0;
    g_threads.compare_exchange_strong(unset, default_threads(), std::memory_order_relaxed);
    threads = g_threads.load(std::memory_order_relaxed);
  }
  return threads;
}

void set_num_threads(int threads) { g_threads.store(std::max(1, threads), std::memory_order_relaxed); }

namespace {

std::atomic<int64_t> g_blas_busy_until{0};  // steady_clock nanoseconds; 0: not busy

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void blas_busy_for(double seconds) {
  g_blas_busy_until.store(seconds > 0 ? now_ns() + static_cast<int64_t>(seconds * 1e9) : 0,
                          std::memory_order_relaxed);
}

int threads_now() {
  const int threads = num_threads();
  if (threads == 1) return 1;
  const int64_t until = g_blas_busy_until.load(std::memory_order_relaxed);
  return until != 0 && now_ns() < until ? 1 : threads;
}

int started_workers() {
  Pool* existing = g_pool.load(std::memory_order_acquire);
  return existing == nullptr ? 0 : existing->started();
}

void run_parallel(int workers, Task task, void* context) {
  if (workers > 1 && !t_in_loop) {
    t_in_loop = true;
    const bool ran = pool().try_run(workers, task, context);
    t_in_loop = false;
    if (ran) return;
  }
  for (int w = 0; w < workers; ++w) task(context, w);
}

}  // namespace gg::cpu
