// FlowTable: a fixed-size hash index from 64-bit hashes to 32-bit record
// indices. The records (sessions, mappings, ...) live in their owner's
// preallocated arrays; the table only finds them.
//
// Theory of operation: buckets are one cache line each and hold 10 slots of
// (16-bit tag, 32-bit index). A key's home bucket is picked by the low hash
// bits and its tag by the high bits, so a lookup touches one cache line for
// tags and then the matching record. When the home bucket is full, insertion
// probes the following buckets and bumps an overflow count on every full
// bucket it passes; a lookup stops at the first bucket that has no match and
// no overflow, and erase undoes the counts. The table never allocates after
// construction and is sized to stay under 80% full at the configured
// capacity, where overflow is rare and lookups stay O(1).
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "table/huge_pages.hpp"

namespace passgate::table {

inline constexpr std::uint32_t no_index = 0xffffffffu;

class FlowTable {
 public:
  static constexpr unsigned slots_per_bucket = 10;
  struct alignas(64) Bucket {
    std::uint32_t index[slots_per_bucket];
    std::uint16_t tag[slots_per_bucket];  // 0 = empty slot
    std::uint16_t overflow;               // entries homed earlier, stored later
    std::uint16_t pad;
  };
  static_assert(sizeof(Bucket) == 64);

  explicit FlowTable(std::uint32_t capacity) {
    const std::uint64_t wanted = (std::uint64_t{capacity} * 10 / 8) / slots_per_bucket + 1;
    const std::uint64_t count = std::bit_ceil(wanted < 2 ? std::uint64_t{2} : wanted);
    buckets_.assign(count, Bucket{});
    mask_ = count - 1;
  }

  [[nodiscard]] std::size_t memory_bytes() const { return buckets_.size() * sizeof(Bucket); }
  [[nodiscard]] std::uint32_t size() const { return size_; }

  // An asm statement the compiler cannot drop, like DPDK's rte_prefetch0.
  // Written as an ordinary inline function around __builtin_prefetch, GCC 12
  // judged the call free of side effects and deleted every one in the
  // engine's burst stages once they were split across files (issue 13: no
  // prefetch left in process_burst, 1.3-1.7x the time per packet at 1M
  // sessions). [[gnu::always_inline]] on a __builtin_prefetch wrapper keeps
  // them too; the asm states the intent where it is used.
  void prefetch(std::uint64_t hash) const {
#if defined(__x86_64__)
    asm volatile("prefetcht0 %0" : : "m"(*reinterpret_cast<const volatile char*>(&buckets_[hash & mask_])));
#else
    __builtin_prefetch(&buckets_[hash & mask_]);
#endif
  }

  // eq(index) -> bool tells whether the record at index has the key.
  template <typename Eq>
  [[nodiscard]] std::uint32_t find(std::uint64_t hash, Eq&& eq) const {
    const std::uint16_t t = tag_of(hash);
    std::uint64_t b = hash & mask_;
    for (std::uint64_t probes = 0; probes <= mask_; ++probes) {
      const Bucket& bucket = buckets_[b];
      for (unsigned s = 0; s < slots_per_bucket; ++s)
        if (bucket.tag[s] == t && eq(bucket.index[s])) return bucket.index[s];
      if (bucket.overflow == 0) return no_index;
      b = (b + 1) & mask_;
    }
    return no_index;
  }

  // False when every bucket is full (cannot happen below the sized capacity).
  bool insert(std::uint64_t hash, std::uint32_t index) {
    const std::uint16_t t = tag_of(hash);
    const std::uint64_t home = hash & mask_;
    std::uint64_t b = home;
    for (std::uint64_t probes = 0; probes <= mask_; ++probes) {
      Bucket& bucket = buckets_[b];
      for (unsigned s = 0; s < slots_per_bucket; ++s) {
        if (bucket.tag[s] == 0) {
          bucket.tag[s] = t;
          bucket.index[s] = index;
          for (std::uint64_t p = home; p != b; p = (p + 1) & mask_) ++buckets_[p].overflow;
          ++size_;
          return true;
        }
      }
      b = (b + 1) & mask_;
    }
    return false;
  }

  bool erase(std::uint64_t hash, std::uint32_t index) {
    const std::uint16_t t = tag_of(hash);
    const std::uint64_t home = hash & mask_;
    std::uint64_t b = home;
    for (std::uint64_t probes = 0; probes <= mask_; ++probes) {
      Bucket& bucket = buckets_[b];
      for (unsigned s = 0; s < slots_per_bucket; ++s) {
        if (bucket.tag[s] == t && bucket.index[s] == index) {
          bucket.tag[s] = 0;
          for (std::uint64_t p = home; p != b; p = (p + 1) & mask_) --buckets_[p].overflow;
          --size_;
          return true;
        }
      }
      if (bucket.overflow == 0) return false;
      b = (b + 1) & mask_;
    }
    return false;
  }

 private:
  static std::uint16_t tag_of(std::uint64_t hash) { return static_cast<std::uint16_t>((hash >> 48) | 1u); }

  HugeVector<Bucket> buckets_;
  std::uint64_t mask_ = 0;
  std::uint32_t size_ = 0;
};

// Keyed 64-bit hash of two words (a multiply-fold, as in wyhash). The keys come
// from the configuration's random seed so that nobody outside can choose
// ports that all land in one bucket.
struct FlowHasher {
  std::uint64_t k0 = 0x243f6a8885a308d3ull, k1 = 0x13198a2e03707344ull, k2 = 0xa4093822299f31d0ull;

  static std::uint64_t mum(std::uint64_t a, std::uint64_t b) {
    __extension__ using u128 = unsigned __int128;
    const u128 m = static_cast<u128>(a) * b;
    return static_cast<std::uint64_t>(m) ^ static_cast<std::uint64_t>(m >> 64);
  }
  [[nodiscard]] std::uint64_t operator()(std::uint64_t a, std::uint64_t b) const {
    return mum(mum(a ^ k0, b ^ k1) ^ k2, a + b + k0);
  }
};

}  // namespace passgate::table
