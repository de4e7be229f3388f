// TimerWheel: expiry of idle records without scanning the whole table.
//
// Theory of operation: one slot per second, a power-of-two number of slots.
// A record is filed under the second it is due; advance() walks the slots up
// to "now" and hands each record found to a callback, which checks the
// record's real deadline (last use + timeout): it either frees the record or
// returns a new due time, and the record is filed again. So the packet path
// never touches the wheel: refreshing a session is just storing its
// last-seen time, and the wheel lazily catches up. Due times beyond the
// wheel's horizon are filed at the horizon and re-filed when reached. Links
// live here, not in the records, to keep the records small.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "table/flow_table.hpp"
#include "table/huge_pages.hpp"

namespace passgate::table {

class TimerWheel {
 public:
  TimerWheel(std::uint32_t capacity, std::uint32_t horizon_seconds) {
    // At least 4 slots: a record re-filed while its slot is drained must land
    // in another slot even when capped at the horizon (current + mask).
    const std::uint32_t slots = std::bit_ceil((horizon_seconds < 2u ? 2u : horizon_seconds) + 2u);
    heads_.assign(slots, no_index);
    mask_ = slots - 1;
    next_.assign(capacity, no_index);
    prev_.assign(capacity, no_index);
    slot_of_.assign(capacity, no_index);
  }

  [[nodiscard]] std::size_t memory_bytes() const {
    return heads_.size() * 4 + (next_.size() + prev_.size() + slot_of_.size()) * 4;
  }
  [[nodiscard]] std::uint32_t current() const { return current_; }
  void start_at(std::uint32_t now) { current_ = now; }

  void schedule(std::uint32_t index, std::uint32_t due) {
    if (due <= current_) due = current_ + 1;
    if (due - current_ > mask_) due = current_ + mask_;
    const std::uint32_t slot = due & mask_;
    slot_of_[index] = slot;
    prev_[index] = no_index;
    next_[index] = heads_[slot];
    if (heads_[slot] != no_index) prev_[heads_[slot]] = index;
    heads_[slot] = index;
  }

  void cancel(std::uint32_t index) {
    const std::uint32_t slot = slot_of_[index];
    if (slot == no_index) return;
    if (prev_[index] != no_index) next_[prev_[index]] = next_[index];
    else heads_[slot] = next_[index];
    if (next_[index] != no_index) prev_[next_[index]] = prev_[index];
    slot_of_[index] = no_index;
  }

  // on_due(index) returns 0 when the record was freed, else its new due time.
  // Stops after `budget` records so one call never stalls the packet path;
  // returns the number handled.
  template <typename OnDue>
  unsigned advance(std::uint32_t now, unsigned budget, OnDue&& on_due) {
    unsigned handled = 0;
    // A clock that stands still or steps back has nothing new to expire; it
    // must not rewind current_ (below mask_ + 1 seconds the rewind wraps
    // around and the wheel would never advance again).
    if (now <= current_) return 0;
    // More than a turn behind (a clock jump, or the first call): visiting
    // every slot once is enough, since each record is re-checked when seen.
    if (now - current_ > mask_ + 1) current_ = now - mask_ - 1;
    while (current_ < now) {
      const std::uint32_t slot = (current_ + 1) & mask_;
      while (heads_[slot] != no_index) {
        if (handled == budget) return handled;
        const std::uint32_t index = heads_[slot];
        cancel(index);
        ++handled;
        const std::uint32_t due = on_due(index);
        if (due != 0) schedule_after_slot(index, due);
      }
      ++current_;
    }
    return handled;
  }

 private:
  // While a slot is being drained current_ still points before it; a record
  // due "now" must go to the next slot, not back into the one being drained.
  void schedule_after_slot(std::uint32_t index, std::uint32_t due) {
    const std::uint32_t floor = current_ + 2;
    schedule(index, due < floor ? floor : due);
  }

  HugeVector<std::uint32_t> heads_, next_, prev_, slot_of_;
  std::uint32_t mask_ = 0;
  std::uint32_t current_ = 0;
};

}  // namespace passgate::table
