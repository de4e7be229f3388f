// Hot reload: what a new policy may change while traffic flows
// (reconfigure_problems), the addresses still draining, and the worker's
// O(what changed) part of a reload (apply; the plan is built on the control
// core by reload_plan.cpp).
#include "nat/engine_internal.hpp"

#include <fmt/format.h>
#include <map>

#include "nat/reload_plan.hpp"

namespace passgate::nat {

std::vector<std::string> Engine::reconfigure_problems(const NatConfig& running, const NatConfig& next,
                                                      std::span<const DrainingAddress> draining) {
  std::vector<std::string> problems = next.validate();
  const auto fixed = [&](const char* what, std::uint64_t was, std::uint64_t now) {
    if (was != now)
      problems.push_back(fmt::format("nat.{} changes from {} to {}: table sizes are fixed at start, restart passgate to "
                                     "change it",
                                     what, was, now));
  };
  fixed("max_sessions", running.max_sessions, next.max_sessions);
  fixed("max_subscribers", running.max_subscribers, next.max_subscribers);
  fixed("fragments.flows", running.fragment_flows, next.fragment_flows);
  fixed("fragments.hold_slots", running.fragment_hold_slots, next.fragment_hold_slots);
  fixed("fragments.hold_bytes", running.fragment_hold_bytes, next.fragment_hold_bytes);
  fixed("event_ring", running.event_ring_size, next.event_ring_size);
  fixed("passthrough.esp.max_sas", running.passthrough.esp.max_sas, next.passthrough.esp.max_sas);
  fixed("passthrough.esp.hold_packets", running.passthrough.esp.hold_packets, next.passthrough.esp.hold_packets);
  fixed("passthrough.pptp.max_calls", running.passthrough.pptp.max_calls, next.passthrough.pptp.max_calls);
  fixed("passthrough.gre.max_tunnels", running.passthrough.gre.max_tunnels, next.passthrough.gre.max_tunnels);
  if (running.random_seed != next.random_seed)
    problems.push_back("nat.random_seed changes: the hash keys of every table depend on it, restart passgate to change it");
  // The per-subscriber block list is sized at start for the largest limit.
  std::uint32_t slots = 0, wanted = 0;
  for (const PoolConfig& pc : running.pools) slots = std::max<std::uint32_t>(slots, pc.max_blocks_per_subscriber);
  for (const PoolConfig& pc : next.pools) wanted = std::max<std::uint32_t>(wanted, pc.max_blocks_per_subscriber);
  if (wanted > slots)
    problems.push_back(fmt::format("max_blocks_per_subscriber {} is above the {} this run was started with: restart "
                                   "passgate to raise it",
                                   wanted, slots));
  const auto lower = [](be32 a, be32 b) { return a.host() < b.host(); };
  for (const PoolConfig& now : next.pools)
    for (const PoolConfig& was : running.pools) {
      if (was.name == now.name) {
        if (!same_geometry(was, now) && (was.mode == PoolMode::deterministic || now.mode == PoolMode::deterministic))
          problems.push_back(fmt::format(
              "pool '{}': its mode or deterministic mapping (subscriber prefixes, public addresses, ports or "
              "sharing_ratio) changes, which would move subscribers' ranges under sessions that may be in use; "
              "restart passgate to change it (the new mapping is logged at start), or remove the pool (reload), let it "
              "drain, then add it back",
              now.name));
        else if (!same_geometry(was, now))
          problems.push_back(fmt::format(
              "pool '{}': port_min, port_max or block_size changes under port blocks that may be in use; remove the "
              "pool (reload), let it drain, then add it back, or restart passgate",
              now.name));
        continue;
      }
      for (const AddressRange& r : now.public_addresses)
        for (const AddressRange& o : was.public_addresses)
          if (r.first.host() <= o.last.host() && o.first.host() <= r.last.host())
            problems.push_back(fmt::format(
                "pool '{}': public addresses {}-{} belong to pool '{}' in the running policy; remove them there "
                "first and let them drain (two pools' port blocks on one address would make the logs ambiguous)",
                now.name, to_string(std::max(r.first, o.first, lower)), to_string(std::min(r.last, o.last, lower)),
                was.name));
    }

  // What the engines still hold: an address that an earlier reload removed
  // from a pool and that still carries port blocks may come back to that
  // pool (same name and port geometry), not join another.
  struct Range {
    std::uint32_t first, last, pool;
  };
  std::vector<Range> ranges;
  for (std::uint32_t k = 0; k < next.pools.size(); ++k)
    for (const AddressRange& r : next.pools[k].public_addresses) ranges.push_back({r.first.host(), r.last.host(), k});
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.first < b.first; });
  struct Moved {
    std::uint32_t first = 0xffffffffu, last = 0, addresses = 0, blocks = 0;
  };
  std::map<std::pair<std::uint32_t, std::string>, Moved> moved;  // (next pool, draining pool)
  std::vector<const DrainingAddress*> sorted;
  for (const DrainingAddress& d : draining) sorted.push_back(&d);
  std::sort(sorted.begin(), sorted.end(), [](const DrainingAddress* a, const DrainingAddress* b) {
    return a->address.host() < b->address.host();
  });
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const DrainingAddress& d = *sorted[i];
    const std::uint32_t a = d.address.host();
    auto it = std::upper_bound(ranges.begin(), ranges.end(), a, [](std::uint32_t v, const Range& r) { return v < r.first; });
    if (it == ranges.begin() || (--it)->last < a) continue;  // not in the next policy: keeps draining
    const PoolConfig& to = next.pools[it->pool];
    // (A deterministic pool's block size is per engine: its mode and ports identify it.)
    if (to.name == d.pool && to.port_min == d.port_min && to.port_max == d.port_max && to.mode == d.mode &&
        (d.mode == PoolMode::deterministic || to.block_size == d.block_size))
      continue;  // back in its own pool
    Moved& m = moved[{it->pool, d.pool}];
    m.blocks += d.blocks_in_use;  // every engine's blocks on it
    if (i > 0 && sorted[i - 1]->address == d.address) continue;  // counted for another engine already
    m.first = std::min(m.first, a);
    m.last = std::max(m.last, a);
    ++m.addresses;
  }
  for (const auto& [key, m] : moved) {
    const std::string& to = next.pools[key.first].name;
    const std::string what =
        m.addresses == 1 ? fmt::format("public address {}", to_string(be32::from_host(m.first)))
                         : fmt::format("{} public addresses from {} to {}", m.addresses, to_string(be32::from_host(m.first)),
                                       to_string(be32::from_host(m.last)));
    problems.push_back(fmt::format(
        "pool '{}': {} still drain{} in pool '{}' ({} port block{} in use), removed from it by an earlier reload; "
        "two pools' port blocks on one address would make the logs ambiguous: wait until passgatectl pools shows "
        "them drained, or put them back in pool '{}'",
        to, what, m.addresses == 1 ? "s" : "", key.second, m.blocks, m.blocks == 1 ? "" : "s", key.second));
  }
  return problems;
}

namespace {
template <typename Pools, typename Out>
void report_draining(const BlockAllocator::PublicAddress& a, const Pools& pools, Out& out) {
  if (a.free_blocks == a.blocks) return;  // drained (a retired address never gets a block again)
  const PoolConfig& pc = pools[a.pool].config;
  out.push_back(
      DrainingAddress{a.addr, pc.name, pc.port_min, pc.port_max, pc.block_size, pc.mode, a.blocks - a.free_blocks});
}
}  // namespace

std::vector<DrainingAddress> Engine::draining_addresses() const {
  std::vector<DrainingAddress> out;
  for (const Retired& x : retiring_) report_draining(blocks_.address(x.index), pools_, out);
  return out;
}

// Only the removed records whose address `next` puts in another pool (by
// name and port geometry) than their own: for each range of the next policy
// and each other pool with removed records, one binary search in the list of
// retired records (sorted by pool, then address). An address coming back to
// its own pool costs nothing.
std::vector<DrainingAddress> Engine::draining_addresses(const NatConfig& next) const {
  std::vector<DrainingAddress> out;
  const auto before = [](const Retired& x, std::pair<std::uint32_t, std::uint32_t> k) {
    return x.pool != k.first ? x.pool < k.first : x.addr.host() < k.second;
  };
  for (auto seg = retiring_.begin(); seg != retiring_.end();) {
    const std::uint32_t q = seg->pool;
    const auto seg_end = std::lower_bound(seg, retiring_.end(), std::pair{q + 1, 0u}, before);
    const PoolConfig& own = pools_[q].config;
    for (const PoolConfig& pc : next.pools) {
      if (pc.name == own.name && same_geometry(pc, own)) continue;  // coming back is allowed
      for (const AddressRange& r : pc.public_addresses)
        for (auto it = std::lower_bound(seg, seg_end, std::pair{q, r.first.host()}, before);
             it != seg_end && it->addr.host() <= r.last.host(); ++it)
          report_draining(blocks_.address(it->index), pools_, out);
    }
    seg = seg_end;
  }
  return out;
}

// The worker's part of a reload (reload_plan.hpp): O(what changed), no
// allocation; everything swapped out stays in the plan.
ReconfigureResult Engine::apply(ReloadPlan& p) {
  if (p.engine_ != this || p.layout_version_ != layout_version_ || !blocks_.fits(p.blocks_)) {
    ReconfigureResult refused;
    refused.applied = false;
    return refused;
  }
  ReconfigureResult r = p.result_;
  std::uint64_t ops = 0;
  applying_ = true;
  std::swap(config_, p.config_);
  esp_.update_config(config_.passthrough.esp);
  pptp_.update_config(config_.passthrough.pptp);
  gre_.update_config(config_.passthrough.gre);
  fragments_.update_config(fragment_config_of(config_));

  if (!p.new_pools_.empty()) {
    if (pools_.size() + p.new_pools_.size() > pools_.capacity()) {  // the plan made room
      for (Pool& pool : pools_) p.pools_room_.push_back(std::move(pool));
      pools_.swap(p.pools_room_);
      ops += pools_.size();
    }
    for (Pool& pool : p.new_pools_) pools_.push_back(std::move(pool));
    ops += p.new_pools_.size();
  }
  for (ReloadPlan::PoolUpdate& u : p.pool_updates_) {
    Pool& pool = pools_[u.pool];
    pool.retired = u.retire;
    if (!u.retire) std::swap(pool.config, u.config);
    if (u.addresses_changed) pool.addresses.swap(u.addresses);
    ++ops;
  }
  pool_order_.swap(p.pool_order_);

  ops += blocks_.adopt(p.blocks_);
  for (const std::uint32_t idx : p.retire_) blocks_.set_retired(idx, true);
  for (const std::uint32_t idx : p.unretire_) blocks_.set_retired(idx, false);
  ops += p.retire_.size() + p.unretire_.size();
  retiring_.swap(p.retiring_);
  if (p.public_set_) {
    std::swap(public_set_, p.public_set_);
    ++ops;
  }
  if (p.static_slots_ > static_refs_.capacity()) {  // the plan made room
    p.static_refs_room_.assign(static_refs_.begin(), static_refs_.end());
    p.static_refs_room_.resize(p.static_slots_, 0);
    static_refs_.swap(p.static_refs_room_);
    ops += static_refs_.size();
  } else {
    static_refs_.resize(p.static_slots_, 0);
  }

  // Static mappings: removed ones drain (or go at once when idle), added
  // ones are filed unless a live mapping holds an endpoint (retried by the
  // next reload); a draining one that comes back is live again.
  const auto find_static = [&](const StaticMapping& sm) -> std::uint32_t {
    const Proto proto = sm.protocol == packet::ip_proto::tcp ? Proto::tcp : Proto::udp;
    const std::uint32_t m = Impl::find_mapping_in(*this, Impl::hash_mapping(*this, proto, sm.inside_address, sm.inside_port),
                                                  proto, sm.inside_address, sm.inside_port);
    if (m == no_index || mappings_[m].is_static == 0) return no_index;
    const Mapping& map = mappings_[m];
    const StaticMapping as_config{sm.protocol, map.in_addr, map.in_port, map.out_addr, map.out_port};
    return same_static(as_config, sm) ? m : no_index;
  };
  for (const StaticMapping& sm : p.static_removed_) {
    ++ops;
    const std::uint32_t m = find_static(sm);
    if (m == no_index || mappings_[m].is_static != 1) continue;  // never applied (a conflict)
    if (mappings_[m].sessions == 0) {
      if (const std::uint32_t slot = Impl::static_slot(*this, sm.public_address); slot != no_index) --static_refs_[slot];
      Impl::free_static_mapping(*this, m);
      ++r.static_removed;
    } else {
      mappings_[m].is_static = static_draining;
      ++r.static_draining;
    }
  }
  if (!p.static_added_.empty() && static_mappings_.size() + p.static_added_.size() > static_mappings_.capacity() &&
      p.static_list_room_.capacity() >= static_mappings_.size() + p.static_added_.size()) {
    p.static_list_room_.assign(static_mappings_.begin(), static_mappings_.end());
    static_mappings_.swap(p.static_list_room_);
    ops += static_mappings_.size();
  }
  for (const StaticMapping& sm : p.static_added_) {
    ++ops;
    if (const std::uint32_t m = find_static(sm); m != no_index) {
      mappings_[m].is_static = 1;
      continue;
    }
    if (Impl::add_static(*this, sm)) {
      ++r.static_added;
    } else {
      ++r.static_conflicts;
      counters_.add(NatCounter::static_mapping_conflicts);
      p.static_pending_.push_back(sm);
    }
  }
  static_pending_.swap(p.static_pending_);

  applying_ = false;
  ++layout_version_;
  counters_.add(NatCounter::reloads_applied);
  r.worker_operations = ops;
  return r;
}

ReconfigureResult Engine::reconfigure(const NatConfig& next) { return apply(*plan_reload(next)); }

}  // namespace passgate::nat
