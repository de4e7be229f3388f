// Endpoint-independent mappings (RFC 4787 REQ-1, RFC 5382 REQ-1): a port
// from the subscriber's blocks chosen unpredictably (RFC 6056), or the
// client's own port for IKE/NAT-T/L2TP when free; held for port_reuse_hold
// after the last session (RFC 6888 REQ-8) before the port returns.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

// A free mapping slot filed in both indexes; no_index when none is free or
// an index bucket is full (then nothing is changed).
std::uint32_t Engine::Impl::claim_mapping(Engine& e, std::uint64_t h_in, std::uint64_t h_out) {
  if (e.free_mappings_.empty()) return no_index;
  const std::uint32_t m = e.free_mappings_.back();
  if (!e.mapping_in_.insert(h_in, m)) return no_index;
  if (!e.mapping_out_.insert(h_out, m)) {
    e.mapping_in_.erase(h_in, m);
    return no_index;
  }
  e.free_mappings_.pop_back();
  return m;
}

// IKE, NAT-T and L2TP clients keep their source port when it is free
// (RFC 7296 2.23 makes it optional; some peers still like it). Allowed
// only outside the dynamic range, or inside a block the subscriber owns:
// port-block logs must never name the wrong subscriber for a port.
bool Engine::Impl::try_preserve(Engine& e, std::uint32_t sub, Proto proto, be32 in_addr, be16 in_port, std::uint64_t h_in,
  std::uint32_t& out) {
  if (proto != Proto::udp) return false;
  const auto& pt = e.config_.passthrough;
  const std::uint16_t port = in_port.host();
  if (!((is_ike_port(in_port) && pt.ike.preserve_port) || (port == 1701 && pt.l2tp.preserve_port))) return false;
  Subscriber& s = e.subscribers_[sub];
  const Pool& pl = e.pools_[s.pool];
  const BlockAllocator::PublicAddress& a = e.blocks_.address(s.address);
  const be32 out_addr = a.addr;
  // Replies to a port outside this worker's comb would reach another worker.
  if (!e.blocks_.owns_port(a, port)) return false;
  std::uint32_t block = no_index;
  if (port >= pl.config.port_min && port <= pl.config.port_max) {
    block = block_of_port(e, a, port);
    if (block == no_index || e.blocks_.block(block).subscriber != sub) return false;
  } else if (pl.map) {
    return false;  // a deterministic subscriber's ports stay in its range, so the lookup needs no log
  }
  const std::uint64_t h_out = hash_mapping(e, proto, out_addr, in_port);
  if (find_mapping_out(e, h_out, proto, out_addr, in_port) != no_index) return false;
  const std::uint32_t m = claim_mapping(e, h_in, h_out);
  if (m == no_index) return false;
  const bool outside_blocks = block == no_index;
  const std::uint8_t kept_gen = e.mappings_[m].hold_gen;  // the slot's hold generations go on
  e.mappings_[m] = Mapping{in_addr, out_addr, in_port, in_port, proto, 0, static_cast<std::uint8_t>(outside_blocks),
                           0, 0, no_index, sub, 0};
  e.mappings_[m].hold_gen = kept_gen;
  if (outside_blocks) {
    ++s.preserved;
    log_port(e, NatEvent::Type::port_preserved, sub, in_port, port);
  } else {
    e.blocks_.count_port(block, proto);
  }
  ++e.mapping_count_;
  e.counters_.add(NatCounter::mappings_created);
  e.counters_.add(NatCounter::ports_preserved);
  out = m;
  return true;
}

// RFC 6888 REQ-13/14 and RFC 6056: ports come from the subscriber's blocks;
// inside a block the port is chosen at random, then the next free one.
DropReason Engine::Impl::create_mapping(Engine& e, std::uint32_t sub, Proto proto, be32 in_addr, be16 in_port,
  std::uint64_t h_in, std::uint32_t& out) {
  if (e.free_mappings_.empty()) return DropReason::session_table_full;
  if (try_preserve(e, sub, proto, in_addr, in_port, h_in, out)) return DropReason::none;
  Subscriber& s = e.subscribers_[sub];
  const Pool& pl = e.pools_[s.pool];
  const std::uint16_t size = pl.config.block_size;

  std::uint32_t block = e.blocks_.block_with_room(sub, s.blocks, proto, size, [&e] { return xoshiro_next(e.rng_); });
  if (block == no_index) {
    if (s.blocks >= pl.config.max_blocks_per_subscriber) {
      log_event(e, NatEvent::Type::ports_exhausted, sub, 0, 0);
      return DropReason::ports_exhausted;
    }
    if (address_retired(e, e.blocks_.address(s.address))) return DropReason::subscriber_draining;
    block = allocate_block(e, sub);
    if (block == no_index) {
      log_event(e, NatEvent::Type::pool_exhausted, sub, 0, 0);
      return DropReason::pool_exhausted;
    }
  }

  const be32 out_addr = e.blocks_.address(s.address).addr;
  const std::uint32_t start = static_cast<std::uint32_t>(xoshiro_next(e.rng_) % size);
  be16 out_port{0};
  std::uint64_t h_out = 0;
  for (std::uint32_t k = 0; k < size; ++k) {
    const be16 candidate = e.blocks_.port(block, (start + k) % size);
    h_out = hash_mapping(e, proto, out_addr, candidate);
    if (find_mapping_out(e, h_out, proto, out_addr, candidate) == no_index) {
      out_port = candidate;
      break;
    }
  }
  if (out_port.raw == 0) return DropReason::ports_exhausted;  // only if counts drifted

  const std::uint32_t m = claim_mapping(e, h_in, h_out);
  if (m == no_index) return DropReason::session_table_full;
  const std::uint8_t kept_gen = e.mappings_[m].hold_gen;  // the slot's hold generations go on
  e.mappings_[m] = Mapping{in_addr, out_addr, in_port, out_port, proto, 0, 0, 0, 0, no_index, sub, 0};
  e.mappings_[m].hold_gen = kept_gen;
  e.blocks_.count_port(block, proto);
  ++e.mapping_count_;
  e.counters_.add(NatCounter::mappings_created);
  out = m;
  return DropReason::none;
}

// RFC 6888 REQ-8: the port stays with its mapping for port_reuse_hold
// seconds after the last session; the same inside endpoint coming back in
// that time gets the same public port.
void Engine::Impl::hold_mapping(Engine& e, std::uint32_t m, std::uint32_t idle_since) {
  const std::uint32_t until = std::min(idle_since, e.now_s_) + e.config_.timeouts.port_reuse_hold;
  Mapping& map = e.mappings_[m];
  map.hold_until = until;
  ++map.hold_gen;
  if (e.held_head_ - e.held_tail_ == e.held_ring_.size()) {
    free_mapping(e, m);  // cannot be held: the ring is sized for every mapping
    return;
  }
  e.held_ring_[e.held_head_++ % e.held_ring_.size()] = HeldMapping{m, until, map.hold_gen};
}

// A static mapping a reload removed, once its last session has gone.
void Engine::Impl::free_static_mapping(Engine& e, std::uint32_t m) {
  const Mapping& map = e.mappings_[m];
  e.mapping_in_.erase(hash_mapping(e, map.proto, map.in_addr, map.in_port), m);
  e.mapping_out_.erase(hash_mapping(e, map.proto, map.out_addr, map.out_port), m);
  e.mappings_[m].is_static = 0;
  e.free_mappings_.push_back(m);
  --e.mapping_count_;
  e.counters_.add(NatCounter::mappings_freed);
  std::erase(e.static_mappings_, m);
  rebuild_public_ranges(e);
}

void Engine::Impl::free_mapping(Engine& e, std::uint32_t m) {
  Mapping& map = e.mappings_[m];
  map.hold_until = 0;
  ++map.hold_gen;
  e.mapping_in_.erase(hash_mapping(e, map.proto, map.in_addr, map.in_port), m);
  e.mapping_out_.erase(hash_mapping(e, map.proto, map.out_addr, map.out_port), m);
  e.free_mappings_.push_back(m);
  --e.mapping_count_;
  e.counters_.add(NatCounter::mappings_freed);
  Subscriber& s = e.subscribers_[map.subscriber];
  if (map.preserved) {
    --s.preserved;
    log_port(e, NatEvent::Type::port_released, map.subscriber, map.in_port, map.out_port.host());
    release_if_unused(e, map.subscriber);
    return;
  }
  const std::uint32_t b = block_of_port(e, e.blocks_.address(s.address), map.out_port.host());
  if (e.blocks_.uncount_port(b, map.proto)) release_block(e, b);
}

}  // namespace passgate::nat
