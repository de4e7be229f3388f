// The decision behind the box's announcements (issue 15), as a pure state
// machine: failing checks in, the state and which daemon protocols to
// enable out. No clock of its own, no DPDK, no daemon: the monitor
// (health_monitor.hpp) feeds it and a unit test drives it.
//
//   withdrawn --(no reason left)--> holding --(hold_down passed)--> announced
//       ^                              |                               |
//       +------------ any reason at once, from either -----------------+
//
// Withdrawing at once and announcing only after a quiet hold-down is the
// usual damping of route flaps: a box that recovers and fails again within
// the hold-down never pulls traffic back in between.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "stats/health.hpp"

namespace passgate::control {

class HealthPolicy {
 public:
  // `protocols`: every daemon protocol passgate switches;
  // `pool_protocols`: those a pool exhaustion withdraws (empty: all).
  HealthPolicy(std::vector<std::string> protocols, std::vector<std::string> pool_protocols, std::uint64_t hold_down_ms);

  // What changed with this update, for the log.
  struct Step {
    bool changed = false;
    stats::Announcement from{}, to{};
    std::uint32_t new_reasons = 0;  // failing now and not at the last update
  };
  // The checks that fail at `now_ms` (stats::reason_bit bits).
  Step update(std::uint32_t failing, std::uint64_t now_ms);
  // A reload: the new protocol lists and hold-down; the state is kept.
  void configure(std::vector<std::string> protocols, std::vector<std::string> pool_protocols,
                 std::uint64_t hold_down_ms);

  [[nodiscard]] stats::Announcement state() const { return state_; }
  [[nodiscard]] std::uint32_t reasons() const { return reasons_; }
  [[nodiscard]] std::uint64_t since_ms() const { return since_ms_; }
  [[nodiscard]] std::uint64_t hold_down_left_ms(std::uint64_t now_ms) const;
  [[nodiscard]] std::uint64_t transitions() const { return transitions_; }
  // Entries into withdrawn, per reason among the causes.
  [[nodiscard]] std::uint64_t withdrawals(stats::HealthReason r) const {
    return withdrawals_[static_cast<unsigned>(r)];
  }
  // Whether `protocol` should be enabled now: always when announced; while
  // withdrawn or holding, only when no cause since the box was last
  // announced withdraws it (a pool exhaustion may leave the upstream
  // announcement in place).
  [[nodiscard]] bool enabled(const std::string& protocol) const;
  [[nodiscard]] const std::vector<std::string>& protocols() const { return protocols_; }

 private:
  std::vector<std::string> protocols_, pool_protocols_;
  std::uint64_t hold_down_ms_;
  stats::Announcement state_ = stats::Announcement::withdrawn;
  std::uint32_t reasons_ = stats::reason_bit(stats::HealthReason::starting);
  // Every reason seen since the box was last announced: what still keeps
  // each protocol down during the hold-down.
  std::uint32_t causes_ = stats::reason_bit(stats::HealthReason::starting);
  std::uint64_t since_ms_ = 0;
  std::uint64_t transitions_ = 0;
  std::uint64_t withdrawals_[stats::health_reason_count] = {};
};

// A pool's part in the decision, with hysteresis: exhausted from
// `withdraw_percent` of its port blocks in use, and again fine only at or
// below `restore_percent`, so a pool at the threshold does not flap the box.
bool pool_exhausted(bool was_exhausted, std::uint64_t blocks_in_use, std::uint64_t blocks_total,
                    unsigned withdraw_percent, unsigned restore_percent);

}  // namespace passgate::control
