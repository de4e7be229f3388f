#include "passthrough/gre.hpp"

#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace passgate::passthrough {

using table::no_index;
using packet::ChecksumDelta;
using packet::Ipv4Header;

namespace {
constexpr std::uint64_t tag_out = 11ull << 40, tag_in = 12ull << 40;
}

GreTracker::GreTracker(const GreConfig& cfg, const table::FlowHasher& hasher, stats::NatCounters& counters)
    : cfg_(cfg), hasher_(hasher), counters_(counters), by_out_(cfg.max_tunnels), by_in_(cfg.max_tunnels), wheel_(cfg.max_tunnels, cfg.timeout) {
  tunnels_.resize(cfg.max_tunnels, Tunnel{});
  free_.resize(cfg.max_tunnels);
  for (std::uint32_t i = 0; i < cfg.max_tunnels; ++i) free_[i] = cfg.max_tunnels - 1 - i;
}

std::uint32_t GreTracker::find_out(be32 in_addr, be32 server) const {
  return by_out_.find(hasher_((std::uint64_t{in_addr.raw} << 32) | server.raw, tag_out), [&](std::uint32_t i) {
    return tunnels_[i].live && tunnels_[i].in_addr == in_addr && tunnels_[i].server == server;
  });
}
std::uint32_t GreTracker::find_in(be32 out_addr, be32 server) const {
  return by_in_.find(hasher_((std::uint64_t{out_addr.raw} << 32) | server.raw, tag_in), [&](std::uint32_t i) {
    return tunnels_[i].live && tunnels_[i].out_addr == out_addr && tunnels_[i].server == server;
  });
}

void GreTracker::free_tunnel(std::uint32_t i) {
  Tunnel& t = tunnels_[i];
  by_out_.erase(hasher_((std::uint64_t{t.in_addr.raw} << 32) | t.server.raw, tag_out), i);
  by_in_.erase(hasher_((std::uint64_t{t.out_addr.raw} << 32) | t.server.raw, tag_in), i);
  wheel_.cancel(i);
  t.live = false;
  free_.push_back(i);
  --count_;
}

bool GreTracker::yields(Tunnel& t, std::uint32_t now_s) {
  if (t.last_seen_s + cfg_.conflict_idle <= now_s) return true;  // silent: a tunnel nobody uses
  // A contention nobody renewed for contended_hold has lapsed: start again.
  if (!t.contested || t.last_refused_s + cfg_.contended_hold < now_s) {
    t.contested = true;
    t.contested_since_s = now_s;
  }
  t.last_refused_s = now_s;
  return t.contested_since_s + cfg_.contended_hold <= now_s;
}

GreTracker::Outcome GreTracker::outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 public_addr,
                                         std::uint32_t subscriber, std::uint64_t now_ms, bool& created,
                                         std::uint32_t& displaced) {
  created = false;
  displaced = no_index;
  if (!cfg_.enabled) {
    return Outcome::drop_disabled;
  }
  const std::uint32_t now_s = static_cast<std::uint32_t>(now_ms / 1000);
  std::uint32_t i = find_out(p.src, p.dst);
  if (i == no_index) {
    if (const std::uint32_t holder = find_in(public_addr, p.dst); holder != no_index) {
      if (!yields(tunnels_[holder], now_s)) {
        return Outcome::drop_conflict;
      }
      displaced = tunnels_[holder].subscriber;
      free_tunnel(holder);
      counters_.add(stats::NatCounter::gre_tunnels_taken_over);
    }
    if (free_.empty()) {
      return Outcome::drop_table_full;
    }
    i = free_.back();
    const std::uint64_t h_out = hasher_((std::uint64_t{p.src.raw} << 32) | p.dst.raw, tag_out);
    const std::uint64_t h_in = hasher_((std::uint64_t{public_addr.raw} << 32) | p.dst.raw, tag_in);
    if (!by_out_.insert(h_out, i)) {
      return Outcome::drop_table_full;
    }
    if (!by_in_.insert(h_in, i)) {
      by_out_.erase(h_out, i);
      return Outcome::drop_table_full;
    }
    free_.pop_back();
    tunnels_[i] = Tunnel{p.src, public_addr, p.dst, subscriber, now_s, 0, 0,
                         ChecksumDelta().add(p.src, public_addr).folded(), false, true};
    wheel_.schedule(i, now_s + cfg_.timeout);
    ++count_;
    counters_.add(stats::NatCounter::gre_tunnels_created);
    created = true;
  }
  Tunnel& t = tunnels_[i];
  t.last_seen_s = now_s;
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->src = t.out_addr;
  h->checksum = ChecksumDelta(t.ip_delta).apply(h->checksum);
  counters_.add(stats::NatCounter::gre_translated_outbound);
  return Outcome::forward;
}

GreTracker::Outcome GreTracker::inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms) {
  if (!cfg_.enabled) {
    return Outcome::drop_disabled;
  }
  const std::uint32_t i = find_in(p.dst, p.src);
  if (i == no_index) {
    return Outcome::drop_no_tunnel;
  }
  Tunnel& t = tunnels_[i];
  t.last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->dst = t.in_addr;
  h->checksum = ChecksumDelta(t.ip_delta).inverse().apply(h->checksum);
  counters_.add(stats::NatCounter::gre_translated_inbound);
  return Outcome::forward;
}

}  // namespace passgate::passthrough
