// Engine::plan_reload: the control core's part of a reload (reload_plan.hpp).
// Engine::apply, the worker's part, is in engine.cpp beside the rest of the
// engine's state changes.
#include "nat/reload_plan.hpp"

#include <algorithm>
#include <set>
#include <tuple>
#include <unordered_map>

#include "packet/headers.hpp"

namespace passgate::nat {

ReloadPlan::~ReloadPlan() = default;

namespace {

using StaticKey = std::tuple<std::uint8_t, std::uint32_t, std::uint16_t, std::uint32_t, std::uint16_t>;
StaticKey key_of(const StaticMapping& s) {
  return {s.protocol, s.inside_address.raw, s.inside_port.raw, s.public_address.raw, s.public_port.raw};
}

}  // namespace

std::unique_ptr<ReloadPlan> Engine::plan_reload(const NatConfig& next) const {
  std::unique_ptr<ReloadPlan> plan(new ReloadPlan);
  ReloadPlan& p = *plan;
  ReconfigureResult& r = p.result_;
  p.engine_ = this;
  p.layout_version_ = layout_version_;
  p.config_ = next;
  p.config_.random_seed = config_.random_seed;  // per worker; the keys were derived from it at start
  p.blocks_ = blocks_.grow();

  // Pools: the same name and port geometry is the same pool (a removed one
  // comes back with what it still holds); anything else is a new pool.
  const auto old_pools = static_cast<std::uint32_t>(pools_.size());
  std::vector<bool> live(old_pools, false);
  std::vector<std::uint32_t> index_of(next.pools.size());
  for (std::size_t k = 0; k < next.pools.size(); ++k) {
    const PoolConfig& pc = next.pools[k];
    std::uint32_t pi = no_index;
    for (std::uint32_t i = 0; i < old_pools; ++i)
      if (pools_[i].config.name == pc.name && same_geometry(pools_[i].config, pc) && !live[i]) pi = i;
    if (pi == no_index) {
      pi = old_pools + static_cast<std::uint32_t>(p.new_pools_.size());
      p.new_pools_.push_back(pool_of(pc, share_.step));
      ++r.pools_added;
    } else {
      live[pi] = true;
    }
    index_of[k] = pi;
    p.pool_order_.push_back(pi);
  }
  if (!p.new_pools_.empty() && pools_.capacity() < old_pools + p.new_pools_.size())
    p.pools_room_.reserve(2 * (old_pools + p.new_pools_.size()));

  // Addresses: the record of (pool, address) is the newest record of the
  // address (public_set_) when it belongs to that pool; otherwise a new one,
  // with its port blocks, in new segments.
  std::unordered_map<std::uint32_t, std::uint32_t> created;  // address -> new record
  std::vector<bool> in_next(blocks_.address_count(), false);
  for (std::size_t k = 0; k < next.pools.size(); ++k) {
    const std::uint32_t pi = index_of[k];
    const PoolConfig pc = per_engine(next.pools[k], share_.step);
    std::vector<std::uint32_t> list;
    std::uint64_t n = 0;
    for (const AddressRange& range : pc.public_addresses) n += range.size();
    list.reserve(n);
    for (const AddressRange& range : pc.public_addresses)
      for (std::uint64_t h = range.first.host(); h <= range.last.host(); ++h) {
        const be32 a = be32::from_host(static_cast<std::uint32_t>(h));
        std::uint32_t idx = no_index;
        if (const PublicSet::Entry* x = public_set_->find(a);
            x && x->address != no_index && blocks_.address(x->address).pool == pi)
          idx = x->address;
        // Listed twice in one pool: one record (the pool's list holds it twice).
        if (const auto it = created.find(a.raw); idx == no_index && it != created.end()) idx = it->second;
        if (idx == no_index) {
          idx = blocks_.add_address(p.blocks_, pi, a, pc);
          created[a.raw] = idx;
          ++r.addresses_added;
        } else if (idx < in_next.size()) {
          if (blocks_.address(idx).retired && !in_next[idx]) p.unretire_.push_back(idx);
          in_next[idx] = true;
        }
        list.push_back(idx);
      }
    if (pi >= old_pools) {
      p.new_pools_[pi - old_pools].addresses = std::move(list);
      continue;
    }
    ReloadPlan::PoolUpdate u;
    u.pool = pi;
    u.config = pc;
    u.addresses_changed = list != pools_[pi].addresses;
    if (u.addresses_changed) u.addresses = std::move(list);
    p.pool_updates_.push_back(std::move(u));
  }
  blocks_.finish(p.blocks_);

  // Addresses of a pool in the next policy that it no longer lists drain
  // (their own flag, one write each). A pool the next policy does not name
  // is retired with one flag: its addresses drain with it, and its list is
  // kept for the day it comes back.
  std::vector<std::uint32_t> pool_retired;
  for (std::uint32_t pi = 0; pi < old_pools; ++pi) {
    const Pool& pool = pools_[pi];
    if (live[pi]) {
      for (const std::uint32_t idx : pool.addresses)
        if (!in_next[idx]) p.retire_.push_back(idx);
      continue;
    }
    if (pool.retired) continue;
    ReloadPlan::PoolUpdate u;
    u.pool = pi;
    u.retire = true;
    p.pool_updates_.push_back(std::move(u));
    ++r.pools_retired;
    r.addresses_retired += static_cast<std::uint32_t>(pool.addresses.size());
    pool_retired.insert(pool_retired.end(), pool.addresses.begin(), pool.addresses.end());
  }
  // Duplicates in one pool's list would retire an address twice.
  std::sort(p.retire_.begin(), p.retire_.end());
  p.retire_.erase(std::unique(p.retire_.begin(), p.retire_.end()), p.retire_.end());
  r.addresses_retired += static_cast<std::uint32_t>(p.retire_.size());
  // Every retired record, sorted by pool and address (draining_addresses(next)).
  p.retiring_.reserve(retiring_.size() + p.retire_.size() + pool_retired.size());
  for (const Retired& x : retiring_)
    if (!in_next[x.index]) p.retiring_.push_back(x);
  for (const std::uint32_t idx : p.retire_)
    p.retiring_.push_back(Retired{blocks_.address(idx).pool, blocks_.address(idx).addr, idx});
  for (const std::uint32_t idx : pool_retired)
    p.retiring_.push_back(Retired{blocks_.address(idx).pool, blocks_.address(idx).addr, idx});
  std::sort(p.retiring_.begin(), p.retiring_.end(), [](const Retired& a, const Retired& b) {
    return std::tuple(a.pool, a.addr.host(), a.index) < std::tuple(b.pool, b.addr.host(), b.index);
  });
  p.retiring_.erase(std::unique(p.retiring_.begin(), p.retiring_.end(),
                                [](const Retired& a, const Retired& b) { return a.index == b.index; }),
                    p.retiring_.end());

  // Static mappings: the difference of the running policy and the next,
  // and again those a conflict kept out (retried at every reload).
  std::set<StaticKey> running, pending, wanted;
  for (const StaticMapping& s : config_.static_mappings) running.insert(key_of(s));
  for (const StaticMapping& s : static_pending_) pending.insert(key_of(s));
  for (const StaticMapping& s : next.static_mappings) {
    wanted.insert(key_of(s));
    if (!running.contains(key_of(s)) || pending.contains(key_of(s))) p.static_added_.push_back(s);
  }
  for (const StaticMapping& s : config_.static_mappings)
    if (!wanted.contains(key_of(s)) && !pending.contains(key_of(s))) p.static_removed_.push_back(s);
  p.static_pending_.reserve(p.static_added_.size());
  if (!p.static_added_.empty() && static_mappings_.capacity() < config_.static_mappings.size() + p.static_added_.size())
    p.static_list_room_.reserve(2 * (static_mappings_.capacity() + p.static_added_.size()));

  // The public-address index: rebuilt only when an address is new to it or
  // a static mapping uses an address that has no counter yet.
  std::vector<PublicSet::Entry> entries;
  std::unordered_map<std::uint32_t, std::uint32_t> entry_of;
  bool changed = !created.empty();
  std::uint32_t slots = public_set_->static_slots();
  for (const StaticMapping& s : p.static_added_) {
    const PublicSet::Entry* x = public_set_->find(s.public_address);
    if (!x || x->static_slot == no_index) changed = true;
  }
  if (changed) {
    entries = public_set_->entries();
    entries.reserve(entries.size() + created.size() + p.static_added_.size());
    for (std::uint32_t i = 0; i < entries.size(); ++i) entry_of[entries[i].addr.raw] = i;
    const auto entry = [&](be32 a) -> PublicSet::Entry& {
      const auto [it, fresh] = entry_of.try_emplace(a.raw, static_cast<std::uint32_t>(entries.size()));
      if (fresh) entries.push_back(PublicSet::Entry{a, no_index, no_index});
      return entries[it->second];
    };
    for (const auto& [raw, idx] : created) {
      be32 a;
      a.raw = raw;
      entry(a).address = idx;
    }
    for (const StaticMapping& s : p.static_added_)
      if (PublicSet::Entry& e = entry(s.public_address); e.static_slot == no_index) e.static_slot = slots++;
    p.public_set_ = std::make_unique<const PublicSet>(hasher_, std::move(entries));
  }
  p.static_slots_ = slots;
  if (slots > static_refs_.capacity()) p.static_refs_room_.reserve(2 * slots);
  return plan;
}

}  // namespace passgate::nat
