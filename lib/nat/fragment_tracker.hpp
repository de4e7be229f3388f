// Fragments (RFC 4787 REQ-14, RFC 5508) for one worker's engine. The first
// fragment carries the ports and is translated with a session; its rewrite
// of the IPv4 header is remembered here by (direction, src, dst, protocol,
// id) so that later fragments get the same rewrite. Later fragments that
// arrive before the first are held and released once it has been
// translated.
//
// Issue 11.6: an attacker cannot pin this state. Flows and held fragments are
// bounded per host (the inside source outbound, the public destination
// inbound), counted in slots chosen by a keyed hash of the address so that
// no one can aim at another host's slot; fragments are held only for a host
// the engine serves (the caller says which); a flow refreshed by a repeated
// first fragment moves to its new place in the expiry FIFO instead of
// stalling the flows behind it.
//
// Shaped like the passthrough trackers: construction sizes everything, the
// engine's counters are counted into directly, time is passed in.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "nat/verdict.hpp"
#include "packet/parse.hpp"
#include "stats/nat_counters.hpp"
#include "table/flow_table.hpp"

namespace passgate::nat {

using packet::be16;
using packet::be32;

struct FragmentConfig {
  std::uint32_t flows = 4096;          // first fragments remembered at once (fixed at start)
  std::uint32_t hold_slots = 64;       // later fragments held at once (fixed at start)
  std::uint32_t hold_bytes = 2048;     // largest fragment held (fixed at start)
  std::uint32_t timeout_ms = 2000;     // how long a flow and a held fragment live
  std::uint32_t flows_per_host = 64;   // per inside source (outbound) or public destination (inbound)
  std::uint32_t held_per_host = 8;
};

class FragmentTracker {
 public:
  FragmentTracker(const FragmentConfig& config, const table::FlowHasher& hasher, stats::NatCounters& counters);

  // A reload may change the timeout and the per-host limits; the sizes are
  // fixed at start (Engine::reconfigure_problems refuses to change them).
  void update_config(const FragmentConfig& config);

  // A first fragment is translated only if its later fragments can be.
  [[nodiscard]] DropReason admit(Direction d, const packet::ParsedIpv4& p, std::uint64_t now_ms) const;
  // After the first fragment was translated into `ip`: remember its rewrite
  // and release the later fragments that overtook it.
  void remember(Direction d, const std::uint8_t* ip, const packet::ParsedIpv4& p, Verdict verdict,
                std::uint64_t now_ms);
  // A later fragment: rewritten like its first fragment, or held until it
  // comes when `host_known()` says the engine serves the host.
  template <typename HostKnown>
  Result later(Direction d, std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms,
               HostKnown&& host_known);
  void expire(std::uint64_t now_ms);

  [[nodiscard]] bool has_released() const { return released_count_ != 0; }
  // Hands out the held fragments whose first fragment has been translated.
  template <typename Emit>
  void drain_released(Emit&& emit);

  [[nodiscard]] std::string check_invariants() const;
  [[nodiscard]] std::size_t memory_bytes() const;

 private:
  struct Flow {
    be32 src, dst, new_src, new_dst;
    be16 id;
    std::uint8_t proto;
    Direction dir;
    Verdict verdict;
    std::uint16_t ip_delta;
    std::uint64_t expires_ms;
    std::uint64_t queued_ms;    // the deadline it was filed under in the expiry FIFO
    std::uint32_t host_bucket;  // flows_per_host_ slot it counts in
  };
  struct Held {
    enum class State : std::uint8_t { free, held, ready } state;
    Direction dir;
    Verdict verdict;
    std::uint16_t length;
    std::uint64_t expires_ms;
    std::uint32_t buffer_offset;
    std::uint32_t host_bucket;  // held_per_host_ slot it counts in
  };

  static be32 host_of(Direction d, const packet::ParsedIpv4& p) { return d == Direction::outbound ? p.src : p.dst; }
  [[nodiscard]] std::uint64_t hash(Direction d, be32 src, be32 dst, be16 id, std::uint8_t proto) const;
  [[nodiscard]] std::uint32_t bucket(be32 host) const;
  [[nodiscard]] std::uint32_t find(Direction d, const packet::ParsedIpv4& p, std::uint64_t h,
                                   std::uint64_t now_ms) const;
  static void apply(std::uint8_t* ip, const Flow& f);
  // The part of later() after the flow was not found and the host is known.
  Result hold(Direction d, const std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms);

  FragmentConfig config_;
  table::FlowHasher hasher_;
  stats::NatCounters& counters_;
  std::vector<Flow> flows_;
  std::vector<std::uint32_t> free_flows_;
  table::FlowTable table_;
  std::vector<std::uint32_t> fifo_;  // flows in deadline order (one timeout for all)
  std::uint64_t head_ = 0, tail_ = 0;
  std::vector<Held> held_;
  std::vector<std::uint8_t> held_buffer_;
  std::uint32_t held_count_ = 0;  // held or ready
  std::vector<std::uint16_t> flows_per_host_, held_per_host_;
  std::uint32_t released_count_ = 0;
};

template <typename HostKnown>
Result FragmentTracker::later(Direction d, std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms,
                              HostKnown&& host_known) {
  const std::uint32_t i = find(d, p, hash(d, p.src, p.dst, p.ip_id, p.proto), now_ms);
  if (i != table::no_index) {
    const Flow& f = flows_[i];
    apply(ip, f);
    counters_.add(stats::NatCounter::fragments_translated);
    if (f.verdict == Verdict::to_inside && d == Direction::outbound) counters_.add(stats::NatCounter::hairpinned);
    return {f.verdict, DropReason::none};
  }
  if (p.total_length > config_.hold_bytes) return {Verdict::drop, DropReason::fragment_too_large};
  if (!host_known()) return {Verdict::drop, DropReason::fragment_unknown_host};
  return hold(d, ip, p, now_ms);
}

template <typename Emit>
void FragmentTracker::drain_released(Emit&& emit) {
  if (released_count_ == 0) return;
  for (Held& h : held_) {
    if (h.state != Held::State::ready) continue;
    emit(std::span<std::uint8_t>(held_buffer_.data() + h.buffer_offset, h.length), h.verdict);
    h.state = Held::State::free;
    --released_count_;
    --held_count_;
    counters_.add(stats::NatCounter::fragments_released);
  }
}

}  // namespace passgate::nat
