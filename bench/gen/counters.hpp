// What passgate-gen counts per direction and trial: packets, losses by
// cause, one-way latency.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace pgen {

// Latency in 100 ns steps up to 1 ms, then 10 us steps up to 101 ms, then
// one overflow bucket: fine where memif and af_packet latencies lie, and
// fixed-size so that recording is one increment.
struct LatencyHistogram {
  static constexpr unsigned fine = 10000, coarse = 10000;
  std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(fine + coarse + 1);
  std::uint64_t count = 0, sum_ns = 0, max_ns = 0, min_ns = UINT64_MAX;

  void add(std::uint64_t ns) {
    unsigned b;
    if (ns < 100ull * fine) b = static_cast<unsigned>(ns / 100);
    else if (ns < 100ull * fine + 10000ull * coarse) b = fine + static_cast<unsigned>((ns - 100ull * fine) / 10000);
    else b = fine + coarse;
    ++buckets[b];
    ++count;
    sum_ns += ns;
    max_ns = std::max(max_ns, ns);
    min_ns = std::min(min_ns, ns);
  }
  void merge(const LatencyHistogram& o);
  // Upper edge of the bucket holding the q-quantile.
  [[nodiscard]] double percentile_us(double q) const;
};

// What one port saw or did during one trial.
struct DirectionCounters {
  // Offered to the DUT. A frame the port refuses (its ring is full) counts
  // as offered and lost: on memif a full ring is the DUT's receive ring
  // not being drained, exactly what a NIC's receive drop is on hardware,
  // where the wire never pushes back (RFC 2544 section 26.1 counts frames
  // sent, not frames the DUT was ready for).
  std::uint64_t sent = 0;
  std::uint64_t tx_refused = 0;    // part of `sent`: refused by the port's full ring
  std::uint64_t received = 0;      // our packets of this trial, arrived at the far port
  std::uint64_t stale = 0;         // ours, but from an earlier trial (stragglers)
  std::uint64_t foreign = 0;       // not ours: ARP aside, anything else the port received
  std::uint64_t untranslated = 0;  // (outbound) arrived with a subscriber source address
  std::uint64_t mismatched = 0;    // (inbound) answer did not come back to the flow's own address/port
  LatencyHistogram latency;

  void merge(const DirectionCounters& o);
};

// Distinct public source addresses seen on the outside (the first few kept,
// to show in the report that translation happened).
struct PublicAddresses {
  static constexpr unsigned keep = 8;
  std::array<std::uint32_t, keep> seen{};
  unsigned count = 0;
  bool more = false;
  void add(std::uint32_t a) {
    for (unsigned i = 0; i < count; ++i)
      if (seen[i] == a) return;
    if (count < keep) seen[count++] = a;
    else more = true;
  }
};

}  // namespace pgen
