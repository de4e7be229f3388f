// The NAT44 engine of one worker core: sessions, endpoint-independent
// mappings, CGNAT port blocks, filtering, TCP state, ICMP, hairpinning,
// static mappings and fragments. No DPDK, no locks, no exceptions, no
// allocation after construction. Time is passed in with every call and
// randomness comes from the configured seed, so behaviour is deterministic
// (RFC 4787 REQ-11) and tests can replay it.
//
// Data model:
//   Subscriber  one inside address; owns up to M port blocks, all on one
//               public address (paired pooling, RFC 6888 REQ-2).
//   Mapping     (proto, inside addr, inside port) <-> (public addr, port),
//               shared by every session that uses it: endpoint-independent
//               mapping (RFC 4787 REQ-1, RFC 5382 REQ-1). When its last
//               session ends the port is held for port_reuse_hold seconds
//               (RFC 6888 REQ-8) before it returns to the block.
//   Session     a mapping plus one remote endpoint; found from the inside
//               tuple (in2out) and the outside tuple (out2in) in O(1); carries
//               the precomputed checksum deltas of its rewrite.
// Packets are processed in bursts: parse and hash every packet, prefetch the
// hash buckets, look up and prefetch the sessions, then rewrite. Misses take
// the out-of-line slow path that creates state.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "table/flow_table.hpp"
#include "nat/block_allocator.hpp"
#include "nat/deterministic.hpp"
#include "nat/event_ring.hpp"
#include "nat/fragment_tracker.hpp"
#include "nat/nat_config.hpp"
#include "nat/proto.hpp"
#include "nat/public_set.hpp"
#include "nat/verdict.hpp"
#include "table/timer_wheel.hpp"
#include "passthrough/esp.hpp"
#include "passthrough/gre.hpp"
#include "passthrough/pptp.hpp"
#include "packet/parse.hpp"
#include "stats/nat_counters.hpp"
#include "stats/runtime.hpp"
#include "stats/snapshot.hpp"

namespace passgate::nat {

using stats::DropReason;
using table::HugeVector;
using table::TimerWheel;

// RFC 7857 section 3 / RFC 6146 section 3.5.2, reduced to what decides the
// timeout: established sessions get tcp_established, all others transitory.
enum class TcpState : std::uint8_t { none, syn_out, syn_in, established, fin_out, fin_in, fin_both, reset };
const char* to_string(TcpState s);

struct alignas(64) Session {
  be32 in_addr, out_addr, rem_addr;
  be16 in_port, out_port, rem_port;  // ICMP: identifier in in/out_port, rem_port 0
  Proto proto;
  TcpState tcp_state;
  std::uint8_t flags;              // session_flag::*
  std::uint8_t reserved;
  std::uint16_t ip_delta;          // outbound IPv4 header checksum delta
  std::uint16_t l4_delta;          // outbound transport checksum delta
  std::uint32_t last_seen;         // seconds
  std::uint32_t mapping;
  std::uint32_t mapping_next, mapping_prev;  // sessions of one mapping
};
static_assert(sizeof(Session) == 64, "a session is exactly one cache line");

namespace session_flag {
inline constexpr std::uint8_t hairpin = 0x01;  // remote is one of our public addresses
inline constexpr std::uint8_t inbound_opened = 0x02;
inline constexpr std::uint8_t pptp_control = 0x04;  // TCP to port 1723: Call IDs are translated
inline constexpr std::uint8_t ike = 0x08;           // UDP 500/4500: passthrough.ike.timeout
inline constexpr std::uint8_t l2tp = 0x10;          // UDP 1701: passthrough.l2tp.timeout
inline constexpr std::uint8_t adf_counted = 0x20;   // counted in the address-dependent filter index
}  // namespace session_flag

struct Mapping {
  be32 in_addr, out_addr;
  be16 in_port, out_port;
  Proto proto;
  std::uint8_t is_static;
  std::uint8_t preserved;       // public port = inside port, outside every block (IKE, L2TP)
  std::uint8_t hold_gen;        // which hold a held-ring entry belongs to (with hold_until)
  std::uint32_t sessions;       // live sessions using it
  std::uint32_t first_session;
  std::uint32_t subscriber;     // no_index for static mappings
  std::uint32_t hold_until;     // seconds; set while held after its last session
};
static_assert(sizeof(Mapping) == 32);

// One packet of a burst: the bytes from its IPv4 header to the end of the
// buffer (the engine rewrites them in place) and, after processing, its fate.
struct PacketRef {
  std::span<std::uint8_t> bytes;
  Result result;
};

using stats::PoolUsage;

// What a reload did to one engine.
struct ReconfigureResult {
  std::uint32_t pools_added = 0, pools_retired = 0;
  std::uint32_t addresses_added = 0, addresses_retired = 0;
  std::uint32_t static_added = 0, static_removed = 0, static_draining = 0, static_conflicts = 0;
  // Records and pointers the worker wrote to apply it (ReloadPlan): grows
  // with what changed, not with the size of the policy.
  std::uint64_t worker_operations = 0;
  bool applied = true;  // false: the plan was made for another engine state (nothing changed)
};

// A public address a reload removed that still carries port blocks in an
// engine (Engine::draining_addresses): it may come back to its own pool, but
// not join another until it has drained.
struct DrainingAddress {
  be32 address;
  std::string pool;
  std::uint16_t port_min, port_max, block_size;  // the pool's geometry, which identifies it with its name
  PoolMode mode = PoolMode::dynamic;
  std::uint32_t blocks_in_use;
};

class ReloadPlan;  // reload_plan.hpp

struct MemoryUse {
  std::size_t sessions, mappings, session_tables, mapping_tables, timer_wheel, subscribers, blocks, fragments, total;
};

// The share of the public ports one engine owns when several workers run
// (lib/steering): on every public address the ports p with
// p % step == residue(address), a comb the NIC's RSS delivers to this worker.
// Port blocks are then block_size ports spaced `step` apart (logged with
// RFC 8158 portRangeStepSize). One worker: step 1, every port.
struct PortShare {
  unsigned worker = 0;      // perturbs only the random port choice; hash keys stay common
  unsigned workers = 1;
  std::uint16_t step = 1;
  std::function<std::uint16_t(be32)> residue;  // empty: 0
};

class Engine {
 public:
  static constexpr unsigned max_burst = 64;

  // nullptr with the reasons in *errors when the configuration is unusable.
  static std::unique_ptr<Engine> create(const NatConfig& config, std::vector<std::string>* errors,
                                        PortShare share = {});
  [[nodiscard]] const PortShare& port_share() const { return share_; }
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Why `next` cannot replace `current` in a running engine: table sizes and
  // the seed are fixed at construction, and a pool's port geometry cannot
  // change under blocks that are in use. Empty when a reload may proceed.
  // `draining`: what the engines still hold of earlier reloads (every
  // engine's draining_addresses()); an address draining in one pool cannot
  // join another.
  static std::vector<std::string> reconfigure_problems(const NatConfig& current, const NatConfig& next,
                                                       std::span<const DrainingAddress> draining = {});
  // Removed public addresses that still carry port blocks here: every one
  // (O(addresses ever removed)), or only those `next` puts in another pool
  // than the one they drain in, which is what a reload needs to know
  // (O(ranges x pools x log + such addresses)). Read on the worker's own
  // thread (a control call).
  [[nodiscard]] std::vector<DrainingAddress> draining_addresses() const;
  [[nodiscard]] std::vector<DrainingAddress> draining_addresses(const NatConfig& next) const;
  // A reload in two steps (reload_plan.hpp). plan_reload runs on the control
  // core while the worker keeps forwarding: it reads only what reloads alone
  // change, computes what differs and builds every new record (port blocks
  // of added addresses included). apply runs on the worker between bursts:
  // it swaps pointers and writes the changed records, in time proportional
  // to the change, without allocating (README "Reload"). A plan fits the
  // engine state it was made from: apply refuses another (applied = false).
  [[nodiscard]] std::unique_ptr<ReloadPlan> plan_reload(const NatConfig& next) const;
  ReconfigureResult apply(ReloadPlan& plan);
  // Switches to a new policy (checked with reconfigure_problems) on the
  // worker's own thread, between bursts. Nothing established is cut: a
  // removed pool, public address or static mapping keeps serving the state it
  // already has until that state goes idle ("drain"), and gets nothing new.
  // plan_reload and apply in one call, on the caller's thread.
  ReconfigureResult reconfigure(const NatConfig& next);
  [[nodiscard]] std::vector<PoolUsage> pool_usage() const;
  // Public addresses this engine answers for: every pool and static address
  // of the policy, and removed ones while they still carry state.
  [[nodiscard]] bool is_public_address(be32 a) const;
  // False for addresses that are certainly not public (outside the bounds of
  // every address ever served): the per-packet pre-check before
  // is_public_address().
  [[nodiscard]] bool may_be_public_address(be32 a) const { return public_set_->may_contain(a); }
  // Every session of one subscriber (at most `limit`), for the CLI.
  [[nodiscard]] std::vector<Session> subscriber_sessions(be32 subscriber, std::size_t limit) const;
  // The sessions of one mapping (at most `limit`).
  [[nodiscard]] std::vector<Session> mapping_sessions(const Mapping& map, std::size_t limit) const;
  // The port blocks of one subscriber as first ports, and its pool's block size.
  [[nodiscard]] std::vector<std::uint16_t> subscriber_blocks(be32 subscriber, std::uint16_t* block_size) const;
  // The mapping holding a public address and port, if any.
  [[nodiscard]] const Mapping* find_mapping_public(Proto proto, be32 public_addr, be16 public_port) const;
  // Who holds the port block covering a public address and port (the lawful
  // intercept question), whether or not a session uses the port now.
  struct PortHolder {
    be32 subscriber;
    std::string pool;
    bool deterministic;
    std::uint16_t first_port, last_port, step;  // the block: first, first+step, ... last
  };
  [[nodiscard]] std::optional<PortHolder> port_holder(be32 public_addr, std::uint16_t port) const;
  // The pool of a subscriber with state here.
  [[nodiscard]] const PoolConfig* subscriber_pool(be32 subscriber) const;

  // Translate packets in place. Up to max_burst packets per call.
  void process_burst(Direction dir, std::span<PacketRef> packets, std::uint64_t now_ms);
  Result process(Direction dir, std::span<std::uint8_t> ip_packet, std::uint64_t now_ms);
  // The worker's runtime accounting block (stats/runtime.hpp), or none
  // (tests, tools): process_burst then charges its stages there, lookup for
  // the burst and established / create / passthrough for each run of
  // packets of one kind, one cycle-counter read per run and none per packet.
  void set_runtime(stats::RuntimeCounters* r) { runtime_ = r; }

  // Expire idle sessions, free held ports and stale fragment state, at most
  // `budget` records per call. Call it often (every loop turn or millisecond).
  void expire(std::uint64_t now_ms, unsigned budget = 1024);

  // Out-of-order fragments whose first fragment has arrived, translated and
  // ready to send: emit(bytes, verdict) for each, then their slots are free.
  template <typename Emit>
  void drain_released(Emit&& emit);
  [[nodiscard]] bool has_released() const { return fragments_.has_released() || esp_.has_released(); }
  [[nodiscard]] const passthrough::EspTracker& esp() const { return esp_; }
  [[nodiscard]] const passthrough::PptpTracker& pptp() const { return pptp_; }
  [[nodiscard]] const passthrough::GreTracker& gre() const { return gre_; }

  [[nodiscard]] const stats::NatCounters& counters() const { return counters_; }
  [[nodiscard]] EventRing& events() { return events_; }

  // Introspection for tests, telemetry and the CLI.
  [[nodiscard]] std::uint32_t active_sessions() const { return session_count_; }
  [[nodiscard]] std::uint32_t active_mappings() const { return mapping_count_; }
  [[nodiscard]] std::uint32_t active_subscribers() const { return subscriber_count_; }
  [[nodiscard]] std::uint32_t blocks_in_use() const { return blocks_.blocks_in_use(); }
  [[nodiscard]] const Mapping* find_mapping(Proto proto, be32 in_addr, be16 in_port) const;
  [[nodiscard]] const Session* find_session_in(Proto proto, be32 in_addr, be16 in_port, be32 rem_addr,
                                               be16 rem_port) const;
  // Public address a subscriber is paired with, or 0 if it has no state.
  [[nodiscard]] be32 subscriber_public_address(be32 subscriber) const;
  [[nodiscard]] MemoryUse memory_use() const;
  // Consistency of every table, for unit tests and fuzzers (O(table sizes),
  // never on the packet path): free lists without duplicates, reference
  // counts equal to the objects holding them, per-subscriber session and
  // block counts equal to what exists, gauges equal to the tables. Returns
  // the first violation found, empty when the state is consistent.
  [[nodiscard]] std::string check_invariants() const;
  [[nodiscard]] const NatConfig& config() const { return config_; }

 private:
  struct Impl;
  Engine(const NatConfig& config, PortShare share);

  // ---- types private to the engine ----
  // At most one limit event per type (session limit, ports, pool) and
  // interval; the next one carries how many were suppressed meanwhile.
  struct Subscriber {
    be32 addr;
    std::uint32_t pool;
    std::uint32_t address;   // index of its BlockAllocator::PublicAddress
    std::uint32_t sessions;
    std::uint16_t blocks;     // its count in blocks_ (BlockAllocator::blocks_of)
    std::uint16_t esp_held;   // held ESP packets that keep this handle (EspTracker::take_unpinned)
    std::uint32_t preserved;  // mappings on single preserved ports outside the blocks
    std::uint32_t range;      // deterministic pools: its block on `address` (DeterministicMap::Slot::range)
    LimitEventGate gate{};    // rate of its limit events (issue 11.4)
  };
  struct Pool {
    PoolConfig config;                     // as this engine uses it (per_engine, deterministic.hpp)
    std::vector<std::uint32_t> addresses;  // live ones, in configuration order (kept when the pool is retired)
    std::uint32_t blocks_per_address;
    std::shared_ptr<const DeterministicMap> map;  // deterministic pools only
    bool retired = false;  // removed by a reload: its addresses drain; only reachable again by a reload
    std::uint32_t subscribers = 0;
    std::uint64_t exhaustion_events = 0;
    LimitEventGate gate{};  // pool_exhausted for hosts that got no subscriber record
  };
  // The pool as this engine runs it (policy.cpp).
  static Pool pool_of(const PoolConfig& pc, std::uint16_t step);
  struct HeldMapping {
    std::uint32_t mapping;
    std::uint32_t until;
    std::uint8_t gen;  // Mapping::hold_gen when it was held: a stale entry never frees a later hold
  };
  // Address-dependent filtering (RFC 4787 REQ-8): which remote addresses a
  // mapping has sessions with, found in O(1) instead of walking the
  // mapping's sessions for every unsolicited packet (issue 11.10).
  struct RemoteEntry {
    be32 out_addr, rem_addr;
    be16 out_port;
    Proto proto;
    std::uint8_t reserved;
    std::uint32_t sessions;
  };

  NatConfig config_;
  PortShare share_;
  FlowHasher hasher_;
  std::uint64_t rng_[4];
  std::uint64_t now_ms_ = 0;
  std::uint32_t now_s_ = 0;
  std::uint64_t subscriber_tokens_ = 0;     // milli-tokens of limits.new_subscribers_per_second
  std::uint64_t subscriber_tokens_ms_ = 0;

  HugeVector<Session> sessions_;
  HugeVector<std::uint32_t> free_sessions_;
  std::uint32_t session_count_ = 0;
  FlowTable in2out_, out2in_;
  TimerWheel wheel_;

  HugeVector<Mapping> mappings_;
  HugeVector<std::uint32_t> free_mappings_;
  std::uint32_t mapping_count_ = 0;
  FlowTable mapping_in_, mapping_out_;
  HugeVector<RemoteEntry> remotes_;
  HugeVector<std::uint32_t> free_remotes_;
  FlowTable remote_table_;
  HugeVector<HeldMapping> held_ring_;
  std::uint64_t held_head_ = 0, held_tail_ = 0;

  std::vector<Subscriber> subscribers_;
  std::vector<std::uint32_t> free_subscribers_;
  std::uint32_t subscriber_count_ = 0;
  FlowTable subscriber_table_;

  std::vector<Pool> pools_;  // indices stay stable across reloads; removed pools are retired
  std::vector<std::uint32_t> pool_order_;  // live pools in configuration order (first match wins)
  std::vector<std::uint32_t> static_mappings_;  // mapping indices, draining ones included
  // Every public address served, its port blocks and who owns them.
  BlockAllocator blocks_;
  // Reloads (reload_plan.hpp). Changed only by create() and apply(), so a
  // plan may read them on the control core while the worker runs: the
  // public-address index (O(1) membership, built by the plan), the counts of
  // static mappings per static public address (slots of public_set_), every
  // removed address record (sorted by pool and address; a removed pool's
  // too, whose records keep their own flag and take the pool's), the static
  // mappings of the policy not applied for a conflict (retried next reload).
  std::unique_ptr<const PublicSet> public_set_;
  std::vector<std::uint32_t> static_refs_;
  struct Retired {
    std::uint32_t pool;
    be32 addr;
    std::uint32_t index;
  };
  std::vector<Retired> retiring_;
  std::vector<StaticMapping> static_pending_;
  std::uint64_t layout_version_ = 0;  // +1 per apply: a plan fits the version it was made from
  bool applying_ = false;

  stats::NatCounters counters_;
  stats::RuntimeCounters* runtime_ = nullptr;
  EventRing events_;
  FragmentTracker fragments_;
  passthrough::EspTracker esp_;
  passthrough::PptpTracker pptp_;
  passthrough::GreTracker gre_;

  friend struct Impl;
  friend class ReloadPlan;
};

template <typename Emit>
void Engine::drain_released(Emit&& emit) {
  esp_.drain_released([&](std::span<std::uint8_t> bytes) {
    counters_.add(stats::NatCounter::esp_released);
    emit(bytes, Verdict::to_outside);
  });
  fragments_.drain_released(emit);
}

}  // namespace passgate::nat
