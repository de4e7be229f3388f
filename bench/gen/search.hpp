// RFC 2544 section 26.1 throughput by binary search over the offered rate,
// for the non-drop rate (zero loss) and the partial-drop rate (loss at most
// --pdr-loss) together, as CSIT's MLRsearch reports them.
#pragma once

#include "generator.hpp"

#include <optional>
#include <vector>

namespace pgen {

// Runs trials one after the other, logs each on stderr and keeps it for the
// report.
class TrialLog {
 public:
  TrialLog(Generator& gen, const Options& opt, Phase phase) : gen_(gen), opt_(opt), phase_(phase) {}
  TrialResult run(double rate);
  [[nodiscard]] const std::vector<TrialResult>& trials() const { return trials_; }

 private:
  Generator& gen_;
  const Options& opt_;
  Phase phase_;
  std::vector<TrialResult> trials_;
};

struct SearchResult {
  std::optional<TrialResult> ndr, pdr;
  // The first trial, as fast as the generator could, lost nothing: the DUT
  // is faster than this generator.
  bool generator_limited = false;
};

SearchResult search_throughput(Generator& gen, TrialLog& log, const Options& opt);

}  // namespace pgen
