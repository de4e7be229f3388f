// The operator's look-ups (passgatectl, telemetry, Prometheus): mappings,
// sessions and blocks of one subscriber or public port, pool use and memory.
// They run on the worker between bursts, so each is bounded by what it
// reports, never a walk of a whole table.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

const Mapping* Engine::find_mapping(Proto proto, be32 in_addr, be16 in_port) const {
  const std::uint32_t m = Impl::find_mapping_in(*this, Impl::hash_mapping(*this, proto, in_addr, in_port), proto, in_addr, in_port);
  return m == no_index ? nullptr : &mappings_[m];
}

const Session* Engine::find_session_in(Proto proto, be32 in_addr, be16 in_port, be32 rem_addr, be16 rem_port) const {
  const std::uint32_t i = Impl::find_in2out(*this, Impl::hash_in(*this, proto, in_addr, in_port, rem_addr, rem_port),
                                            proto, in_addr, in_port, rem_addr, rem_port);
  return i == no_index ? nullptr : &sessions_[i];
}

be32 Engine::subscriber_public_address(be32 subscriber) const {
  const std::uint32_t i = Impl::find_subscriber(*this, subscriber);
  return i == no_index ? be32{0} : blocks_.address(subscribers_[i].address).addr;
}

// O(public addresses in the policy and draining), not O(every address ever served).
std::vector<PoolUsage> Engine::pool_usage() const {
  std::vector<PoolUsage> out;
  for (const Pool& p : pools_) {
    PoolUsage u;
    u.name = p.config.name;
    u.retired = p.retired;
    u.subscribers = p.subscribers;
    u.exhaustion_events = p.exhaustion_events;
    out.push_back(u);
  }
  const auto count = [&](const BlockAllocator::PublicAddress& a) {
    PoolUsage& u = out[a.pool];
    const std::uint32_t per = a.blocks;
    const std::uint32_t used = per - a.free_blocks;
    const bool retired = Impl::address_retired(*this, a);
    if (retired && used == 0) return;  // drained
    (retired ? u.addresses_draining : u.addresses) += 1;
    u.blocks_total += per;
    u.blocks_in_use += used;
  };
  for (const Pool& p : pools_)
    if (!p.retired)
      for (const std::uint32_t idx : p.addresses) count(blocks_.address(idx));
  for (const Retired& x : retiring_) count(blocks_.address(x.index));  // a removed pool's included
  // A retired pool that has drained completely is no longer reported.
  std::erase_if(out, [](const PoolUsage& u) { return u.retired && u.blocks_in_use == 0 && u.subscribers == 0; });
  return out;
}

bool Engine::is_public_address(be32 a) const { return Impl::is_public(*this, a); }

// Runs on the worker between bursts, so it must not walk the whole mapping
// table (16M entries would stall the packet loop): it looks up the ports of
// the subscriber's own blocks, its preserved ports and the static mappings.
std::vector<Session> Engine::subscriber_sessions(be32 subscriber, std::size_t limit) const {
  std::vector<Session> out;
  const auto take = [&](std::uint32_t m) {
    if (m == no_index || mappings_[m].in_addr != subscriber) return;
    for (std::uint32_t i = mappings_[m].first_session; i != no_index && out.size() < limit; i = sessions_[i].mapping_next)
      out.push_back(sessions_[i]);
  };
  const auto visit_port = [&](be32 pub, be16 port) {
    for (const Proto proto : {Proto::tcp, Proto::udp, Proto::icmp})
      take(Impl::find_mapping_out(*this, Impl::hash_mapping(*this, proto, pub, port), proto, pub, port));
  };
  if (const std::uint32_t si = Impl::find_subscriber(*this, subscriber); si != no_index) {
    const Subscriber& sub = subscribers_[si];
    const be32 pub = blocks_.address(sub.address).addr;
    const PoolConfig& pc = pools_[sub.pool].config;
    for (const std::uint32_t b : blocks_.blocks_of(si, sub.blocks)) {
      if (out.size() >= limit) break;
      for (std::uint32_t off = 0; off < pc.block_size && out.size() < limit; ++off)
        visit_port(pub, blocks_.port(b, off));
    }
    // Preserved IKE/L2TP ports outside the dynamic range (inside it they
    // are in one of the blocks just walked).
    if (sub.preserved)
      for (const std::uint16_t port : {500, 4500, 1701})
        if (port < pc.port_min || port > pc.port_max) visit_port(pub, be16::from_host(port));
  }
  for (const std::uint32_t m : static_mappings_)
    if (out.size() < limit) take(m);
  return out;
}

std::vector<Session> Engine::mapping_sessions(const Mapping& map, std::size_t limit) const {
  std::vector<Session> out;
  for (std::uint32_t i = map.first_session; i != no_index && out.size() < limit; i = sessions_[i].mapping_next)
    out.push_back(sessions_[i]);
  return out;
}

std::vector<std::uint16_t> Engine::subscriber_blocks(be32 subscriber, std::uint16_t* block_size) const {
  std::vector<std::uint16_t> out;
  const std::uint32_t i = Impl::find_subscriber(*this, subscriber);
  if (i == no_index) return out;
  const Subscriber& s = subscribers_[i];
  if (block_size) *block_size = pools_[s.pool].config.block_size;
  for (const std::uint32_t b : blocks_.blocks_of(i, s.blocks)) out.push_back(blocks_.block(b).first_port);
  return out;
}

const Mapping* Engine::find_mapping_public(Proto proto, be32 public_addr, be16 public_port) const {
  const std::uint32_t m = Impl::find_mapping_out(*this, Impl::hash_mapping(*this, proto, public_addr, public_port),
                                                 proto, public_addr, public_port);
  return m == no_index ? nullptr : &mappings_[m];
}

std::optional<Engine::PortHolder> Engine::port_holder(be32 public_addr, std::uint16_t port) const {
  const PublicSet::Entry* x = public_set_->find(public_addr);
  if (x == nullptr || x->address == no_index) return std::nullopt;
  const BlockAllocator::PublicAddress& a = blocks_.address(x->address);
  const std::uint32_t b = Impl::block_of_port(*this, a, port);
  if (b == no_index || blocks_.block(b).subscriber == no_index) return std::nullopt;
  const Subscriber& s = subscribers_[blocks_.block(b).subscriber];
  const PoolConfig& pc = pools_[s.pool].config;
  return PortHolder{s.addr, pc.name, pc.mode == PoolMode::deterministic, blocks_.block(b).first_port,
                    blocks_.last_port(b, pools_[s.pool].config.block_size), share_.step};
}

const PoolConfig* Engine::subscriber_pool(be32 subscriber) const {
  const std::uint32_t i = Impl::find_subscriber(*this, subscriber);
  return i == no_index ? nullptr : &pools_[subscribers_[i].pool].config;
}

MemoryUse Engine::memory_use() const {
  MemoryUse m{};
  m.sessions = sessions_.size() * sizeof(Session) + free_sessions_.size() * 4;
  m.mappings = mappings_.size() * sizeof(Mapping) + free_mappings_.size() * 4 + held_ring_.size() * sizeof(HeldMapping);
  m.session_tables = in2out_.memory_bytes() + out2in_.memory_bytes();
  m.mapping_tables = mapping_in_.memory_bytes() + mapping_out_.memory_bytes();
  m.timer_wheel = wheel_.memory_bytes();
  m.subscribers = subscribers_.size() * sizeof(Subscriber) + blocks_.list_bytes() +
                  free_subscribers_.size() * 4 + subscriber_table_.memory_bytes();
  m.blocks = blocks_.memory_bytes();
  m.fragments = fragments_.memory_bytes();
  m.total = m.sessions + m.mappings + m.session_tables + m.mapping_tables + m.timer_wheel + m.subscribers + m.blocks +
            m.fragments;
  return m;
}

}  // namespace passgate::nat
