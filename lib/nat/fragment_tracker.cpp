#include "nat/fragment_tracker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "nat/mark_free.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace passgate::nat {

using packet::ChecksumDelta;
using packet::Ipv4Header;
using stats::NatCounter;

FragmentTracker::FragmentTracker(const FragmentConfig& config, const table::FlowHasher& hasher,
                                 stats::NatCounters& counters)
    : config_(config), hasher_(hasher), counters_(counters), table_(config.flows) {
  flows_.assign(config.flows, Flow{});
  free_flows_.resize(config.flows);
  for (std::uint32_t i = 0; i < config.flows; ++i) free_flows_[i] = i;
  fifo_.assign(config.flows, 0);
  flows_per_host_.assign(std::bit_ceil(std::max<std::uint32_t>(config.flows, 64)), 0);
  held_per_host_.assign(flows_per_host_.size(), 0);
  held_.assign(config.hold_slots, Held{});
  held_buffer_.assign(std::size_t{config.hold_slots} * config.hold_bytes, 0);
  for (std::uint32_t i = 0; i < config.hold_slots; ++i) {
    held_[i].state = Held::State::free;
    held_[i].buffer_offset = i * config.hold_bytes;
  }
}

void FragmentTracker::update_config(const FragmentConfig& config) {
  config_.timeout_ms = config.timeout_ms;
  config_.flows_per_host = config.flows_per_host;
  config_.held_per_host = config.held_per_host;
}

std::uint64_t FragmentTracker::hash(Direction d, be32 src, be32 dst, be16 id, std::uint8_t proto) const {
  return hasher_((std::uint64_t{src.raw} << 32) | dst.raw,
                 (std::uint64_t{id.raw} << 16) | (std::uint64_t{proto} << 8) | static_cast<std::uint8_t>(d) |
                     (3ull << 40));
}

std::uint32_t FragmentTracker::bucket(be32 host) const {
  return static_cast<std::uint32_t>(hasher_(host.raw, 4ull << 40) & (flows_per_host_.size() - 1));
}

DropReason FragmentTracker::admit(Direction d, const packet::ParsedIpv4& p, std::uint64_t now_ms) const {
  if (find(d, p, hash(d, p.src, p.dst, p.ip_id, p.proto), now_ms) != table::no_index)
    return DropReason::none;  // a repeated first fragment
  if (free_flows_.empty()) return DropReason::fragment_table_full;
  if (flows_per_host_[bucket(host_of(d, p))] >= config_.flows_per_host) return DropReason::fragment_host_limit;
  return DropReason::none;
}

std::uint32_t FragmentTracker::find(Direction d, const packet::ParsedIpv4& p, std::uint64_t h,
                                    std::uint64_t now_ms) const {
  return table_.find(h, [&](std::uint32_t i) {
    const Flow& f = flows_[i];
    return f.src == p.src && f.dst == p.dst && f.id == p.ip_id && f.proto == p.proto && f.dir == d &&
           f.expires_ms > now_ms;
  });
}

void FragmentTracker::remember(Direction d, const std::uint8_t* ip, const packet::ParsedIpv4& p, Verdict verdict,
                               std::uint64_t now_ms) {
  const auto* h = reinterpret_cast<const Ipv4Header*>(ip);
  const std::uint64_t key = hash(d, p.src, p.dst, p.ip_id, p.proto);
  std::uint32_t i = find(d, p, key, now_ms);
  const std::uint64_t deadline = now_ms + config_.timeout_ms;
  std::uint64_t queued = deadline;
  std::uint32_t host_bucket = bucket(host_of(d, p));
  if (i == table::no_index) {
    if (free_flows_.empty()) return;
    i = free_flows_.back();
    if (!table_.insert(key, i)) return;
    free_flows_.pop_back();
    fifo_[head_++ % fifo_.size()] = i;
    ++flows_per_host_[host_bucket];
  } else {
    queued = flows_[i].queued_ms;  // still filed under its old deadline
    host_bucket = flows_[i].host_bucket;
  }
  Flow& f = flows_[i];
  ChecksumDelta delta;
  delta.add(p.src, h->src).add(p.dst, h->dst);
  f = Flow{p.src, p.dst, h->src, h->dst, p.ip_id, p.proto, d, verdict, delta.folded(), deadline, queued, host_bucket};
  // Fragments that overtook this one can go now.
  for (Held& held : held_) {
    if (held.state != Held::State::held || held.dir != d) continue;
    std::uint8_t* bytes = held_buffer_.data() + held.buffer_offset;
    const auto* hh = reinterpret_cast<const Ipv4Header*>(bytes);
    if (hh->src != p.src || hh->dst != p.dst || hh->identification != p.ip_id || hh->protocol != p.proto) continue;
    apply(bytes, f);
    held.state = Held::State::ready;
    held.verdict = verdict;
    --held_per_host_[held.host_bucket];
    ++released_count_;
  }
}

void FragmentTracker::apply(std::uint8_t* ip, const Flow& f) {
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->src = f.new_src;
  h->dst = f.new_dst;
  h->checksum = ChecksumDelta(f.ip_delta).apply(h->checksum);
}

Result FragmentTracker::hold(Direction d, const std::uint8_t* ip, const packet::ParsedIpv4& p,
                             std::uint64_t now_ms) {
  const std::uint32_t host_bucket = bucket(host_of(d, p));
  if (held_per_host_[host_bucket] >= config_.held_per_host) return {Verdict::drop, DropReason::fragment_host_limit};
  for (Held& held : held_) {
    if (held.state != Held::State::free) continue;
    held.host_bucket = host_bucket;
    ++held_per_host_[host_bucket];
    std::memcpy(held_buffer_.data() + held.buffer_offset, ip, p.total_length);
    held.state = Held::State::held;
    held.dir = d;
    held.length = p.total_length;
    held.expires_ms = now_ms + config_.timeout_ms;
    ++held_count_;
    counters_.add(NatCounter::fragments_held);
    return {Verdict::held, DropReason::none};
  }
  return {Verdict::drop, DropReason::fragment_hold_full};
}

void FragmentTracker::expire(std::uint64_t now_ms) {
  while (tail_ != head_) {
    const std::uint32_t i = fifo_[tail_ % fifo_.size()];
    Flow& f = flows_[i];
    if (f.queued_ms != f.expires_ms) {
      // Refreshed since it was filed: file it again under its real
      // deadline. The timeout is one constant, so the FIFO stays in
      // deadline order and nothing behind this flow waits for it.
      ++tail_;
      f.queued_ms = f.expires_ms;
      fifo_[head_++ % fifo_.size()] = i;
      continue;
    }
    if (f.expires_ms > now_ms) break;
    ++tail_;
    table_.erase(hash(f.dir, f.src, f.dst, f.id, f.proto), i);
    --flows_per_host_[f.host_bucket];
    free_flows_.push_back(i);
  }
  if (held_count_ == 0) return;
  for (Held& held : held_) {
    if (held.state == Held::State::held && held.expires_ms <= now_ms) {
      held.state = Held::State::free;
      --held_per_host_[held.host_bucket];
      --held_count_;
      counters_.add(DropReason::fragment_timeout);
    }
  }
}

std::string FragmentTracker::check_invariants() const {
  std::string why;
  std::vector<std::uint32_t> flows_per_host(flows_per_host_.size(), 0);
  std::vector<std::uint32_t> held_per_host(held_per_host_.size(), 0);
  std::vector<std::uint8_t> free_flow;
  if (!mark_free(free_flows_, flows_.size(), free_flow, "fragment flow", &why)) return why;
  for (std::uint32_t i = 0; i < flows_.size(); ++i)
    if (!free_flow[i]) ++flows_per_host[flows_[i].host_bucket];
  std::uint32_t held_total = 0;
  for (const Held& h : held_) {
    if (h.state == Held::State::held) ++held_per_host[h.host_bucket];
    if (h.state != Held::State::free) ++held_total;
  }
  if (held_total != held_count_)
    return fmt::format("held fragments counted {} != {} held or ready", held_count_, held_total);
  for (std::size_t b = 0; b < flows_per_host.size(); ++b)
    if (flows_per_host[b] != flows_per_host_[b] || held_per_host[b] != held_per_host_[b])
      return fmt::format("fragment host slot {} counts {} flows / {} held, {} / {} exist", b, flows_per_host_[b],
                         held_per_host_[b], flows_per_host[b], held_per_host[b]);
  return {};
}

std::size_t FragmentTracker::memory_bytes() const {
  return flows_.size() * sizeof(Flow) + table_.memory_bytes() + held_buffer_.size() + held_.size() * sizeof(Held);
}

}  // namespace passgate::nat
