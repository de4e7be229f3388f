// health (lib/config/read_health.cpp): the routing daemon passgate drives
// and the thresholds of its checks (issue 15). Reloadable, so no
// restart-only rule; every error at its key.
#include <gtest/gtest.h>

#include <string>

#include "config/gateway_config.hpp"
#include "config_test_support.hpp"

namespace passgate::config::testing {
namespace {

TEST(HealthConfig, AbsentByDefaultAndDefaultsWhenPresent) {
  const LoadResult plain = parse(minimal);
  ASSERT_TRUE(plain.config.has_value()) << describe(plain.errors);
  EXPECT_FALSE(plain.config->health.has_value());

  const LoadResult r = parse(minimal + "health:\n  daemon: {protocols: [announce_pools, announce_default]}\n");
  ASSERT_TRUE(r.config.has_value()) << describe(r.errors);
  ASSERT_TRUE(r.config->health.has_value());
  const HealthConfig& h = *r.config->health;
  EXPECT_EQ(h.socket, "/run/bird/bird.ctl") << "Debian's bird2 socket";
  EXPECT_EQ(h.protocols, (std::vector<std::string>{"announce_pools", "announce_default"}));
  EXPECT_TRUE(h.pool_exhausted_protocols.empty());
  EXPECT_EQ(h.check_ms, 100u);
  EXPECT_EQ(h.hold_down_s, 10u);
  EXPECT_EQ(h.worker_stall_ms, 500u);
  EXPECT_EQ(h.pool_withdraw_percent, 95u);
  EXPECT_EQ(h.pool_restore_percent, 85u);
  EXPECT_EQ(h.stop_withdraw_ms, 1000u);

  const LoadResult full = parse(minimal +
                                "health:\n"
                                "  daemon: {kind: bird, socket: /tmp/b.ctl, protocols: [up_1, _down], timeout_ms: 200}\n"
                                "  check_ms: 50\n  hold_down_s: 2\n  worker_stall_ms: 300\n  pool_check_ms: 500\n"
                                "  pool_withdraw_percent: 100\n  pool_restore_percent: 50\n"
                                "  pool_exhausted_protocols: [_down]\n  stop_withdraw_ms: 0\n  reconcile_ms: 200\n");
  ASSERT_TRUE(full.config.has_value()) << describe(full.errors);
  const HealthConfig& f = *full.config->health;
  EXPECT_EQ(f.socket, "/tmp/b.ctl");
  EXPECT_EQ(f.daemon_timeout_ms, 200u);
  EXPECT_EQ(f.pool_exhausted_protocols, std::vector<std::string>{"_down"});
  EXPECT_EQ(f.hold_down_s, 2u);
  EXPECT_EQ(f.stop_withdraw_ms, 0u);
  EXPECT_TRUE(restart_required_changes(*plain.config, *full.config).empty()) << "health: is reloadable";
}

TEST(HealthConfig, ErrorsAtTheirKey) {
  const std::string h = minimal + "health:\n";
  expect_rows({
      {h + "  check_ms: 100\n", 16, 1, Code::missing_key, "daemon"},
      {h + "  daemon: {protocols: []}\n", 17, 23, Code::empty_list, "BIRD protocol"},
      {h + "  daemon: {protocols: [announce-pools]}\n", 17, 24, Code::bad_name, "BIRD protocol name"},
      {h + "  daemon: {protocols: [a, a]}\n", 17, 27, Code::repeated, "listed twice"},
      {h + "  daemon: {kind: frr, protocols: [a]}\n", 17, 18, Code::bad_choice, "bird"},
      {h + "  daemon: {socket: run/bird.ctl, protocols: [a]}\n", 17, 20, Code::bad_choice, "absolute path"},
      {h + "  daemon: {protocols: [a]}\n  hold_down_s: 3601\n", 18, 16, Code::out_of_range, "3600"},
      {h + "  daemon: {protocols: [a]}\n  pool_withdraw_percent: 80\n  pool_restore_percent: 80\n", 19, 25,
       Code::conflict, "hysteresis"},
      {h + "  daemon: {protocols: [a]}\n  check_ms: 400\n  worker_stall_ms: 500\n", 19, 20, Code::conflict,
       "twice check_ms"},
      {h + "  daemon: {protocols: [a]}\n  pool_exhausted_protocols: [b]\n", 18, 29, Code::conflict,
       "not in daemon.protocols"},
      {h + "  daemon: {protocols: [a]}\n  bfd: on\n", 18, 3, Code::unknown_key, "bfd"},
  });
}

}  // namespace
}  // namespace passgate::config::testing
