// Reading a counter that another thread writes: each worker increments its
// own counters with plain stores, and the control core sums them for a
// snapshot while they run. One relaxed atomic load per value: never torn,
// possibly a moment old, and no ordering the snapshot does not need.
#pragma once

#include <atomic>
#include <cstdint>

namespace passgate::stats {

inline std::uint64_t load_relaxed(const std::uint64_t& v) {
  // The counter is not const where it lives (the worker writes it); only
  // this view of it is.
  return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(v)).load(std::memory_order_relaxed);
}

}  // namespace passgate::stats
