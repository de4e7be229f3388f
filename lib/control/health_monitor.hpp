// The health monitor (issue 15): decides whether the box announces itself to
// the routed network, and tells the routing daemon (BIRD) so.
//
// Two threads of the control side. Every health.check_ms the first reads,
// without a round trip to the workers, each port's link and each worker's
// clock (dataplane/gateway_health.cpp). Every health.pool_check_ms the
// second reads the pools' port blocks in use: a round trip to every worker,
// which a stalled worker makes wait up to a second, so it must never hold
// up the first (skipped while a worker is known stalled). health_policy.hpp turns the failing checks into
// withdrawn / holding / announced. Whenever that changes, and every
// health.reconcile_ms anyway, each daemon protocol is enabled or disabled:
// level-triggered, so a restarted BIRD or a `birdc configure` (which
// re-reads `disabled;`) is put right within a second.
//
// What it cannot see, it does not need to: when passgate is gone (SIGKILL,
// crash) its kernel interfaces vanish with it, BIRD's sessions over them
// drop, and the peers' BFD withdraws the routes (README "Deploying a fleet").
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/gateway_config.hpp"
#include "control/bird_client.hpp"
#include "control/health_policy.hpp"
#include "dataplane/gateway.hpp"
#include "stats/health.hpp"

namespace passgate::control {

class HealthMonitor {
 public:
  HealthMonitor(const config::HealthConfig& cfg, dataplane::Gateway& gateway);
  ~HealthMonitor();  // stops the thread; leaves the daemon as it is
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  void start();
  // A reload: new thresholds and protocols, the state kept.
  void configure(const config::HealthConfig& cfg);
  // Operator maintenance (passgatectl drain / undrain).
  void set_drained(bool drained);
  // A clean stop: the thread ends, every protocol is disabled, then the
  // caller keeps forwarding for health.stop_withdraw_ms (returned) while
  // the peers move the traffic away.
  std::uint32_t withdraw_for_stop();
  [[nodiscard]] stats::HealthState state() const;

 private:
  void run();
  void read_pools();
  // One round of checks: the failing reasons and what failed, in words.
  std::uint32_t check(std::uint64_t now_ms, std::string& detail);
  // Tells the daemon the policy's wish for every protocol; false on any failure.
  void tell_daemon(const char* why);
  void publish(std::uint64_t now_ms, const std::string& detail);

  dataplane::Gateway& gateway_;
  mutable std::mutex mutex_;  // cfg_, drained_, state_ and wake-ups
  std::condition_variable wake_;
  config::HealthConfig cfg_;
  bool drained_ = false;
  bool stopping_ = false;
  stats::HealthState state_;
  std::thread thread_, pool_thread_;
  std::atomic<bool> worker_stalled_{false};  // the check thread's finding, for the pool thread

  // The thread's own (and withdraw_for_stop's once the thread has ended).
  std::unique_ptr<BirdClient> daemon_;
  HealthPolicy policy_;
  std::vector<std::uint64_t> last_clock_;       // per worker
  std::vector<std::uint64_t> clock_moved_ms_;   // when it last moved
  // The pool thread's findings, under mutex_.
  std::map<std::string, bool> pool_exhausted_;  // by pool name, with hysteresis
  std::string pool_detail_;
  bool pools_read_ = false;
  std::uint64_t next_reconcile_ms_ = 0;
  bool daemon_ok_ = false;  // last exchange with the daemon succeeded
  std::uint64_t daemon_errors_ = 0;
  std::string daemon_reply_;
  std::string enabled_now_;
};

// Before the gateway starts (its kernel interfaces do not exist yet): every
// protocol disabled, so no session can carry an announcement of a box that
// is not serving. Empty on success, else what failed (passgate starts
// anyway: the monitor keeps trying).
std::string withdraw_before_start(const config::HealthConfig& cfg);

}  // namespace passgate::control
