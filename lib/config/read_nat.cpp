// nat: table sizes, the seed, timeouts (with their RFC minimums), fragments,
// abuse limits and the event ring; the pools (read_pools.cpp) with the total
// block count the engine can number, the static mappings (read_static.cpp),
// passthrough (read_passthrough.cpp); and last the engine's own check.
#include "config/readers.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <span>
#include <string>

namespace passgate::config {

void read_nat(Checker& c, const Field& f, GatewayConfig& g, const std::vector<PortSeen>& ports,
              std::vector<PoolSeen>& pools, std::vector<StaticSeen>& statics, NatSeen& seen) {
  seen.section = f;
  nat::NatConfig& n = g.nat;
  const Mapping m(
      c, f,
      {"max_sessions", "max_subscribers", "random_seed", "timeouts", "fragments", "limits", "event_ring", "pools", "static",
       "passthrough"});
  if (!m.ok()) {
    seen.pools_reported = true;
    return;
  }
  set_integer(c, m, "max_sessions", n.max_sessions, 1, 1u << 30);
  set_integer(c, m, "max_subscribers", n.max_subscribers, 1, 1u << 26);
  if (const Field* rf = m.get("random_seed"))
    if (const auto v = c.integer(*rf, 0, std::numeric_limits<std::uint64_t>::max(),
                                 "fixes hash keys and port choice; omit for a random seed")) {
      n.random_seed = *v;
      g.random_seed_given = true;
    }

  if (const Field* tf = m.get("timeouts")) {
    const Mapping tm(c, *tf, {"udp", "tcp_established", "tcp_transitory", "icmp", "port_reuse_hold", "fragment_ms"});
    if (tm.ok()) {
      nat::Timeouts& t = n.timeouts;
      set_integer(c, tm, "udp", t.udp, 120, max_timeout_s, "seconds", "the minimum of 120 s (RFC 4787 REQ-5)");
      set_integer(c, tm, "tcp_established", t.tcp_established, 7440, max_timeout_s, "seconds",
                  "the minimum of 7440 s, 2 h 4 min (RFC 5382 REQ-5)");
      set_integer(c, tm, "tcp_transitory", t.tcp_transitory, 240, max_timeout_s, "seconds",
                  "the minimum of 240 s, 4 min (RFC 5382 REQ-5, RFC 7857)");
      set_integer(c, tm, "icmp", t.icmp, 60, max_timeout_s, "seconds", "the minimum of 60 s (RFC 5508 REQ-1)");
      set_integer(c, tm, "port_reuse_hold", t.port_reuse_hold, 0, max_timeout_s, "seconds, RFC 6888 REQ-8 asks 120");
      set_integer(c, tm, "fragment_ms", t.fragment_ms, 1, 60000, "milliseconds");
    }
  }
  if (const Field* ff = m.get("fragments")) {
    const Mapping fm(c, *ff, {"flows", "hold_slots", "hold_bytes"});
    if (fm.ok()) {
      set_integer(c, fm, "flows", n.fragment_flows, 1, 1u << 24, "datagrams tracked at once");
      set_integer(c, fm, "hold_slots", n.fragment_hold_slots, 0, 1u << 16, "out-of-order fragments held at once");
      set_integer(c, fm, "hold_bytes", n.fragment_hold_bytes, 68, 9216,
                  "bytes; 68 is the IPv4 minimum fragment, RFC 791");
    }
  }
  // Issue 11: bounds that keep one party from exhausting what a worker shares.
  if (const Field* lf = m.get("limits")) {
    const Mapping lm(c, *lf,
                     {"new_subscribers_per_second", "static_mapping_sessions", "limit_event_interval_ms",
                      "fragment_flows_per_host", "fragments_held_per_host"});
    if (lm.ok()) {
      nat::AbuseLimits& l = n.limits;
      set_integer(c, lm, "new_subscribers_per_second", l.new_subscribers_per_second, 1, 1u << 24,
                  "new subscriber records a second, per worker");
      set_integer(c, lm, "static_mapping_sessions", l.static_mapping_sessions, 1, 1u << 30,
                  "sessions of one static mapping whose host is in no subscriber prefix");
      set_integer(c, lm, "limit_event_interval_ms", l.limit_event_interval_ms, 0, 3'600'000,
                  "milliseconds between two limit events of one subscriber and type");
      set_integer(c, lm, "fragment_flows_per_host", l.fragment_flows_per_host, 1, 1u << 24,
                  "fragmented datagrams tracked at once per host");
      set_integer(c, lm, "fragments_held_per_host", l.fragments_held_per_host, 0, 1u << 16,
                  "out-of-order fragments held at once per host");
    }
  }
  set_integer(c, m, "event_ring", n.event_ring_size, 1, 1u << 24, "NAT events buffered for logging");
  if (const Field* pf = m.get("passthrough")) seen.passthrough_reported = !read_passthrough(c, *pf, n.passthrough);

  if (const Field* pf = m.require("pools")) {
    const std::size_t errors_before = c.count();
    if (const auto items = sequence(c, *pf, "pools", false)) {
      for (const Field& item : *items) {
        const std::size_t before = c.count();
        pools.emplace_back();
        pools.back().item = item;
        read_pool(c, pools.back(), ports,
                  static_cast<unsigned>(std::max<std::size_t>(1, g.dataplane.worker_lcores.size())));
        check_pool_against_earlier(c, pools.back(), std::span<const PoolSeen>(pools.data(), pools.size() - 1));
        pools.back().clean = c.count() == before;
      }
      // The engine numbers port blocks in 26 bits.
      std::uint64_t blocks = 0;
      for (const PoolSeen& p : pools)
        if (p.ports_ok && p.block_ok && p.publics_ok) {
          std::uint64_t addresses = 0;
          for (const auto& [r, where] : p.publics) addresses += std::uint64_t{r.last.host()} - r.first.host() + 1;
          blocks += addresses * ((p.cfg.port_max - p.cfg.port_min + 1u) / p.cfg.block_size);
        }
      if (blocks > (1ull << 26)) {
        c.error_at_key(Code::capacity, *pf,
                       fmt::format("the pools hold {} port blocks (addresses x ports / block_size); at most 67108864 "
                                   "(2^26) fit: expected fewer public addresses or a larger block_size",
                                   blocks));
        seen.blocks_reported = true;
      }
    }
    seen.pools_reported = c.count() != errors_before;
  } else {
    seen.pools_reported = true;
  }
  for (const PoolSeen& p : pools) n.pools.push_back(p.cfg);

  if (const Field* sf = m.get("static"))
    if (const auto items = sequence(c, *sf,
                                    "static mappings like {protocol: tcp, inside: 100.64.0.20:8080, "
                                    "public: 198.51.100.30:80}",
                                    true))
      for (const Field& item : *items) {
        statics.emplace_back();
        statics.back().item = item;
        read_static(c, statics.back(), pools, std::span<const StaticSeen>(statics.data(), statics.size() - 1));
        n.static_mappings.push_back(statics.back().map);
      }
}

// Anything the engine finds that the readers did not report is added at the
// `nat` key, so no rule is lost.
void cross_check_with_engine(Checker& c, const GatewayConfig& g, const std::vector<PoolSeen>& pools,
                             const std::vector<StaticSeen>& statics, const NatSeen& seen, const YAML::Mark& root_mark) {
  nat::NatConfig clean = g.nat;
  clean.pools.clear();
  clean.static_mappings.clear();
  for (const PoolSeen& p : pools)
    if (p.clean) clean.pools.push_back(p.cfg);
  for (const StaticSeen& s : statics)
    if (s.clean) clean.static_mappings.push_back(s.map);
  if (seen.passthrough_reported) clean.passthrough = {};  // already reported; the engine checks the defaults
  for (const nat::NatProblem& problem : clean.problems()) {
    if (seen.pools_reported && clean.pools.empty() && problem.code == nat::NatProblem::Code::no_pool) continue;
    if (seen.blocks_reported && problem.code == nat::NatProblem::Code::too_many_blocks) continue;
    const std::string message = "nat: " + problem.text + " (the NAT engine's own check)";
    if (seen.section)
      c.error_at(Code::engine_check, seen.section->key_mark, message);
    else
      c.error_at(Code::engine_check, root_mark, message);
  }
}

}  // namespace passgate::config
