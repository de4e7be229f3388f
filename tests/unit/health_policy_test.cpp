// control/health_policy: the decision behind the box's announcements
// (issue 15), driven by hand: withdraw at once, announce only after a quiet
// hold-down, pool hysteresis, and which daemon protocols stay enabled.
#include <gtest/gtest.h>

#include "control/health_policy.hpp"

namespace passgate::control {
namespace {

using stats::Announcement;
using stats::HealthReason;
using stats::reason_bit;

const std::vector<std::string> both = {"announce_pools", "announce_default"};
constexpr std::uint32_t link = reason_bit(HealthReason::link_down);
constexpr std::uint32_t pool = reason_bit(HealthReason::pool_exhausted);

TEST(HealthPolicy, StartsWithdrawnAndAnnouncesOnlyAfterTheHoldDown) {
  HealthPolicy p(both, {}, 2000);
  EXPECT_EQ(p.state(), Announcement::withdrawn);
  EXPECT_EQ(p.reasons(), reason_bit(HealthReason::starting));
  EXPECT_FALSE(p.enabled("announce_pools"));

  auto step = p.update(0, 1000);
  EXPECT_TRUE(step.changed);
  EXPECT_EQ(step.to, Announcement::holding);
  EXPECT_EQ(p.hold_down_left_ms(1500), 1500u);
  EXPECT_FALSE(p.enabled("announce_pools")) << "nothing is announced during the hold-down";
  EXPECT_FALSE(p.update(0, 2999).changed);
  step = p.update(0, 3000);
  EXPECT_TRUE(step.changed);
  EXPECT_EQ(step.to, Announcement::announced);
  EXPECT_TRUE(p.enabled("announce_pools"));
  EXPECT_TRUE(p.enabled("announce_default"));
  EXPECT_EQ(p.transitions(), 2u);
}

TEST(HealthPolicy, AnyReasonWithdrawsAtOnceAndAFlapRestartsTheHoldDown) {
  HealthPolicy p(both, {}, 2000);
  p.update(0, 0);
  p.update(0, 2000);
  ASSERT_EQ(p.state(), Announcement::announced);
  auto step = p.update(link, 2100);
  EXPECT_EQ(step.to, Announcement::withdrawn);
  EXPECT_EQ(step.new_reasons, link);
  EXPECT_FALSE(p.enabled("announce_default"));
  EXPECT_EQ(p.withdrawals(HealthReason::link_down), 1u);
  p.update(0, 2200);
  ASSERT_EQ(p.state(), Announcement::holding);
  // Fails again within the hold-down: back to withdrawn, and the hold-down
  // counts from the next recovery, not the first.
  p.update(link, 3000);
  EXPECT_EQ(p.state(), Announcement::withdrawn);
  EXPECT_EQ(p.withdrawals(HealthReason::link_down), 2u);
  p.update(0, 3100);
  EXPECT_EQ(p.update(0, 4200).to, Announcement::holding) << "1.1 s after recovery, not 2 s";
  EXPECT_EQ(p.update(0, 5100).to, Announcement::announced);
}

TEST(HealthPolicy, ReasonsAddedWhileWithdrawnAreNotNewWithdrawals) {
  HealthPolicy p(both, {}, 0);
  p.update(0, 0);
  ASSERT_EQ(p.state(), Announcement::announced) << "hold-down 0: at once";
  p.update(link, 10);
  const auto step = p.update(link | reason_bit(HealthReason::worker_stalled), 20);
  EXPECT_FALSE(step.changed);
  EXPECT_EQ(step.new_reasons, reason_bit(HealthReason::worker_stalled)) << "the log names it";
  EXPECT_EQ(p.withdrawals(HealthReason::worker_stalled), 0u);
  EXPECT_EQ(p.withdrawals(HealthReason::link_down), 1u);
}

TEST(HealthPolicy, PoolExhaustionWithdrawsOnlyItsProtocolsWhenNamed) {
  HealthPolicy p(both, {"announce_default"}, 1000);
  p.update(0, 0);
  p.update(0, 1000);
  ASSERT_EQ(p.state(), Announcement::announced);
  p.update(pool, 1100);
  EXPECT_EQ(p.state(), Announcement::withdrawn);
  EXPECT_FALSE(p.enabled("announce_default")) << "no new subscribers";
  EXPECT_TRUE(p.enabled("announce_pools")) << "return traffic of the box's sessions still arrives";
  p.update(0, 1200);
  EXPECT_TRUE(p.enabled("announce_pools")) << "and stays during the hold-down";
  EXPECT_FALSE(p.enabled("announce_default"));
  // Another reason on top withdraws everything until the next announcement.
  p.update(pool | link, 1300);
  EXPECT_FALSE(p.enabled("announce_pools"));
  p.update(pool, 1400);
  EXPECT_FALSE(p.enabled("announce_pools")) << "the link failure still counts until announced again";
  p.update(0, 1500);
  p.update(0, 2500);
  EXPECT_TRUE(p.enabled("announce_pools"));
  EXPECT_TRUE(p.enabled("announce_default"));

  HealthPolicy all(both, {}, 0);
  all.update(0, 0);
  all.update(pool, 1);
  EXPECT_FALSE(all.enabled("announce_pools")) << "no list: a pool exhaustion withdraws all";
}

TEST(HealthPolicy, ReconfigureKeepsTheState) {
  HealthPolicy p(both, {}, 10000);
  p.update(0, 0);
  ASSERT_EQ(p.state(), Announcement::holding);
  p.configure(both, {}, 500);
  EXPECT_EQ(p.update(0, 600).to, Announcement::announced) << "the new hold-down applies at once";
}

TEST(PoolExhausted, HasHysteresis) {
  // 95 % to withdraw, 85 % to restore.
  EXPECT_FALSE(pool_exhausted(false, 94, 100, 95, 85));
  EXPECT_TRUE(pool_exhausted(false, 95, 100, 95, 85));
  EXPECT_TRUE(pool_exhausted(true, 90, 100, 95, 85)) << "between the two: stays as it was";
  EXPECT_FALSE(pool_exhausted(false, 90, 100, 95, 85));
  EXPECT_TRUE(pool_exhausted(true, 86, 100, 95, 85));
  EXPECT_FALSE(pool_exhausted(true, 85, 100, 95, 85));
  EXPECT_TRUE(pool_exhausted(false, 1, 1, 95, 85)) << "a one-block pool in use is exhausted";
  EXPECT_FALSE(pool_exhausted(false, 0, 0, 95, 85)) << "no blocks (every address draining): not this check's business";
  EXPECT_TRUE(pool_exhausted(false, 64'000'000, 64'000'000, 100, 99)) << "no overflow in the arithmetic";
}

}  // namespace
}  // namespace passgate::control
