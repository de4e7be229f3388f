// The lawful-intercept look-up from logs (lib/control/log_lookup.hpp): the
// lines are the syslog exporter's own, so a change of format that the
// reader does not follow fails here. Times before, during and after a
// block's life, a release whose allocation predates the logs, the combs of
// several workers, a deterministic mapping logged and replaced, and nfdump
// records without port ranges.
#include <gtest/gtest.h>

#include "control/log_lookup.hpp"
#include "control/syslog_exporter.hpp"
#include "nat/deterministic.hpp"
#include "support/nat_events.hpp"

namespace passgate::control {
namespace {

using namespace testing::nat_events;
using Kind = LogIndex::Answer::Kind;

SyslogConfig config() {
  SyslogConfig c;
  c.hostname = "cgn1";
  return c;
}

void add(LogIndex& index, const NatEvent& e) { ASSERT_TRUE(index.add_syslog_line(format_syslog(e, config(), "9"))); }

TEST(LogLookup, ABlockIsNamedOnlyDuringItsLife) {
  LogIndex index;
  add(index, limit(Type::session_limit, t0, inside_c));  // the logs start here
  add(index, block(Type::block_allocated, t0 + 10'000, inside_a, 1024, 1535));
  add(index, block(Type::block_released, t0 + 50'000, inside_a, 1024, 1535));
  add(index, block(Type::block_allocated, t0 + 60'000, inside_b, 1024, 1535));
  add(index, limit(Type::session_limit, t0 + 90'000, inside_c));  // and end here
  EXPECT_FALSE(index.add_syslog_line("<13>1 2026-11-21T10:00:00Z host sshd 1 - - something else"));
  index.finish();

  auto a = index.lookup(public_1, 1300, t0 + 20'000);
  ASSERT_EQ(a.kind, Kind::held) << a.text;
  EXPECT_EQ(a.holders[0].subscriber, inside_a);
  EXPECT_NE(a.text.find("from 2026-11-21T10:00:10.123Z until 2026-11-21T10:00:50.123Z"), std::string::npos) << a.text;
  EXPECT_EQ(index.lookup(public_1, 1300, t0 + 5'000).kind, Kind::nobody) << "before it was allocated";
  EXPECT_EQ(index.lookup(public_1, 1300, t0 + 55'000).kind, Kind::nobody) << "after it was released";
  a = index.lookup(public_1, 1300, t0 + 70'000);
  ASSERT_EQ(a.kind, Kind::held);
  EXPECT_EQ(a.holders[0].subscriber, inside_b) << "the next holder of the same block";
  EXPECT_NE(a.text.find("still held"), std::string::npos);
  EXPECT_EQ(index.lookup(public_1, 1536, t0 + 20'000).kind, Kind::nobody) << "outside the block";
  EXPECT_EQ(index.lookup(public_1, 1300, t0 - 1).kind, Kind::not_covered);
  EXPECT_EQ(index.lookup(public_1, 1300, t0 + 90'001).kind, Kind::not_covered);
}

TEST(LogLookup, AReleaseWithoutItsAllocationWasHeldSinceBeforeTheLogs) {
  LogIndex index;
  add(index, limit(Type::session_limit, t0, inside_c));
  add(index, block(Type::block_released, t0 + 30'000, inside_a, 2048, 4094, 2));  // two workers: every 2nd port
  index.finish();
  const auto a = index.lookup(public_1, 2050, t0 + 1'000);
  ASSERT_EQ(a.kind, Kind::held) << a.text;
  EXPECT_NE(a.text.find("before the logs begin"), std::string::npos);
  EXPECT_EQ(index.lookup(public_1, 2051, t0 + 1'000).kind, Kind::nobody) << "the other worker's comb";
}

TEST(LogLookup, PreservedPortsAndDeterministicMappingsInForce) {
  nat::PoolConfig det;
  det.name = "det";
  det.mode = nat::PoolMode::deterministic;
  det.subscribers.push_back({packet::ipv4(100, 64, 0, 0), 22});
  det.public_addresses.push_back({packet::ipv4(198, 51, 100, 10), packet::ipv4(198, 51, 100, 25)});
  const auto mapping_line = [](const nat::PoolConfig& p, std::uint64_t t) {
    const nat::DeterministicGeometry g = nat::deterministic_geometry(p);
    return format_syslog_mapping({t, 0, p.name, p.port_min, p.port_max, g.ratio, g.ports_per_subscriber,
                                  nat::describe_mapping(p)},
                                 config(), "9");
  };
  LogIndex index;
  ASSERT_TRUE(index.add_syslog_line(mapping_line(det, t0)));
  add(index, preserved(Type::port_preserved, t0 + 1'000, inside_b, 500, 17));
  nat::PoolConfig wider = det;
  wider.sharing_ratio = 128;  // a restart with another ratio: another mapping from then on
  ASSERT_TRUE(index.add_syslog_line(mapping_line(wider, t0 + 100'000)));
  add(index, limit(Type::session_limit, t0 + 200'000, inside_c));
  index.finish();
  const nat::DeterministicMap before(det), after(wider);
  const auto pub = packet::ipv4(198, 51, 100, 11);
  auto a = index.lookup(pub, 2000, t0 + 50'000);
  ASSERT_EQ(a.kind, Kind::deterministic) << a.text;
  EXPECT_EQ(*a.deterministic_subscriber, *before.reverse(pub, 2000));
  a = index.lookup(pub, 2000, t0 + 150'000);
  ASSERT_EQ(a.kind, Kind::deterministic) << a.text;
  EXPECT_EQ(*a.deterministic_subscriber, *after.reverse(pub, 2000));
  EXPECT_NE(*before.reverse(pub, 2000), *after.reverse(pub, 2000)) << "the test needs mappings that differ";
  a = index.lookup(public_1, 500, t0 + 2'000);
  ASSERT_EQ(a.kind, Kind::held) << a.text;
  EXPECT_EQ(a.holders[0].subscriber, inside_b);
}

TEST(LogLookup, NfdumpRecordsWithoutPortRangesNameCandidates) {
  LogIndex index;
  const auto record = [&](const char* id, const char* time, const char* inside) {
    return index.add_nfdump_record({{"type", "FLOW"},
                                    {"src4_addr", inside},
                                    {"src4_xlt_ip", "192.0.2.1"},
                                    {"nat_event_id", id},
                                    {"t_event", time}});
  };
  ASSERT_TRUE(record("16", "2026-11-21T10:00:00.000", "100.64.0.5"));
  ASSERT_TRUE(record("16", "2026-11-21T10:00:05.000", "100.64.0.6"));
  ASSERT_TRUE(record("17", "2026-11-21T10:00:30.000", "100.64.0.6"));
  ASSERT_TRUE(record("17", "2026-11-21T10:01:00.000", "100.64.0.5"));
  index.finish();
  auto a = index.lookup(public_1, 4000, *parse_utc_time("2026-11-21T10:00:02Z"));
  ASSERT_EQ(a.kind, Kind::candidates) << a.text;
  ASSERT_EQ(a.holders.size(), 1u);
  EXPECT_EQ(a.holders[0].subscriber, inside_a);
  EXPECT_NE(a.text.find("nfdump 1.7.1 drops them"), std::string::npos);
  a = index.lookup(public_1, 4000, *parse_utc_time("2026-11-21T10:00:10Z"));
  EXPECT_EQ(a.holders.size(), 2u);
}

TEST(LogLookup, TimesAreUtc) {
  EXPECT_EQ(parse_utc_time("2026-11-21T10:00:00.123Z"), t0);
  EXPECT_EQ(parse_utc_time("2026-11-21 10:00:00.123"), t0);
  EXPECT_EQ(parse_utc_time("@1795255200"), t0 - 123);
  EXPECT_EQ(parse_utc_time("2026-11-21T11:00:00.123+01:00"), t0) << "an RFC 3339 offset, as rsyslog may write";
  EXPECT_EQ(parse_utc_time("2026-11-21T10:00:00.123000+00:00"), t0);
  EXPECT_FALSE(parse_utc_time("2026-11-21T10:00:00 CET")) << "no zone names: no silent shift";
  EXPECT_FALSE(parse_utc_time("yesterday"));
  EXPECT_EQ(format_utc_time(t0), "2026-11-21T10:00:00.123Z");
}

}  // namespace
}  // namespace passgate::control
