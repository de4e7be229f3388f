#include "control/health_monitor.hpp"

#include <fmt/format.h>

#include <chrono>

#include "control/log.hpp"

namespace passgate::control {

namespace {

using stats::Announcement;
using stats::HealthReason;
using stats::reason_bit;

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string reason_list(std::uint32_t reasons) {
  std::string out;
  for (unsigned r = 0; r < stats::health_reason_count; ++r)
    if (reasons & (1u << r)) out += (out.empty() ? "" : ", ") + std::string(to_string(static_cast<HealthReason>(r)));
  return out;
}

std::unique_ptr<BirdClient> client_for(const config::HealthConfig& cfg) {
  return std::make_unique<BirdClient>(cfg.socket, std::chrono::milliseconds(cfg.daemon_timeout_ms));
}

}  // namespace

HealthMonitor::HealthMonitor(const config::HealthConfig& cfg, dataplane::Gateway& gateway)
    : gateway_(gateway),
      cfg_(cfg),
      daemon_(client_for(cfg)),
      policy_(cfg.protocols, cfg.pool_exhausted_protocols, std::uint64_t{cfg.hold_down_s} * 1000) {
  state_.configured = true;
  state_.reasons = policy_.reasons();
  state_.since_unix_ms = unix_ms();
  state_.detail = "starting";
}

HealthMonitor::~HealthMonitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (pool_thread_.joinable()) pool_thread_.join();
}

void HealthMonitor::start() {
  thread_ = std::thread([this] { run(); });
  pool_thread_ = std::thread([this] { read_pools(); });
}

void HealthMonitor::read_pools() {
  for (;;) {
    config::HealthConfig cfg;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      cfg = cfg_;
    }
    // The pools need every worker to answer: not while one is stalled.
    if (!worker_stalled_) {
      const stats::GatewaySnapshot s = gateway_.snapshot(true);
      std::lock_guard<std::mutex> lock(mutex_);
      std::map<std::string, bool> next;
      pool_detail_.clear();
      for (const stats::PoolUsage& u : s.pools) {
        if (u.retired) continue;  // draining after a reload: it takes no new subscribers
        const auto known = pool_exhausted_.find(u.name);
        const bool was = known != pool_exhausted_.end() && known->second;
        const bool now = pool_exhausted(was, u.blocks_in_use, u.blocks_total, cfg.pool_withdraw_percent,
                                        cfg.pool_restore_percent);
        next[u.name] = now;
        if (now)
          pool_detail_ += fmt::format("{}pool '{}' {} of {} port blocks in use (>= {}%{})",
                                      pool_detail_.empty() ? "" : "; ", u.name, u.blocks_in_use, u.blocks_total,
                                      cfg.pool_withdraw_percent,
                                      was ? fmt::format(", restored at {}%", cfg.pool_restore_percent) : "");
      }
      pool_exhausted_ = std::move(next);
      pools_read_ = true;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(cfg.pool_check_ms), [&] { return stopping_; });
  }
}

void HealthMonitor::configure(const config::HealthConfig& cfg) {
  std::lock_guard<std::mutex> lock(mutex_);
  cfg_ = cfg;
  wake_.notify_all();
}

void HealthMonitor::set_drained(bool drained) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    drained_ = drained;
  }
  log(Level::notice, "health: {} by the operator", drained ? "drained" : "undrained");
  wake_.notify_all();
}

stats::HealthState HealthMonitor::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

std::uint32_t HealthMonitor::check(std::uint64_t now_ms, std::string& detail) {
  config::HealthConfig cfg;
  bool drained;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cfg = cfg_;
    drained = drained_;
  }
  std::uint32_t failing = 0;
  std::vector<std::string> what;
  const std::vector<std::string> names = gateway_.port_names();
  const std::vector<std::optional<bool>> links = gateway_.link_states();
  for (std::size_t i = 0; i < links.size(); ++i)
    if (!links[i] || !*links[i]) {
      failing |= reason_bit(HealthReason::link_down);
      what.push_back(fmt::format("port '{}' link {}", i < names.size() ? names[i] : "?",
                                 links[i] ? "down" : "state unreadable"));
    }
  const std::vector<std::uint64_t> clocks = gateway_.worker_clocks();
  if (last_clock_.size() != clocks.size()) {
    last_clock_ = clocks;
    clock_moved_ms_.assign(clocks.size(), now_ms);
  }
  bool stalled = false;
  for (std::size_t w = 0; w < clocks.size(); ++w) {
    if (clocks[w] != last_clock_[w]) {
      last_clock_[w] = clocks[w];
      clock_moved_ms_[w] = now_ms;
    } else if (now_ms - clock_moved_ms_[w] >= cfg.worker_stall_ms) {
      stalled = true;
      what.push_back(fmt::format("worker {} has not run for {} ms", w, now_ms - clock_moved_ms_[w]));
    }
  }
  if (stalled) failing |= reason_bit(HealthReason::worker_stalled);
  worker_stalled_ = stalled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, exhausted] : pool_exhausted_)
      if (exhausted) failing |= reason_bit(HealthReason::pool_exhausted);
    if (failing & reason_bit(HealthReason::pool_exhausted)) what.push_back(pool_detail_);
    if (!pools_read_) {
      failing |= reason_bit(HealthReason::starting);
      what.push_back("first check not complete");
    }
  }
  if (drained) {
    failing |= reason_bit(HealthReason::drained);
    what.push_back("drained by the operator");
  }
  detail.clear();
  for (const auto& w : what) detail += (detail.empty() ? "" : "; ") + w;
  return failing;
}

void HealthMonitor::tell_daemon(const char* why) {
  std::string enabled, disabled, failure;
  for (const std::string& p : policy_.protocols()) {
    const bool on = policy_.enabled(p);
    const BirdReply r = daemon_->set_protocol(p, on);
    if (!r.ok) {
      if (failure.empty()) failure = fmt::format("{} {}: {}", on ? "enable" : "disable", p, r.error);
      if (r.code == 0) break;  // not reached: the others would wait out the timeout too
      continue;
    }
    (on ? enabled : disabled) += (on ? enabled : disabled).empty() ? p : ", " + p;
  }
  const bool ok = failure.empty();
  const std::string summary =
      ok ? fmt::format("{}{}{}", enabled.empty() ? "" : "enabled " + enabled, !enabled.empty() && !disabled.empty() ? "; " : "",
                       disabled.empty() ? "" : "disabled " + disabled)
         : failure;
  if (!ok) ++daemon_errors_;
  // Logged on a change of state or of the daemon's answer, not every second.
  if (ok != daemon_ok_ || std::string(why) != "reconcile" || summary != daemon_reply_) {
    if (ok)
      log(std::string(why) == "reconcile" && summary == daemon_reply_ ? Level::info : Level::notice,
          "health: BIRD ({}): {}", why, summary);
    else
      log(Level::warning, "health: BIRD at {} ({}): {}; trying again every {} ms", daemon_->socket_path(), why,
          failure, cfg_.reconcile_ms);
  }
  daemon_ok_ = ok;
  daemon_reply_ = summary;
  if (ok) enabled_now_ = enabled;
}

void HealthMonitor::publish(std::uint64_t now_ms, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool state_changed = state_.state != policy_.state() || state_.transitions != policy_.transitions();
  state_.state = policy_.state();
  state_.reasons = policy_.reasons();
  state_.detail = detail;
  if (state_changed) state_.since_unix_ms = unix_ms() - (now_ms - policy_.since_ms());
  state_.hold_down_left_ms = policy_.hold_down_left_ms(now_ms);
  state_.transitions = policy_.transitions();
  for (unsigned r = 0; r < stats::health_reason_count; ++r)
    state_.withdrawals[r] = policy_.withdrawals(static_cast<HealthReason>(r));
  state_.daemon_connected = daemon_ok_ && daemon_->connected();
  state_.daemon_errors = daemon_errors_;
  state_.daemon_reply = daemon_reply_;
  state_.protocols_enabled = enabled_now_;
}

void HealthMonitor::run() {
  std::string applied_socket;
  for (;;) {
    config::HealthConfig cfg;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      cfg = cfg_;
    }
    if (cfg.socket != daemon_->socket_path()) daemon_ = client_for(cfg);
    policy_.configure(cfg.protocols, cfg.pool_exhausted_protocols, std::uint64_t{cfg.hold_down_s} * 1000);
    const std::uint64_t now = steady_ms();
    std::string detail;
    const std::uint32_t failing = check(now, detail);
    const HealthPolicy::Step step = policy_.update(failing, now);
    if (step.changed) {
      if (step.to == Announcement::withdrawn)
        log(Level::notice, "health: withdrawn ({}: {})", reason_list(policy_.reasons()), detail);
      else if (step.to == Announcement::holding)
        log(Level::notice, "health: healthy, announcing in {} s (hold-down)", cfg.hold_down_s);
      else
        log(Level::notice, "health: announced");
    } else if (step.new_reasons && policy_.state() == Announcement::withdrawn) {
      log(Level::notice, "health: still withdrawn, now also {} ({})", reason_list(step.new_reasons), detail);
    }
    if (step.changed || now >= next_reconcile_ms_) {
      next_reconcile_ms_ = now + cfg.reconcile_ms;
      tell_daemon(step.changed ? to_string(step.to) : "reconcile");
    }
    publish(now, detail);
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(cfg.check_ms), [&] { return stopping_; });
  }
}

std::uint32_t HealthMonitor::withdraw_for_stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (pool_thread_.joinable()) pool_thread_.join();
  const std::uint64_t now = steady_ms();
  policy_.update(reason_bit(HealthReason::stopping), now);
  log(Level::notice, "health: withdrawn (stopping)");
  tell_daemon("stopping");
  publish(now, "stopping");
  std::lock_guard<std::mutex> lock(mutex_);
  return cfg_.stop_withdraw_ms;
}

std::string withdraw_before_start(const config::HealthConfig& cfg) {
  BirdClient daemon(cfg.socket, std::chrono::milliseconds(cfg.daemon_timeout_ms));
  std::string failures;
  for (const std::string& p : cfg.protocols) {
    const BirdReply r = daemon.set_protocol(p, false);
    if (!r.ok) failures += fmt::format("{}disable {}: {}", failures.empty() ? "" : "; ", p, r.error);
  }
  return failures;
}

}  // namespace passgate::control
