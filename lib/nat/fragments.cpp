// Fragments (RFC 4787 REQ-14, RFC 5508): the first fragment is translated
// with its session and its rewrite remembered by (direction, src, dst,
// protocol, id); later fragments reuse it, and those that arrive first are
// held, bounded per host (issue 11.6) and in total.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

std::uint64_t Engine::Impl::hash_fragment(const Engine& e, Direction d, be32 src, be32 dst, be16 id, std::uint8_t proto) {
  return e.hasher_((std::uint64_t{src.raw} << 32) | dst.raw,
                   (std::uint64_t{id.raw} << 16) | (std::uint64_t{proto} << 8) | static_cast<std::uint8_t>(d) |
                       (3ull << 40));
}

std::uint32_t Engine::Impl::fragment_bucket(const Engine& e, be32 host) {
  return static_cast<std::uint32_t>(e.hasher_(host.raw, 4ull << 40) & (e.fragment_flows_per_host_.size() - 1));
}

// A first fragment is translated only if its later fragments can be.
DropReason Engine::Impl::fragment_admit(Engine& e, Direction d, const ParsedIpv4& p) {
  if (find_fragment(e, d, p, hash_fragment(e, d, p.src, p.dst, p.ip_id, p.proto)) != no_index)
    return DropReason::none;  // a repeated first fragment
  if (e.free_fragment_flows_.empty()) return DropReason::fragment_table_full;
  if (e.fragment_flows_per_host_[fragment_bucket(e, fragment_host(d, p))] >= e.config_.limits.fragment_flows_per_host)
    return DropReason::fragment_host_limit;
  return DropReason::none;
}

std::uint32_t Engine::Impl::find_fragment(const Engine& e, Direction d, const ParsedIpv4& p, std::uint64_t h) {
  return e.fragment_table_.find(h, [&](std::uint32_t i) {
    const FragmentFlow& f = e.fragment_flows_[i];
    return f.src == p.src && f.dst == p.dst && f.id == p.ip_id && f.proto == p.proto && f.dir == d &&
           f.expires_ms > e.now_ms_;
  });
}

void Engine::Impl::remember_fragment(Engine& e, Direction d, std::uint8_t* ip, const ParsedIpv4& p, Verdict verdict) {
  const auto* h = reinterpret_cast<const Ipv4Header*>(ip);
  const std::uint64_t key = hash_fragment(e, d, p.src, p.dst, p.ip_id, p.proto);
  std::uint32_t i = find_fragment(e, d, p, key);
  const std::uint64_t deadline = e.now_ms_ + e.config_.timeouts.fragment_ms;
  std::uint64_t queued = deadline;
  std::uint32_t bucket = fragment_bucket(e, fragment_host(d, p));
  if (i == no_index) {
    if (e.free_fragment_flows_.empty()) return;
    i = e.free_fragment_flows_.back();
    if (!e.fragment_table_.insert(key, i)) return;
    e.free_fragment_flows_.pop_back();
    e.fragment_fifo_[e.fragment_head_++ % e.fragment_fifo_.size()] = i;
    ++e.fragment_flows_per_host_[bucket];
  } else {
    queued = e.fragment_flows_[i].queued_ms;  // still filed under its old deadline
    bucket = e.fragment_flows_[i].host_bucket;
  }
  FragmentFlow& f = e.fragment_flows_[i];
  ChecksumDelta delta;
  delta.add(p.src, h->src).add(p.dst, h->dst);
  f = FragmentFlow{p.src, p.dst, h->src, h->dst, p.ip_id, p.proto, d, verdict, delta.folded(), deadline, queued,
                   bucket};
  // Fragments that overtook this one can go now.
  for (HeldFragment& held : e.held_fragments_) {
    if (held.state != HeldFragment::State::held || held.dir != d) continue;
    std::uint8_t* bytes = e.held_buffer_.data() + held.buffer_offset;
    const auto* hh = reinterpret_cast<const Ipv4Header*>(bytes);
    if (hh->src != p.src || hh->dst != p.dst || hh->identification != p.ip_id || hh->protocol != p.proto) continue;
    apply_fragment(bytes, f);
    held.state = HeldFragment::State::ready;
    held.verdict = verdict;
    --e.fragments_held_per_host_[held.host_bucket];
    ++e.released_count_;
  }
}

void Engine::Impl::apply_fragment(std::uint8_t* ip, const FragmentFlow& f) {
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->src = f.new_src;
  h->dst = f.new_dst;
  h->checksum = ChecksumDelta(f.ip_delta).apply(h->checksum);
}

Result Engine::Impl::later_fragment(Engine& e, Direction d, std::uint8_t* ip, const ParsedIpv4& p) {
  const std::uint32_t i = find_fragment(e, d, p, hash_fragment(e, d, p.src, p.dst, p.ip_id, p.proto));
  if (i != no_index) {
    const FragmentFlow& f = e.fragment_flows_[i];
    apply_fragment(ip, f);
    e.counters_.add(NatCounter::fragments_translated);
    if (f.verdict == Verdict::to_inside && d == Direction::outbound) e.counters_.add(NatCounter::hairpinned);
    return {f.verdict, DropReason::none};
  }
  if (p.total_length > e.config_.fragment_hold_bytes) return drop(DropReason::fragment_too_large);
  const bool known = d == Direction::inbound ? is_public(e, p.dst) : find_subscriber(e, p.src) != no_index;
  if (!known) return drop(DropReason::fragment_unknown_host);
  const std::uint32_t bucket = fragment_bucket(e, fragment_host(d, p));
  if (e.fragments_held_per_host_[bucket] >= e.config_.limits.fragments_held_per_host)
    return drop(DropReason::fragment_host_limit);
  for (HeldFragment& held : e.held_fragments_) {
    if (held.state != HeldFragment::State::free) continue;
    held.host_bucket = bucket;
    ++e.fragments_held_per_host_[bucket];
    std::memcpy(e.held_buffer_.data() + held.buffer_offset, ip, p.total_length);
    held.state = HeldFragment::State::held;
    held.dir = d;
    held.length = p.total_length;
    held.expires_ms = e.now_ms_ + e.config_.timeouts.fragment_ms;
    ++e.held_fragment_count_;
    e.counters_.add(NatCounter::fragments_held);
    return {Verdict::held, DropReason::none};
  }
  return drop(DropReason::fragment_hold_full);
}

void Engine::Impl::expire_fragments(Engine& e, std::uint64_t now_ms) {
  while (e.fragment_tail_ != e.fragment_head_) {
    const std::uint32_t i = e.fragment_fifo_[e.fragment_tail_ % e.fragment_fifo_.size()];
    FragmentFlow& f = e.fragment_flows_[i];
    if (f.queued_ms != f.expires_ms) {
      // Refreshed since it was filed: file it again under its real
      // deadline. The timeout is one constant, so the FIFO stays in
      // deadline order and nothing behind this flow waits for it.
      ++e.fragment_tail_;
      f.queued_ms = f.expires_ms;
      e.fragment_fifo_[e.fragment_head_++ % e.fragment_fifo_.size()] = i;
      continue;
    }
    if (f.expires_ms > now_ms) break;
    ++e.fragment_tail_;
    e.fragment_table_.erase(hash_fragment(e, f.dir, f.src, f.dst, f.id, f.proto), i);
    --e.fragment_flows_per_host_[f.host_bucket];
    e.free_fragment_flows_.push_back(i);
  }
  if (e.held_fragment_count_ == 0) return;
  for (HeldFragment& held : e.held_fragments_) {
    if (held.state == HeldFragment::State::held && held.expires_ms <= now_ms) {
      held.state = HeldFragment::State::free;
      --e.fragments_held_per_host_[held.host_bucket];
      --e.held_fragment_count_;
      e.counters_.add(DropReason::fragment_timeout);
    }
  }
}

}  // namespace passgate::nat
