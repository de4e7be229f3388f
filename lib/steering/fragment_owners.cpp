#include "steering/fragment_owners.hpp"

#include <bit>

namespace passgate::steering {

FragmentOwners::FragmentOwners(std::uint32_t capacity, std::uint64_t seed) : seed_(seed | 1) {
  const std::uint32_t n = std::bit_ceil(capacity < probe_window ? probe_window : capacity);
  slots_.resize(n);
  mask_ = n - 1;
}

// A keyed mix (two rounds of multiply and xor-shift over the seeded key):
// without the seed, which is secret and random per start, a sender cannot
// tell which datagrams share a probe window.
std::uint32_t FragmentOwners::home(const FragmentKey& k) const {
  std::uint64_t x = (std::uint64_t{k.src.raw} << 32 | k.dst.raw) ^ seed_;
  x ^= (std::uint64_t{k.id} << 8 | k.proto) * 0x9e3779b97f4a7c15ull;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 29;
  return static_cast<std::uint32_t>(x) & mask_;
}

bool FragmentOwners::remember(const FragmentKey& k, unsigned owner, std::uint64_t now_ms, std::uint64_t expires_ms) {
  const std::uint32_t h = home(k);
  Slot* victim = nullptr;
  for (unsigned i = 0; i < probe_window; ++i) {
    Slot& s = slots_[(h + i) & mask_];
    const bool live = s.expires_ms > now_ms;
    if (live && s.key == k) {  // a repeated first fragment: refreshed
      s.owner = owner;
      s.expires_ms = expires_ms;
      return false;
    }
    if (!live) {
      if (!victim || victim->expires_ms > now_ms) victim = &s;
    } else if (!victim || (victim->expires_ms > now_ms && s.expires_ms < victim->expires_ms)) {
      victim = &s;
    }
  }
  const bool evicted = victim->expires_ms > now_ms;
  *victim = {k, expires_ms, owner};
  return evicted;
}

std::optional<unsigned> FragmentOwners::find(const FragmentKey& k, std::uint64_t now_ms) const {
  const std::uint32_t h = home(k);
  for (unsigned i = 0; i < probe_window; ++i) {
    const Slot& s = slots_[(h + i) & mask_];
    if (s.expires_ms > now_ms && s.key == k) return s.owner;
  }
  return std::nullopt;
}

}  // namespace passgate::steering
