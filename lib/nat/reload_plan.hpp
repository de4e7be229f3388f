// ReloadPlan: one engine's reload, worked out on the control core.
//
// Theory of operation. A reload must not stall a worker: with a /16 pool the
// policy describes 65,536 public addresses and 8M port blocks, and a worker
// that rebuilt its tables from the new policy would stop forwarding for
// hundreds of milliseconds. So the work is split:
//   - Engine::plan_reload(next), on the control core, while the worker keeps
//     forwarding. It reads only the engine's structure, which nothing but
//     apply() changes (pools, public-address records and their index, the
//     running policy), never the per-packet state. It matches the next
//     policy's pools to the engine's (by name and port geometry), finds each
//     address's record through the public-address index, and lists only what
//     differs: pools added, retired, revived or reconfigured; addresses
//     retired or brought back (a removed pool's, all at once by the pool's
//     flag); static mappings removed or added (the
//     difference of the two policies, plus those a conflict kept out last
//     time). Every new thing is built here: records and port blocks of added
//     addresses in new segments of the engine's segmented arrays, the new
//     address lists of changed pools, the next public-address index, room
//     for vectors that must grow.
//   - Engine::apply(plan), on the worker between two bursts: swaps the
//     prepared vectors and pointers in, links the new segments, flips the
//     retired flag of the addresses listed and adds or drains the static
//     mappings listed. Work proportional to the change (counted in
//     ReconfigureResult::worker_operations), no allocation; what it swaps out
//     stays in the plan, freed on the control core.
// One plan per engine: engines differ in their comb of ports (PortShare), so
// their port blocks differ. A plan fits the engine state it was made from
// (layout version); apply refuses any other.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nat/engine.hpp"

namespace passgate::nat {

class ReloadPlan {
 public:
  ReloadPlan(const ReloadPlan&) = delete;
  ReloadPlan& operator=(const ReloadPlan&) = delete;
  ~ReloadPlan();

  [[nodiscard]] const Engine* engine() const { return engine_; }
  // What apply will report, but for the static mappings (decided on the worker).
  [[nodiscard]] const ReconfigureResult& expected() const { return result_; }
  [[nodiscard]] const NatConfig& config() const { return config_; }

 private:
  friend class Engine;
  ReloadPlan() = default;

  struct PoolUpdate {
    std::uint32_t pool;
    bool retire = false;              // removed from the policy: its addresses drain (one flag)
    bool addresses_changed = false;   // `addresses` replaces the pool's list
    PoolConfig config;                // swapped in (a retired pool keeps its own)
    std::vector<std::uint32_t> addresses;
  };

  const Engine* engine_ = nullptr;
  std::uint64_t layout_version_ = 0;
  NatConfig config_;  // the next policy with the engine's seed; swapped with the engine's
  ReconfigureResult result_;

  std::vector<PoolUpdate> pool_updates_;
  std::vector<Engine::Pool> new_pools_;
  std::vector<Engine::Pool> pools_room_;  // empty with room for every pool, when the engine's vector is full
  std::vector<std::uint32_t> pool_order_;
  BlockAllocator::Growth blocks_;  // records and port blocks of the added addresses
  std::vector<std::uint32_t> retire_, unretire_;
  std::vector<Engine::Retired> retiring_;  // the engine's next list of retired records, sorted by address
  std::unique_ptr<const PublicSet> public_set_;  // nullptr: the engine's stays
  std::vector<std::uint32_t> static_refs_room_;  // with room for every slot, when the engine's vector is full
  std::uint32_t static_slots_ = 0;
  std::vector<StaticMapping> static_removed_, static_added_;
  std::vector<StaticMapping> static_pending_;  // room for those a conflict keeps out
  std::vector<std::uint32_t> static_list_room_;
};

}  // namespace passgate::nat
