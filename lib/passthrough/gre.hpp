// GRE version 0 passthrough (RFC 2784, RFC 2890) for tunnels that are not
// PPTP: matched by (inside address, server) outbound and (public address,
// server) inbound. GRE has no ports, so two subscribers sharing a public
// address cannot both hold a tunnel to one server: the second is refused
// and counted rather than given the first one's traffic. The optional GRE
// checksum covers only the GRE header and payload, so only the IPv4 header
// changes. Tunnels expire after the configured idle time, through a timer
// wheel (O(expired) per call, never a scan of the table).
//
// No monopoly (issue 11.9). The slot (public address, server) is not kept
// for ever against others. A subscriber refused for it takes it over when
//   - the holder has been silent both ways for conflict_idle seconds (15 by
//     default, longer than the 10 s keepalive of common routers), or
//   - the holder has kept it for contended_hold seconds (300 by default, the
//     idle timeout: no longer than a contender waited for a silent tunnel
//     before) since another subscriber was first refused. The contention
//     lapses when nobody has been refused for contended_hold seconds.
// The holder's tunnel then ends (tunnels_taken_over; the engine takes it off
// the holder's session count) and its next packets are refused in turn, so
// the same rule later gives the slot back: two subscribers that both need a
// tunnel to one server from one public address share it in turns, and a
// busy holder nobody else asks for keeps it as long as it likes.
#pragma once

#include <cstdint>
#include <vector>

#include "table/flow_table.hpp"
#include "passthrough/config.hpp"
#include "table/timer_wheel.hpp"
#include "packet/parse.hpp"
#include "stats/nat_counters.hpp"

namespace passgate::passthrough {

using packet::be32;

class GreTracker {
 public:
  enum class Outcome : std::uint8_t { forward, drop_disabled, drop_conflict, drop_no_tunnel, drop_table_full };

  GreTracker(const GreConfig& cfg, const table::FlowHasher& hasher, stats::NatCounters& counters);
  // A reload: new switches and timeouts; the table sizes stay those of the start.
  void update_config(const GreConfig& cfg) {
    GreConfig next = cfg;
    next.max_tunnels = cfg_.max_tunnels;
    cfg_ = next;
  }

  // `created`: a new tunnel now counts against `subscriber`. `displaced`:
  // the subscriber whose tunnel this one took over (no_index if none); its
  // tunnel no longer counts against it.
  Outcome outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 public_addr, std::uint32_t subscriber,
                   std::uint64_t now_ms, bool& created, std::uint32_t& displaced);
  Outcome inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms);
  [[nodiscard]] bool has_tunnel(be32 in_addr, be32 server) const { return find_out(in_addr, server) != table::no_index; }

  // Ends tunnels idle past the timeout, at most `budget` looked at per call;
  // on_freed(subscriber) for each.
  template <typename OnFreed>
  void expire(std::uint64_t now_ms, unsigned budget, OnFreed&& on_freed) {
    const std::uint32_t now_s = static_cast<std::uint32_t>(now_ms / 1000);
    wheel_.advance(now_s, budget, [&](std::uint32_t i) -> std::uint32_t {
      const std::uint32_t due = tunnels_[i].last_seen_s + cfg_.timeout;
      if (due > now_s) return due;
      const std::uint32_t sub = tunnels_[i].subscriber;
      free_tunnel(i);
      counters_.add(stats::NatCounter::gre_tunnels_expired);
      on_freed(sub);
      return 0;
    });
  }

  // fn(subscriber) for every live tunnel (Engine::check_invariants).
  template <typename Fn>
  void for_each_subscriber(Fn&& fn) const {
    for (const Tunnel& t : tunnels_)
      if (t.live) fn(t.subscriber);
  }

  [[nodiscard]] std::uint32_t active_tunnels() const { return count_; }

 private:
  struct Tunnel {
    be32 in_addr, out_addr, server;
    std::uint32_t subscriber;
    std::uint32_t last_seen_s;
    std::uint32_t contested_since_s, last_refused_s;  // valid when contested
    std::uint16_t ip_delta;
    bool contested;  // another subscriber was refused this slot
    bool live;
  };
  std::uint32_t find_out(be32 in_addr, be32 server) const;
  std::uint32_t find_in(be32 out_addr, be32 server) const;
  // The holder of a slot another subscriber asks for: true if it must give
  // it up now; otherwise the refusal is noted against it.
  bool yields(Tunnel& holder, std::uint32_t now_s);
  void free_tunnel(std::uint32_t i);

  GreConfig cfg_;
  table::FlowHasher hasher_;
  stats::NatCounters& counters_;  // the engine's: counted where it happens
  std::vector<Tunnel> tunnels_;
  std::vector<std::uint32_t> free_;
  table::FlowTable by_out_, by_in_;
  table::TimerWheel wheel_;
  std::uint32_t count_ = 0;
};

}  // namespace passgate::passthrough
