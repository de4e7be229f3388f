// What the two sides of passgate-gen share while a run is under way.
#pragma once

#include <atomic>
#include <cstdint>

namespace pgen {

constexpr unsigned burst_size = 32;
constexpr unsigned max_backlog = 512;

enum class Phase : std::uint8_t { warmup, measure, cps };

struct RunState {
  std::atomic<std::uint16_t> trial{0};  // stamped into packets; receivers count only the current one
  std::atomic<Phase> phase{Phase::warmup};
  std::atomic<bool> stop_outside_lcore{false};
  // Two-lcore mode: the main lcore asks the outside lcore for its counters
  // (and a reset) through this handshake instead of reading them racily.
  std::atomic<int> snapshot_request{0};
  std::atomic<int> snapshot_done{0};
};

// Set by SIGINT and SIGTERM: every loop ends early and the report is written.
extern std::atomic<bool> interrupted;

}  // namespace pgen
