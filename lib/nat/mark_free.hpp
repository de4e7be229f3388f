// For the invariant checks (never on the packet path): marks the slots of a
// free list, failing on an index out of range or listed twice.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace passgate::nat {

template <typename Vec>
inline bool mark_free(const Vec& free_list, std::size_t capacity, std::vector<std::uint8_t>& is_free,
                      const char* what, std::string* why) {
  is_free.assign(capacity, false);
  for (const std::uint32_t i : free_list) {
    if (i >= capacity) {
      *why = fmt::format("{} free list holds index {} beyond capacity {}", what, i, capacity);
      return false;
    }
    if (is_free[i]) {
      *why = fmt::format("{} free list holds index {} twice", what, i);
      return false;
    }
    is_free[i] = true;
  }
  return true;
}

}  // namespace passgate::nat
