// Runtime accounting read from the control side: each worker's stage
// counters (stats/runtime.hpp) with relaxed loads, and the baseline that
// clearing keeps so the workers never see a write from another thread.
#include <rte_cycles.h>

#include "dataplane/gateway.hpp"
#include "dataplane/worker.hpp"

namespace passgate::dataplane {

stats::RuntimeSnapshot Gateway::runtime(bool since_clear) const {
  stats::RuntimeSnapshot s;
  s.tsc_hz = rte_get_tsc_hz();
  std::uint64_t started = 0;
  for (const auto& w : workers_) {
    s.workers.push_back(stats::read_live(w->runtime));
    const std::uint64_t t = w->runtime_started.load(std::memory_order_relaxed);
    if (t && (!started || t < started)) started = t;
  }
  s.elapsed_cycles = started ? rte_rdtsc() - started : 0;
  if (!since_clear) return s;
  std::lock_guard<std::mutex> lock(runtime_mutex_);
  return stats::since(s, runtime_baseline_);
}

void Gateway::clear_runtime() {
  stats::RuntimeSnapshot now = runtime(false);
  std::lock_guard<std::mutex> lock(runtime_mutex_);
  runtime_baseline_ = std::move(now);
}

}  // namespace passgate::dataplane
