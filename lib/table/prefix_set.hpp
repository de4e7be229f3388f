// A set of IPv4 addresses given as prefixes, asked per packet whether it
// holds an address (the subscriber prefixes of every pool: a source from
// them arriving on the outside is spoofed). The prefixes become sorted,
// merged host-order intervals when built; contains() first compares with the
// set's bounds (two compares answer the common case, an internet address)
// and then searches the intervals in O(log n).
//
// Built on the control core, read by the workers: immutable once built.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "packet/byte_order.hpp"

namespace passgate::table {

class PrefixSet {
 public:
  void add(packet::be32 prefix, std::uint8_t length) {
    const std::uint32_t host_bits = length == 0 ? ~std::uint32_t{0} : (length >= 32 ? 0 : ~std::uint32_t{0} >> length);
    const std::uint32_t first = prefix.host() & ~host_bits;
    intervals_.push_back({first, first | host_bits});
    built_ = false;
  }
  // Sorts and merges what was added; call before contains().
  void build() {
    std::sort(intervals_.begin(), intervals_.end(), [](const Interval& a, const Interval& b) { return a.first < b.first; });
    std::vector<Interval> merged;
    for (const Interval& i : intervals_) {
      // Overlapping or adjacent (last + 1 == first, without wrapping): one interval.
      if (!merged.empty() && (i.first <= merged.back().last || i.first - 1 == merged.back().last)) {
        merged.back().last = std::max(merged.back().last, i.last);
        continue;
      }
      merged.push_back(i);
    }
    intervals_ = std::move(merged);
    built_ = true;
  }

  [[nodiscard]] bool contains(packet::be32 a) const {
    const std::uint32_t h = a.host();
    if (intervals_.empty() || h < intervals_.front().first || h > intervals_.back().last) [[likely]]
      return false;
    // The last interval starting at or before h holds it, if any does.
    const auto it = std::upper_bound(intervals_.begin(), intervals_.end(), h,
                                     [](std::uint32_t v, const Interval& i) { return v < i.first; });
    return h <= std::prev(it)->last;
  }

  [[nodiscard]] std::size_t intervals() const { return intervals_.size(); }
  [[nodiscard]] bool built() const { return built_; }

 private:
  struct Interval {
    std::uint32_t first, last;  // inclusive, host order
  };
  std::vector<Interval> intervals_;
  bool built_ = true;
};

}  // namespace passgate::table
