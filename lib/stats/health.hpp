// Whether the box announces itself to the routed network (issue 15), as the
// control side reads it: plain values, no DPDK. The health monitor
// (control/health_monitor.hpp) fills it; Prometheus, telemetry and
// passgatectl print it.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace passgate::stats {

// Why the box is withdrawn: one list, expanded wherever the reasons are named.
#define PASSGATE_HEALTH_REASONS(X)                                                           \
  X(starting, "passgate has not yet passed its first full check")                            \
  X(link_down, "a port's link is down")                                                      \
  X(worker_stalled, "a worker has not run its loop for health.worker_stall_ms")              \
  X(pool_exhausted, "a pool's port blocks in use reached health.pool_withdraw_percent")       \
  X(drained, "the operator drained the box (passgatectl drain)")                            \
  X(stopping, "passgate is stopping (SIGTERM or SIGINT)")

enum class HealthReason : unsigned {
#define PASSGATE_X(name, help) name,
  PASSGATE_HEALTH_REASONS(PASSGATE_X)
#undef PASSGATE_X
};
inline constexpr unsigned health_reason_count = 0
#define PASSGATE_X(name, help) +1
    PASSGATE_HEALTH_REASONS(PASSGATE_X)
#undef PASSGATE_X
    ;
inline constexpr std::uint32_t reason_bit(HealthReason r) { return 1u << static_cast<unsigned>(r); }
const char* to_string(HealthReason r);

// withdrawn -> (no reason left) -> holding -> (hold-down passed) -> announced;
// any reason -> withdrawn at once.
enum class Announcement : std::uint8_t { withdrawn, holding, announced };
const char* to_string(Announcement a);

struct HealthState {
  bool configured = false;  // a health: section is in force
  Announcement state = Announcement::withdrawn;
  std::uint32_t reasons = 0;        // HealthReason bits failing now
  std::string detail;               // what failed, for people ("port 'outside' link down")
  std::uint64_t since_unix_ms = 0;  // in this state since
  std::uint64_t hold_down_left_ms = 0;
  std::uint64_t transitions = 0;
  std::array<std::uint64_t, health_reason_count> withdrawals{};  // entries into withdrawn, per cause
  bool daemon_connected = false;
  std::uint64_t daemon_errors = 0;
  std::string daemon_reply;  // the daemon's last answer, or why it could not be reached
  std::string protocols_enabled;  // the daemon protocols passgate last enabled, comma-separated
};

}  // namespace passgate::stats
