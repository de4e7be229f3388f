// A hot reload (Gateway::reload): checks on the control core, the reload
// plans made here, the new policy published under RCU, and a bounded wait
// for every worker to take it (reload_apply_timeout_ms): a stalled worker is
// reported, never waited on forever, and what it may still read is kept.
#include <rte_rcu_qsbr.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "dataplane/gateway.hpp"
#include "dataplane/worker.hpp"

namespace passgate::dataplane {

ReloadOutcome Gateway::reload(const config::GatewayConfig& next_in, const std::function<void()>& before_publish) {
  std::lock_guard<std::mutex> lock(control_mutex_);
  ReloadOutcome out;
  config::GatewayConfig next = next_in;
  // Unless the file pins a seed, the one drawn at start stays (RFC 6056).
  if (!next.random_seed_given) next.nat.random_seed = cfg_.nat.random_seed;
  out.problems = config::restart_required_changes(cfg_, next);
  // A worker that missed the last reload still runs the policy before it
  // (and may be applying its plan): nothing new until it has caught up.
  std::erase_if(late_workers_, [&](unsigned k) {
    return workers_[k]->applied_generation.load(std::memory_order_acquire) == policy_->generation ||
           !workers_[k]->running.load(std::memory_order_acquire);
  });
  if (!late_workers_.empty()) {
    out.problems.push_back(fmt::format("worker(s) {} have not yet taken generation {} (stalled for over {} ms); "
                                       "try again once they have",
                                       fmt::join(late_workers_, ", "), policy_->generation, reload_apply_timeout_ms));
    return out;
  }
  retired_.clear();
  policy_->plans.clear();
  // What the engines still hold of earlier reloads (addresses draining),
  // asked of each worker on its own thread.
  std::vector<nat::DrainingAddress> draining;
  if (!on_workers([&](Worker& w) {
        for (auto& d : w.engine->draining_addresses(next.nat)) draining.push_back(std::move(d));
      }))
    out.problems.push_back("a worker did not answer within a second: cannot tell which public addresses still drain");
  for (auto& p : nat::Engine::reconfigure_problems(cfg_.nat, next.nat, draining)) out.problems.push_back(std::move(p));
  if (!out.problems.empty()) return out;

  std::unique_ptr<Policy> fresh = make_policy(next, policy_->generation + 1);
  // The reload's work, done here: each worker will only apply its plan.
  for (const auto& w : workers_) fresh->plans.push_back(w->engine->plan_reload(fresh->nat));
  const std::uint64_t generation = fresh->generation;
  const bool workers_running = running_;
  if (before_publish) before_publish();
  published_.store(fresh.get(), std::memory_order_release);
  // Every worker passes a quiescent state after the store (rte_rcu_qsbr):
  // none can still be inside a loop turn that read the old policy. And each
  // switches its engine at the top of a turn. Waited for, but not forever:
  // a stalled worker is reported, and what it may read is kept.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(reload_apply_timeout_ms);
  const auto before_deadline = [&] { return std::chrono::steady_clock::now() < deadline; };
  std::vector<unsigned> late;
  if (workers_running) {
    const std::uint64_t token = rte_rcu_qsbr_start(qsbr_);
    while (rte_rcu_qsbr_check(qsbr_, token, false) == 0 && before_deadline())
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    for (unsigned k = 0; k < workers_.size(); ++k) {
      const Worker& w = *workers_[k];
      while (w.applied_generation.load(std::memory_order_acquire) != generation && w.running.load() &&
             before_deadline())
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (w.applied_generation.load(std::memory_order_acquire) != generation && w.running.load()) late.push_back(k);
    }
  }
  nat::ReconfigureResult total{};
  for (unsigned k = 0; k < workers_.size(); ++k) {
    const auto& w = workers_[k];
    if (std::find(late.begin(), late.end(), k) != late.end()) continue;
    if (w->applied_generation.load(std::memory_order_acquire) != generation) {
      // Not running (stopping): switch it here, no worker thread to race.
      w->last_reconfigure = w->engine->apply(*fresh->plans[k]);
      if (!w->last_reconfigure.applied) w->last_reconfigure = w->engine->reconfigure(fresh->nat);
      w->policy = fresh.get();
      w->applied_generation = generation;
    }
    // Pools and static mappings are the same on every worker: report one.
    total = w->last_reconfigure;
  }
  if (!late.empty()) {
    retired_.push_back(std::move(policy_));
    policy_ = std::move(fresh);  // its plans stay until the late workers have applied theirs
    late_workers_ = late;
  }
  // Every worker has applied its plan: what the plans took out of the
  // engines (old address lists, configurations) is freed here, not there.
  if (late.empty()) {
    fresh->plans.clear();
    policy_ = std::move(fresh);  // the old policy is freed here, after the grace period
  }
  cfg_.nat = next.nat;
  cfg_.control = next.control;
  cfg_.random_seed_given = next.random_seed_given;
  cfg_.source = next.source;
  out.applied = true;
  out.generation = generation;
  out.summary = fmt::format(
      "generation {}: pools +{} -{}, public addresses +{} -{} (draining), static mappings +{} -{} draining {}{}",
      generation, total.pools_added, total.pools_retired, total.addresses_added, total.addresses_retired,
      total.static_added, total.static_removed, total.static_draining,
      total.static_conflicts ? fmt::format(", {} static mapping(s) not applied: a live mapping holds the endpoint",
                                           total.static_conflicts)
                             : "");
  if (!late.empty())
    out.summary += fmt::format("; worker(s) {} did not take it within {} ms: they will at their next loop turn, "
                               "and the next reload waits for them",
                               fmt::join(late, ", "), reload_apply_timeout_ms);
  out.late_workers = std::move(late);
  return out;
}

}  // namespace passgate::dataplane
