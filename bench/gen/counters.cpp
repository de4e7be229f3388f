#include "counters.hpp"

#include <cmath>

namespace pgen {

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
  count += o.count;
  sum_ns += o.sum_ns;
  max_ns = std::max(max_ns, o.max_ns);
  min_ns = std::min(min_ns, o.min_ns);
}

double LatencyHistogram::percentile_us(double q) const {
  if (count == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
  std::uint64_t seen = 0;
  for (unsigned b = 0; b < buckets.size(); ++b) {
    seen += buckets[b];
    if (seen >= rank && seen > 0) {
      if (b < fine) return (b + 1) * 0.1;
      if (b < fine + coarse) return 100.0 * fine / 1000.0 + (b - fine + 1) * 10.0;
      return static_cast<double>(max_ns) / 1000.0;
    }
  }
  return static_cast<double>(max_ns) / 1000.0;
}

void DirectionCounters::merge(const DirectionCounters& o) {
  sent += o.sent;
  tx_refused += o.tx_refused;
  received += o.received;
  stale += o.stale;
  foreign += o.foreign;
  untranslated += o.untranslated;
  mismatched += o.mismatched;
  latency.merge(o.latency);
}

}  // namespace pgen
