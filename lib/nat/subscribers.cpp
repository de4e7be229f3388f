// Subscribers and their port blocks (RFC 6888 REQ-2..4, REQ-13/14): paired
// pooling, the limits of one subscriber, the token bucket for new subscriber
// records, the counters and events of their port blocks (the blocks
// themselves are block_allocator.hpp), and the block and limit events for
// the log.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

// Paired pooling (RFC 6888 REQ-2): a new subscriber is given one public
// address of its pool, chosen by a keyed hash of its own address so the
// choice is stable across restarts with the same seed (REQ-11), moving on to
// the next address only when that one has no free block.
DropReason Engine::Impl::subscriber_for(Engine& e, be32 addr, std::uint32_t& out, bool need_blocks) {
  out = find_subscriber(e, addr);
  if (out != no_index) {
    if (subscriber_may_grow(e, out)) return DropReason::none;
    out = no_index;
    return DropReason::subscriber_draining;
  }
  std::uint32_t pool = no_index;
  for (std::uint32_t k = 0; k < e.pool_order_.size() && pool == no_index; ++k)
    for (const std::uint32_t i = e.pool_order_[k]; const auto& prefix : e.pools_[i].config.subscribers)
      if (prefix.contains(addr)) {
        pool = i;
        break;
      }
  if (pool == no_index) return DropReason::no_pool;
  if (e.free_subscribers_.empty()) return DropReason::subscriber_table_full;
  const Pool& pl = e.pools_[pool];
  const std::uint32_t n = static_cast<std::uint32_t>(pl.addresses.size());
  if (n == 0) {  // every address of the pool removed by a reload
    log_event_raw(e, NatEvent::Type::pool_exhausted, addr, be32{0}, 0, 0, pool, e.pools_[pool].gate);
    return DropReason::pool_exhausted;
  }
  std::uint32_t chosen = no_index;
  std::uint32_t range = 0;
  if (pl.map) {
    // RFC 7422: the address and range follow from the subscriber's own
    // address; a prefix's network or broadcast address has none.
    const auto slot = pl.map->forward(addr);
    if (!slot || slot->address_index >= n) return DropReason::no_pool;
    chosen = pl.addresses[slot->address_index];
    range = slot->range;
  } else {
    const std::uint32_t start = static_cast<std::uint32_t>(hash_subscriber(e, addr) % n);
    for (std::uint32_t k = 0; k < n; ++k) {
      const std::uint32_t a = pl.addresses[(start + k) % n];
      if (e.blocks_.address(a).free_blocks > 0) {
        chosen = a;
        break;
      }
    }
    // A host behind a port forward needs no block for the forward itself.
    if (chosen == no_index && !need_blocks) chosen = pl.addresses[start];
  }
  if (chosen == no_index) {
    log_event_raw(e, NatEvent::Type::pool_exhausted, addr, be32{0}, 0, 0, pool, e.pools_[pool].gate);
    return DropReason::pool_exhausted;
  }
  if (!take_subscriber_token(e)) return DropReason::subscriber_rate_limited;
  const std::uint32_t i = e.free_subscribers_.back();
  if (!e.subscriber_table_.insert(hash_subscriber(e, addr), i)) return DropReason::subscriber_table_full;
  e.free_subscribers_.pop_back();
  e.subscribers_[i] = Subscriber{};
  e.subscribers_[i].addr = addr;
  e.subscribers_[i].pool = pool;
  e.subscribers_[i].address = chosen;
  e.subscribers_[i].range = range;
  ++e.pools_[pool].subscribers;
  ++e.subscriber_count_;
  e.counters_.add(NatCounter::subscribers_created);
  out = i;
  return DropReason::none;
}

// Issue 11.3: a subscriber whose pool a reload removed, or whose address
// left every prefix of its pool, keeps what it has until it drains and
// gets nothing new (then it is created again under the policy in force).
bool Engine::Impl::subscriber_may_grow(const Engine& e, std::uint32_t sub) {
  const Subscriber& s = e.subscribers_[sub];
  const Pool& pl = e.pools_[s.pool];
  if (pl.retired) return false;
  for (const Ipv4Prefix& prefix : pl.config.subscribers)
    if (prefix.contains(s.addr)) return true;
  return false;
}

// Issue 11.5: new subscriber records per worker, a token bucket of
// limits.new_subscribers_per_second with a burst of one second. Milli-tokens
// keep the refill exact at any rate.
bool Engine::Impl::take_subscriber_token(Engine& e) {
  const std::uint64_t rate = e.config_.limits.new_subscribers_per_second;
  const std::uint64_t full = rate * 1000;
  if (e.now_ms_ > e.subscriber_tokens_ms_) {
    e.subscriber_tokens_ = std::min(full, e.subscriber_tokens_ + (e.now_ms_ - e.subscriber_tokens_ms_) * rate);
    e.subscriber_tokens_ms_ = e.now_ms_;
  }
  if (e.subscriber_tokens_ > full) e.subscriber_tokens_ = full;  // a reload lowered the rate
  if (e.subscriber_tokens_ < 1000) return false;
  e.subscriber_tokens_ -= 1000;
  return true;
}

// A subscriber created for a packet that then failed holds nothing.
void Engine::Impl::release_if_unused(Engine& e, std::uint32_t sub) {
  if (sub == no_index) return;
  const Subscriber& s = e.subscribers_[sub];
  if (s.blocks != 0 || s.sessions != 0 || s.preserved != 0 || s.esp_held != 0) return;
  e.subscriber_table_.erase(hash_subscriber(e, s.addr), sub);
  e.free_subscribers_.push_back(sub);
  --e.pools_[s.pool].subscribers;
  --e.subscriber_count_;
  e.counters_.add(NatCounter::subscribers_freed);
}

// The allocator picks the block (block_allocator.hpp); the engine counts it
// and logs it for the subscriber.
std::uint32_t Engine::Impl::allocate_block(Engine& e, std::uint32_t sub) {
  Subscriber& s = e.subscribers_[sub];
  const BlockAllocator::PublicAddress& a = e.blocks_.address(s.address);
  // A deterministic subscriber's block is fixed (RFC 7422); on an engine
  // whose comb gives the range no port there is none.
  const std::uint32_t b =
      e.pools_[s.pool].map
          ? (s.range < a.blocks ? e.blocks_.allocate_at(sub, a.first_block + s.range, s.blocks) : no_index)
          : e.blocks_.allocate(sub, s.address, s.blocks, [&e] { return xoshiro_next(e.rng_); });
  if (b == no_index) return no_index;
  e.counters_.add(NatCounter::blocks_allocated);
  log_block(e, NatEvent::Type::block_allocated, sub, b);
  return b;
}

// The release is logged while the block still names its subscriber.
void Engine::Impl::release_block(Engine& e, std::uint32_t b) {
  const std::uint32_t sub = e.blocks_.block(b).subscriber;
  log_block(e, NatEvent::Type::block_released, sub, b);
  e.blocks_.release(b, e.subscribers_[sub].blocks);
  e.counters_.add(NatCounter::blocks_released);
  release_if_unused(e, sub);
}

void Engine::Impl::log_block(Engine& e, NatEvent::Type type, std::uint32_t sub, std::uint32_t b) {
  const Subscriber& s = e.subscribers_[sub];
  // A deterministic pool's mapping event already names every block's owner.
  if (!e.pools_[s.pool].config.log_blocks) return;
  NatEvent ev{type, e.now_ms_, s.addr, e.blocks_.address(s.address).addr, e.blocks_.block(b).first_port,
              e.blocks_.last_port(b, e.pools_[s.pool].config.block_size), s.pool};
  ev.port_step = e.share_.step;
  if (!e.events_.push(ev)) e.counters_.add(NatCounter::events_lost);
}

// A single preserved port (IKE, NAT-T, L2TP: always UDP), like a one-port block.
void Engine::Impl::log_port(Engine& e, NatEvent::Type type, std::uint32_t sub, be16 inside_port, std::uint16_t port) {
  const Subscriber& s = e.subscribers_[sub];
  NatEvent ev{type, e.now_ms_, s.addr, e.blocks_.address(s.address).addr, port, port, s.pool};
  ev.protocol = packet::ip_proto::udp;
  ev.inside_port = inside_port;
  if (!e.events_.push(ev)) e.counters_.add(NatCounter::events_lost);
}

// Limit events pass the subscriber's (or pool's) gate (event_ring.hpp).
void Engine::Impl::log_event(Engine& e, NatEvent::Type type, std::uint32_t sub, std::uint16_t first, std::uint16_t last) {
  Subscriber& s = e.subscribers_[sub];
  log_event_raw(e, type, s.addr, e.blocks_.address(s.address).addr, first, last, s.pool, s.gate);
}

void Engine::Impl::log_event_raw(Engine& e, NatEvent::Type type, be32 sub, be32 pub, std::uint16_t first,
  std::uint16_t last, std::uint32_t pool, LimitEventGate& gate) {
  if ((type == NatEvent::Type::pool_exhausted || type == NatEvent::Type::ports_exhausted) && pool < e.pools_.size())
    ++e.pools_[pool].exhaustion_events;
  const LimitEventGate::Kind k = LimitEventGate::kind_of(type);
  if (!gate.admits(k, e.now_ms_, e.config_.limits.limit_event_interval_ms)) {
    e.counters_.add(NatCounter::limit_events_suppressed);
    return;
  }
  NatEvent ev{type, e.now_ms_, sub, pub, first, last, pool};
  ev.suppressed = gate.suppressed(k);
  if (!e.events_.push_low_priority(ev)) {
    e.counters_.add(NatCounter::low_priority_events_lost);
    return;
  }
  gate.sent(k, e.now_ms_);
}

}  // namespace passgate::nat
