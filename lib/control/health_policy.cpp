#include "control/health_policy.hpp"

#include <algorithm>

namespace passgate::control {

using stats::Announcement;
using stats::HealthReason;

HealthPolicy::HealthPolicy(std::vector<std::string> protocols, std::vector<std::string> pool_protocols,
                           std::uint64_t hold_down_ms)
    : protocols_(std::move(protocols)), pool_protocols_(std::move(pool_protocols)), hold_down_ms_(hold_down_ms) {}

void HealthPolicy::configure(std::vector<std::string> protocols, std::vector<std::string> pool_protocols,
                             std::uint64_t hold_down_ms) {
  protocols_ = std::move(protocols);
  pool_protocols_ = std::move(pool_protocols);
  hold_down_ms_ = hold_down_ms;
}

HealthPolicy::Step HealthPolicy::update(std::uint32_t failing, std::uint64_t now_ms) {
  Step step;
  step.from = state_;
  step.new_reasons = failing & ~reasons_;
  reasons_ = failing;
  Announcement next = state_;
  if (failing) {
    next = Announcement::withdrawn;
    causes_ |= failing;
  } else if (state_ == Announcement::withdrawn) {
    next = hold_down_ms_ == 0 ? Announcement::announced : Announcement::holding;
  } else if (state_ == Announcement::holding && now_ms - since_ms_ >= hold_down_ms_) {
    next = Announcement::announced;
  }
  if (next != state_) {
    if (next == Announcement::withdrawn)
      for (unsigned r = 0; r < stats::health_reason_count; ++r)
        if (failing & (1u << r)) ++withdrawals_[r];
    if (next == Announcement::announced) causes_ = 0;
    state_ = next;
    since_ms_ = now_ms;
    ++transitions_;
    step.changed = true;
  }
  step.to = state_;
  return step;
}

std::uint64_t HealthPolicy::hold_down_left_ms(std::uint64_t now_ms) const {
  if (state_ != Announcement::holding) return 0;
  const std::uint64_t passed = now_ms - since_ms_;
  return passed >= hold_down_ms_ ? 0 : hold_down_ms_ - passed;
}

bool HealthPolicy::enabled(const std::string& protocol) const {
  if (state_ == Announcement::announced) return true;
  const std::uint32_t pool = stats::reason_bit(HealthReason::pool_exhausted);
  if (causes_ & ~pool) return false;  // every other reason withdraws everything
  if (!(causes_ & pool)) return false;
  // Only pool exhaustion since the last announcement: it withdraws its list.
  if (pool_protocols_.empty()) return false;
  return std::find(pool_protocols_.begin(), pool_protocols_.end(), protocol) == pool_protocols_.end();
}

bool pool_exhausted(bool was_exhausted, std::uint64_t blocks_in_use, std::uint64_t blocks_total,
                    unsigned withdraw_percent, unsigned restore_percent) {
  if (blocks_total == 0) return false;
  // Percent of in-use blocks, compared without rounding: in_use/total >= p/100.
  const std::uint64_t scaled = blocks_in_use * 100;
  if (was_exhausted) return scaled > blocks_total * restore_percent;
  return scaled >= blocks_total * withdraw_percent;
}

}  // namespace passgate::control
