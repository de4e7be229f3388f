// An allocator for the engine's big preallocated arrays (sessions, mappings,
// hash buckets, timer links). Arrays of 2 MiB or more are mapped on 2 MiB
// boundaries and marked MADV_HUGEPAGE, so the kernel backs them with
// transparent huge pages where it can: one TLB entry then covers 2 MiB
// instead of 4 KiB, which is what keeps random session lookups in a table of
// millions from paying a page walk each. Small arrays use operator new.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace passgate::table {

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT(google-explicit-constructor)

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page_bytes) return static_cast<T*>(::operator new(bytes, std::align_val_t{alignof(T) < 64 ? 64 : alignof(T)}));
    const std::size_t rounded = (bytes + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
    // Over-map by one huge page to align the start, then trim.
    void* raw = mmap(nullptr, rounded + huge_page_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) std::abort();  // start-up only: memory is sized once
    auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
    if (aligned > start) munmap(raw, aligned - start);
    const std::uintptr_t end = start + rounded + huge_page_bytes;
    if (end > aligned + rounded) munmap(reinterpret_cast<void*>(aligned + rounded), end - aligned - rounded);
    madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);
    return reinterpret_cast<T*>(aligned);
  }
  void deallocate(T* p, std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page_bytes) {
      ::operator delete(p, std::align_val_t{alignof(T) < 64 ? 64 : alignof(T)});
      return;
    }
    munmap(p, (bytes + huge_page_bytes - 1) & ~(huge_page_bytes - 1));
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
};

template <typename T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace passgate::table
