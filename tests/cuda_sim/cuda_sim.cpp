// The scheduler and fake runtime behind cuda_sim.h: fibers for a block's threads, warp
// collectives and barriers that wait for every thread they need, and the handful of cudart
// calls the launchers in csrc/cuda make. See cuda_sim.h for what is and is not modelled.
#include "cuda_sim.h"

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace gg_sim {
namespace {

constexpr size_t kStackBytes = 256 * 1024;  // kernels keep little on the stack
constexpr int kWarpSize = 32;
constexpr unsigned kMaxBlockThreads = 1024;
constexpr size_t kMaxSharedBytes = 48 * 1024;
// What the fake device reports: by default 2 SMs of 512 threads, so grid-stride loops really
// loop; GG_SIM_SMS / GG_SIM_THREADS_PER_SM set another shape (132 x 2048 is an H100's, where
// the same launches become one pass over many blocks).
int device_attribute(const char* name, int fallback) {
  const char* text = std::getenv(name);
  const int value = text != nullptr ? std::atoi(text) : 0;
  return value > 0 ? value : fallback;
}

enum class State { Runnable, AtBarrier, AtCollective, Done };

// Switching: a fiber's first entry goes through swapcontext (onto its own stack); every later
// switch, either way, is _setjmp / _longjmp, which skip swapcontext's signal-mask system call
// (the collectives of a softmax over 10^5 rows switch tens of millions of times).
struct Fiber {
  ucontext_t context;
  jmp_buf jump;
  bool started = false;
  std::unique_ptr<char[]> stack;
  uint3 index{};
  State state = State::Done;
  Collective op = Collective::ShflXor;
  unsigned mask = 0;
  uint64_t value = 0;
  int arg = 0;
  uint64_t result = 0;
};

struct Launch {
  dim3 grid;
  dim3 block;
  uint3 block_index{};
  void (*trampoline)(void*) = nullptr;
  void* body = nullptr;
  Fiber* current = nullptr;
  ucontext_t scheduler;
  jmp_buf scheduler_jump;
  std::string error;  // set once: the launch stops there
};

struct ThreadState {
  std::vector<Fiber> fibers;  // grown on demand; stacks are reused across launches
  Launch* launch = nullptr;
  cudaError_t last_error = cudaSuccess;
  std::string message;  // what the last failed launch says through cudaGetErrorString
  std::mt19937 rng{12345};
};

thread_local ThreadState tls;

Launch& active() {
  if (tls.launch == nullptr) {
    std::fprintf(stderr, "gg_sim: a device function ran outside a kernel launch\n");
    std::abort();
  }
  return *tls.launch;
}

std::string block_name(const Launch& l) {
  return "block (" + std::to_string(l.block_index.x) + "," + std::to_string(l.block_index.y) +
         "," + std::to_string(l.block_index.z) + ")";
}

// Back to the scheduler; returns when this fiber may go on. A fiber whose launch failed is
// never resumed.
void suspend(State why) {
  Launch& l = active();
  Fiber* self = l.current;
  self->state = why;
  if (_setjmp(self->jump) == 0) _longjmp(l.scheduler_jump, 1);
}

void fiber_main() {
  Launch& l = active();
  l.trampoline(l.body);
  l.current->state = State::Done;
  _longjmp(l.scheduler_jump, 1);  // never comes back
}

// Runs fiber f until it suspends or finishes.
void switch_to(Launch& l, Fiber& f) {
  l.current = &f;
  if (_setjmp(l.scheduler_jump) == 0) {
    if (!f.started) {
      f.started = true;
      swapcontext(&l.scheduler, &f.context);
    } else {
      _longjmp(f.jump, 1);
    }
  }
}

const char* collective_name(Collective op) {
  switch (op) {
    case Collective::ShflXor: return "__shfl_xor_sync";
    case Collective::ShflDown: return "__shfl_down_sync";
    case Collective::ShflUp: return "__shfl_up_sync";
    case Collective::ShflIdx: return "__shfl_sync";
    case Collective::Ballot: return "__ballot_sync";
    case Collective::Any: return "__any_sync";
    case Collective::All: return "__all_sync";
  }
  return "?";
}

char hex_mask_buffer[16];
const char* hex(unsigned mask) {
  std::snprintf(hex_mask_buffer, sizeof(hex_mask_buffer), "0x%08x", mask);
  return hex_mask_buffer;
}

// Completes the collectives of warp `w` whose lanes have all arrived. Returns true when some
// lanes were released; sets l.error on a collective that CUDA leaves undefined.
bool resolve_warp(Launch& l, std::vector<Fiber>& fibers, int threads, int w) {
  const int first = w * kWarpSize;
  const int lanes = std::min(kWarpSize, threads - first);
  bool released = false;
  for (int lane = 0; lane < lanes; ++lane) {
    Fiber& f = fibers[first + lane];
    if (f.state != State::AtCollective) continue;
    const unsigned mask = f.mask;
    const std::string where = std::string(collective_name(f.op)) + " with mask " + hex(mask) +
                              " in " + block_name(l) + ", warp " + std::to_string(w);
    if (((mask >> lane) & 1u) == 0) {
      l.error = where + ": lane " + std::to_string(lane) + " is not in its own mask";
      return false;
    }
    bool ready = true;
    for (int other = 0; other < kWarpSize; ++other) {
      if (((mask >> other) & 1u) == 0) continue;
      if (other >= lanes) {
        l.error = where + ": lane " + std::to_string(other) + " does not exist (the block has " +
                  std::to_string(threads) + " threads)";
        return false;
      }
      const Fiber& o = fibers[first + other];
      if (o.state == State::Done) {
        l.error = where + ": lane " + std::to_string(other) + " has already exited";
        return false;
      }
      if (o.state != State::AtCollective) {
        ready = false;  // still running or at a barrier: the deadlock check decides
        continue;
      }
      if (o.op != f.op || o.mask != mask) {
        l.error = where + ": lane " + std::to_string(other) + " waits at " +
                  collective_name(o.op) + " with mask " + hex(o.mask) + " instead";
        return false;
      }
    }
    if (!ready) continue;
    uint64_t bits = 0;  // predicate bits for ballot / any / all
    for (int other = 0; other < kWarpSize; ++other) {
      if ((mask >> other) & 1u) bits |= uint64_t(fibers[first + other].value != 0) << other;
    }
    for (int me = 0; me < kWarpSize; ++me) {
      if (((mask >> me) & 1u) == 0) continue;
      Fiber& lane_fiber = fibers[first + me];
      int source = me;
      switch (lane_fiber.op) {
        case Collective::ShflXor: source = me ^ lane_fiber.arg; break;
        case Collective::ShflDown: source = me + lane_fiber.arg < kWarpSize ? me + lane_fiber.arg : me; break;
        case Collective::ShflUp: source = me - lane_fiber.arg >= 0 ? me - lane_fiber.arg : me; break;
        case Collective::ShflIdx: source = lane_fiber.arg & (kWarpSize - 1); break;
        default: break;
      }
      switch (lane_fiber.op) {
        case Collective::Ballot: lane_fiber.result = bits; break;
        case Collective::Any: lane_fiber.result = bits != 0; break;
        case Collective::All: lane_fiber.result = bits == mask; break;
        default:
          if (source < 0 || source >= kWarpSize || ((mask >> source) & 1u) == 0) {
            l.error = where + ": lane " + std::to_string(me) + " reads lane " +
                      std::to_string(source) + ", which is not in the mask";
            return false;
          }
          lane_fiber.result = fibers[first + source].value;
      }
    }
    for (int me = 0; me < kWarpSize; ++me) {
      if ((mask >> me) & 1u) fibers[first + me].state = State::Runnable;
    }
    released = true;
  }
  return released;
}

// Releases __syncthreads once every live thread waits there. Returns true when it did.
bool release_barrier(Launch& l, std::vector<Fiber>& fibers, int threads) {
  int waiting = 0;
  int exited = 0;
  for (int t = 0; t < threads; ++t) {
    if (fibers[t].state == State::AtBarrier) ++waiting;
    else if (fibers[t].state == State::Done) ++exited;
    else return false;
  }
  if (waiting == 0) return false;
  if (exited > 0) {
    l.error = "__syncthreads() in " + block_name(l) + " reached by " + std::to_string(waiting) +
              " of " + std::to_string(threads) + " threads; the other " + std::to_string(exited) +
              " exited without it";
    return false;
  }
  for (int t = 0; t < threads; ++t) fibers[t].state = State::Runnable;
  return true;
}

std::string describe_deadlock(const Launch& l, const std::vector<Fiber>& fibers, int threads) {
  int barrier = 0;
  int collective = 0;
  int done = 0;
  for (int t = 0; t < threads; ++t) {
    barrier += fibers[t].state == State::AtBarrier;
    collective += fibers[t].state == State::AtCollective;
    done += fibers[t].state == State::Done;
  }
  return "deadlock in " + block_name(l) + ": " + std::to_string(barrier) +
         " threads at __syncthreads(), " + std::to_string(collective) +
         " at warp collectives whose lanes never all arrive, " + std::to_string(done) + " exited";
}

void run_block(Launch& l, int threads) {
  std::vector<Fiber>& fibers = tls.fibers;
  for (int t = 0; t < threads; ++t) {
    Fiber& f = fibers[t];
    f.index = uint3{unsigned(t) % l.block.x, (unsigned(t) / l.block.x) % l.block.y,
                    unsigned(t) / (l.block.x * l.block.y)};
    f.state = State::Runnable;
    f.started = false;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_main, 0);
  }
  std::vector<int> order(threads);
  std::iota(order.begin(), order.end(), 0);
  const int warps = (threads + kWarpSize - 1) / kWarpSize;
  for (;;) {
    std::shuffle(order.begin(), order.end(), tls.rng);
    bool ran = false;
    for (const int t : order) {
      if (fibers[t].state != State::Runnable) continue;
      switch_to(l, fibers[t]);
      ran = true;
    }
    if (std::all_of(fibers.begin(), fibers.begin() + threads,
                    [](const Fiber& f) { return f.state == State::Done; })) {
      return;
    }
    bool released = false;
    for (int w = 0; w < warps && l.error.empty(); ++w) {
      released |= resolve_warp(l, fibers, threads, w);
    }
    if (l.error.empty() && !released) released = release_barrier(l, fibers, threads);
    if (!l.error.empty()) return;
    if (!ran && !released) {
      l.error = describe_deadlock(l, fibers, threads);
      return;
    }
  }
}

void fail(cudaError_t code, std::string message) {
  tls.last_error = code;
  tls.message = std::move(message);
}

}  // namespace

const uint3& thread_index() { return active().current->index; }
const uint3& block_index() { return active().block_index; }
const dim3& block_dim() { return active().block; }
const dim3& grid_dim() { return active().grid; }

uint64_t warp_collective(Collective op, unsigned mask, uint64_t value, int arg) {
  Fiber* self = active().current;
  self->op = op;
  self->mask = mask;
  self->value = value;
  self->arg = arg;
  suspend(State::AtCollective);
  return self->result;
}

void sync_threads() { suspend(State::AtBarrier); }

void run_kernel(dim3 grid, dim3 block, size_t shared_bytes, void (*trampoline)(void*), void* body) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const bool valid = threads >= 1 && threads <= kMaxBlockThreads && block.z <= 64 &&
                     grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu &&
                     grid.y <= 65535 && grid.z <= 65535 && shared_bytes <= kMaxSharedBytes;
  if (!valid) {
    fail(cudaErrorInvalidConfiguration, "invalid configuration argument");
    return;
  }
  if (tls.launch != nullptr) {
    fail(cudaErrorLaunchFailure, "gg_sim: a kernel launched from inside a kernel");
    return;
  }
  while (tls.fibers.size() < threads) {
    tls.fibers.emplace_back();
    tls.fibers.back().stack.reset(new char[kStackBytes]);
  }
  Launch l;
  l.grid = grid;
  l.block = block;
  l.trampoline = trampoline;
  l.body = body;
  std::vector<uint3> blocks;
  blocks.reserve(size_t(grid.x) * grid.y * grid.z);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) blocks.push_back(uint3{x, y, z});
  std::shuffle(blocks.begin(), blocks.end(), tls.rng);
  tls.launch = &l;
  for (const uint3& b : blocks) {
    l.block_index = b;
    run_block(l, int(threads));
    if (!l.error.empty()) break;
  }
  tls.launch = nullptr;
  if (!l.error.empty()) fail(cudaErrorLaunchFailure, "gg_sim: " + l.error);
}

}  // namespace gg_sim

// ---- the cudart calls csrc/cuda makes, answered for one fake device -----------------------------
extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t error = gg_sim::tls.last_error;
  gg_sim::tls.last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorString(cudaError_t error) {
  if (error == cudaSuccess) return "no error";
  if (!gg_sim::tls.message.empty()) return gg_sim::tls.message.c_str();
  return "gg_sim: unknown error";
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  if (device != 0) {
    gg_sim::fail(cudaErrorInvalidDevice, "invalid device ordinal");
    return cudaErrorInvalidDevice;
  }
  switch (attr) {
    case cudaDevAttrMultiProcessorCount:
      *value = gg_sim::device_attribute("GG_SIM_SMS", 2);
      return cudaSuccess;
    case cudaDevAttrMaxThreadsPerMultiProcessor:
      *value = gg_sim::device_attribute("GG_SIM_THREADS_PER_SM", 512);
      return cudaSuccess;
    default:
      gg_sim::fail(cudaErrorInvalidValue, "gg_sim: attribute not modelled");
      return cudaErrorInvalidValue;
  }
}

cudaError_t cudaMemsetAsync(void* pointer, int value, size_t count, cudaStream_t /*stream*/) {
  std::memset(pointer, value, count);
  return cudaSuccess;
}

}  // extern "C"
