// PublicSet: every public address an engine has served, found in O(1) (one
// hash bucket, one entry) for the checks made per new session (hairpinning)
// and per packet in the dataplane (ARP, local delivery). Immutable once
// built: a reload builds the next one on the control core and the worker
// swaps a pointer. Whether an address still counts as public is decided at
// lookup from the engine's live state (a removed address stops counting once
// drained, a static mapping's address once its last mapping is freed), so
// the set never needs changing between reloads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "table/flow_table.hpp"
#include "nat/nat_config.hpp"

namespace passgate::nat {

using table::FlowHasher;
using table::FlowTable;
using table::no_index;

class PublicSet {
 public:
  struct Entry {
    be32 addr;
    std::uint32_t address = no_index;      // the engine's newest PublicAddress record for it
    std::uint32_t static_slot = no_index;  // its counter of static mappings, if any ever used it
  };

  PublicSet(const FlowHasher& hasher, std::vector<Entry> entries)
      : hasher_(hasher), table_(static_cast<std::uint32_t>(entries.size())), entries_(std::move(entries)) {
    for (std::uint32_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].static_slot != no_index && entries_[i].static_slot >= static_slots_)
        static_slots_ = entries_[i].static_slot + 1;
      table_.insert(hash(entries_[i].addr), i);
      lowest_ = std::min(lowest_, entries_[i].addr.host());
      highest_ = std::max(highest_, entries_[i].addr.host());
    }
  }

  [[nodiscard]] const Entry* find(be32 a) const {
    // Most addresses asked about (every inbound packet's source, for
    // spoofing) are nowhere near the pools: two compares instead of a hash.
    if (!may_contain(a)) return nullptr;
    const std::uint32_t i = table_.find(hash(a), [&](std::uint32_t k) { return entries_[k].addr == a; });
    return i == no_index ? nullptr : &entries_[i];
  }
  // False only for addresses certainly not in the set (outside its bounds).
  [[nodiscard]] bool may_contain(be32 a) const { return a.host() >= lowest_ && a.host() <= highest_; }
  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }
  [[nodiscard]] std::uint32_t static_slots() const { return static_slots_; }
  [[nodiscard]] std::size_t memory_bytes() const { return table_.memory_bytes() + entries_.capacity() * sizeof(Entry); }

 private:
  [[nodiscard]] std::uint64_t hash(be32 a) const { return hasher_(a.raw, 4ull << 40); }

  FlowHasher hasher_;
  FlowTable table_;
  std::vector<Entry> entries_;
  std::uint32_t static_slots_ = 0;
  std::uint32_t lowest_ = 0xffffffffu, highest_ = 0;  // host order; empty: lowest_ > highest_
};

}  // namespace passgate::nat
