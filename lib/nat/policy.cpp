// The policy an engine starts with: construction, the public addresses of
// each pool with this worker's port comb, static mappings and the set of
// public addresses the inbound path recognises. Reloads are reload.cpp.
#include "nat/engine_internal.hpp"

#include <fmt/format.h>

#include <unordered_map>

namespace passgate::nat {

// Whether `addr` is one of ours (hairpinning, ARP): in O(1), one lookup in
// the public-address index, then the live state decides: a pool address
// while in the policy or carrying blocks, a static one while a static
// mapping (live or draining) uses it.
bool Engine::Impl::is_public(const Engine& e, be32 addr) {
  const PublicSet::Entry* x = e.public_set_->find(addr);
  if (x == nullptr) return false;
  if (x->address != no_index) {
    const BlockAllocator::PublicAddress& a = e.blocks_.address(x->address);
    if (!address_retired(e, a) || a.free_blocks < a.blocks) return true;
  }
  return x->static_slot != no_index && e.static_refs_[x->static_slot] != 0;
}

// False when the inside or public endpoint is already held by a mapping.
bool Engine::Impl::add_static(Engine& e, const StaticMapping& sm) {
  const Proto proto = sm.protocol == packet::ip_proto::tcp ? Proto::tcp : Proto::udp;
  const std::uint64_t h_in = hash_mapping(e, proto, sm.inside_address, sm.inside_port);
  const std::uint64_t h_out = hash_mapping(e, proto, sm.public_address, sm.public_port);
  if (e.free_mappings_.empty() || find_mapping_in(e, h_in, proto, sm.inside_address, sm.inside_port) != no_index ||
      find_mapping_out(e, h_out, proto, sm.public_address, sm.public_port) != no_index)
    return false;
  const std::uint32_t m = claim_mapping(e, h_in, h_out);
  if (m == no_index) return false;
  const std::uint8_t kept_gen = e.mappings_[m].hold_gen;  // the slot's hold generations go on
  e.mappings_[m] = Mapping{sm.inside_address, sm.public_address, sm.inside_port, sm.public_port, proto, 1, 0, 0, 0,
                           no_index, no_index, 0};
  e.mappings_[m].hold_gen = kept_gen;
  e.static_mappings_.push_back(m);
  ++e.mapping_count_;
  if (const std::uint32_t slot = static_slot(e, sm.public_address); slot != no_index) ++e.static_refs_[slot];
  return true;
}

// The counter of static mappings using a public address (no_index before
// the index is built at start, or when none ever used it).
std::uint32_t Engine::Impl::static_slot(const Engine& e, be32 addr) {
  if (!e.public_set_) return no_index;
  const PublicSet::Entry* x = e.public_set_->find(addr);
  return x ? x->static_slot : no_index;
}

// Hairpinning and ARP (is_public): at start, builds the public-address
// index (each reload's plan builds the next one); afterwards, when a
// removed static mapping's last session has gone (free_static_mapping),
// recounts the static mappings per static public address: O(static
// mappings), never O(public addresses). apply() keeps the counts itself.
void Engine::Impl::rebuild_public_ranges(Engine& e) {
  if (!e.public_set_) {
    std::vector<PublicSet::Entry> entries;
    std::unordered_map<std::uint32_t, std::uint32_t> entry_of;
    const auto entry = [&](be32 a) -> PublicSet::Entry& {
      const auto [it, fresh] = entry_of.try_emplace(a.raw, static_cast<std::uint32_t>(entries.size()));
      if (fresh) entries.push_back(PublicSet::Entry{a, no_index, no_index});
      return entries[it->second];
    };
    for (std::uint32_t i = 0; i < e.blocks_.address_count(); ++i)
      entry(e.blocks_.address(i).addr).address = i;  // newest wins
    std::uint32_t slots = 0;
    for (const std::uint32_t m : e.static_mappings_)
      if (PublicSet::Entry& x = entry(e.mappings_[m].out_addr); x.static_slot == no_index) x.static_slot = slots++;
    e.public_set_ = std::make_unique<const PublicSet>(e.hasher_, std::move(entries));
    e.static_refs_.assign(slots, 0);
  } else if (e.applying_) {
    return;
  }
  std::fill(e.static_refs_.begin(), e.static_refs_.end(), 0u);
  for (const std::uint32_t m : e.static_mappings_)
    if (const std::uint32_t slot = static_slot(e, e.mappings_[m].out_addr); slot != no_index) ++e.static_refs_[slot];
}

namespace {
FlowHasher seeded_hasher(std::uint64_t seed) {
  FlowHasher h;
  h.k0 = splitmix(seed);
  h.k1 = splitmix(seed);
  h.k2 = splitmix(seed);
  return h;
}

// The most blocks a subscriber may hold in any pool: the slots of its block
// list, fixed at start (reconfigure_problems refuses more).
std::uint32_t max_blocks_of(const NatConfig& config) {
  std::uint32_t n = 0;
  for (const PoolConfig& pc : config.pools) n = std::max<std::uint32_t>(n, pc.max_blocks_per_subscriber);
  return n;
}
}  // namespace

Engine::Engine(const NatConfig& config, PortShare share)
    : config_(config),
      share_(std::move(share)),
      hasher_(seeded_hasher(config.random_seed)),
      in2out_(config.max_sessions),
      out2in_(config.max_sessions),
      wheel_(config.max_sessions,
             std::max({config.timeouts.udp, config.timeouts.tcp_established, config.timeouts.tcp_transitory,
                       config.timeouts.icmp})),
      mapping_in_(config.max_sessions + static_cast<std::uint32_t>(config.static_mappings.size())),
      mapping_out_(config.max_sessions + static_cast<std::uint32_t>(config.static_mappings.size())),
      remote_table_(config.max_sessions),
      subscriber_table_(config.max_subscribers),
      blocks_(config.max_subscribers, max_blocks_of(config), share_.step, share_.residue),
      events_(config.event_ring_size),
      fragments_(fragment_config_of(config), hasher_, counters_),
      esp_(config.passthrough.esp, hasher_, counters_),
      pptp_(config.passthrough.pptp, hasher_, counters_),
      gre_(config.passthrough.gre, hasher_, counters_) {}

Engine::~Engine() = default;

Engine::Pool Engine::pool_of(const PoolConfig& config, std::uint16_t step) {
  Pool p{per_engine(config, step), {}, 0, nullptr};
  p.blocks_per_address = blocks_per_address(p.config);
  if (config.mode == PoolMode::deterministic) p.map = std::make_shared<const DeterministicMap>(config);
  return p;
}

std::unique_ptr<Engine> Engine::create(const NatConfig& config, std::vector<std::string>* errors, PortShare share) {
  std::vector<std::string> problems = config.validate();
  if (!problems.empty()) {
    if (errors) *errors = std::move(problems);
    return nullptr;
  }
  if (share.step == 0 || share.workers == 0) share.step = 1;
  // A deterministic range must hold at least one port of every worker's comb.
  for (const PoolConfig& pc : config.pools)
    if (pc.mode == PoolMode::deterministic && per_engine(pc, share.step).block_size == 0) {
      if (errors)
        errors->push_back(fmt::format(
            "pool '{}': {} ports per subscriber cannot be shared by {} workers; expected a lower sharing_ratio, a wider "
            "port range or fewer workers",
            pc.name, deterministic_geometry(pc).ports_per_subscriber, share.step));
      return nullptr;
    }
  std::unique_ptr<Engine> e(new Engine(config, std::move(share)));
  // Hash keys are common to every worker (the same subscriber is paired with
  // the same public address whichever worker sees it); port choices differ.
  std::uint64_t seed = config.random_seed ^ 0x5eed5eed5eed5eedull ^ (std::uint64_t{e->share_.worker} * 0x9e3779b97f4a7c15ull);
  for (auto& word : e->rng_) word = splitmix(seed);

  const std::uint32_t mapping_capacity = config.max_sessions + static_cast<std::uint32_t>(config.static_mappings.size());
  e->sessions_.assign(config.max_sessions, Session{});
  e->free_sessions_.resize(config.max_sessions);
  for (std::uint32_t i = 0; i < config.max_sessions; ++i) e->free_sessions_[i] = config.max_sessions - 1 - i;
  e->mappings_.assign(mapping_capacity, Mapping{});
  e->free_mappings_.resize(mapping_capacity);
  for (std::uint32_t i = 0; i < mapping_capacity; ++i) e->free_mappings_[i] = mapping_capacity - 1 - i;
  e->held_ring_.assign(held_ring_size(config.max_sessions), HeldMapping{});
  e->remotes_.assign(config.max_sessions, RemoteEntry{});
  e->free_remotes_.resize(config.max_sessions);
  for (std::uint32_t i = 0; i < config.max_sessions; ++i) e->free_remotes_[i] = config.max_sessions - 1 - i;

  e->subscribers_.assign(config.max_subscribers, Subscriber{});
  e->free_subscribers_.resize(config.max_subscribers);
  for (std::uint32_t i = 0; i < config.max_subscribers; ++i) e->free_subscribers_[i] = config.max_subscribers - 1 - i;

  for (std::uint32_t pi = 0; pi < config.pools.size(); ++pi) {
    e->pools_.push_back(pool_of(config.pools[pi], e->share_.step));
    const PoolConfig& pc = e->pools_[pi].config;
    e->pool_order_.push_back(pi);
    for (const AddressRange& r : pc.public_addresses)
      for (std::uint64_t a = r.first.host(); a <= r.last.host(); ++a)
        e->pools_[pi].addresses.push_back(
            e->blocks_.add_address(pi, be32::from_host(static_cast<std::uint32_t>(a)), pc));
  }
  for (const StaticMapping& sm : config.static_mappings) Impl::add_static(*e, sm);
  e->subscriber_tokens_ = std::uint64_t{config.limits.new_subscribers_per_second} * 1000;
  Impl::rebuild_public_ranges(*e);

  return e;
}

}  // namespace passgate::nat
