#include "search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

namespace pgen {

TrialResult TrialLog::run(double rate) {
  const TrialResult t = gen_.trial(rate, opt_.duration, phase_);
  std::cerr << fmt::format(
      "passgate-gen: trial {:>2}: asked {:>10.0f} pps, offered {:>10.0f} pps, loss {:.4f}% "
      "(out {}/{}, in {}/{})\n",
      trials_.size() + 1, rate, t.offered_pps(), 100.0 * t.loss_ratio(), t.outbound.received, t.outbound.sent,
      t.inbound.received, t.inbound.sent);
  trials_.push_back(t);
  return t;
}

SearchResult search_throughput(Generator& gen, TrialLog& log, const Options& opt) {
  SearchResult r;
  std::optional<TrialResult>& ndr_trial = r.ndr;
  std::optional<TrialResult>& pdr_trial = r.pdr;
  // The upper bound is the generator's own maximum unless given: a first
  // trial as fast as possible measures it.
  double hi = opt.max_rate;
  if (hi <= 0) {
    const TrialResult t = log.run(0);
    hi = t.offered_pps();
    if (t.loss_ratio() == 0) {
      r.generator_limited = true;
      ndr_trial = pdr_trial = t;
    } else if (t.loss_ratio() <= opt.pdr_loss) {
      pdr_trial = t;
    }
    // The upper bound is what the DUT forwarded in that trial, with
    // headroom: overloaded, a DUT may forward less than it can without
    // loss (receive livelock), so the bound is not exact.
    hi = std::max(1.0, static_cast<double>(t.outbound.received) / t.seconds * 1.25);
    gen.idle(opt.settle);
  }
  double ndr_lo = 0, ndr_hi = hi, pdr_lo = pdr_trial ? hi : 0, pdr_hi = hi;
  if (ndr_trial) ndr_lo = hi;
  const auto converged = [&](double lo, double up) { return up - lo <= opt.precision * up; };
  while (!r.generator_limited && log.trials().size() < opt.max_trials && !interrupted &&
         !(converged(ndr_lo, ndr_hi) && converged(pdr_lo, pdr_hi))) {
    // Refine whichever interval is still the wider one (relative).
    const bool pdr_first = !converged(pdr_lo, pdr_hi) &&
                           (converged(ndr_lo, ndr_hi) || (pdr_hi - pdr_lo) / pdr_hi >= (ndr_hi - ndr_lo) / ndr_hi);
    const double rate = pdr_first ? (pdr_lo + pdr_hi) / 2 : (ndr_lo + ndr_hi) / 2;
    if (opt.mode == "cps" && opt.cps_budget &&
        gen.cps_cursor() + static_cast<std::uint64_t>(rate * opt.duration * 1.1) > opt.cps_budget) {
      std::cerr << "passgate-gen: cps: the DUT's session budget is spent; search stops here\n";
      break;
    }
    const TrialResult t = log.run(rate);
    // Bounds move on the rate actually offered, not the one asked.
    const double offered = std::min(rate, t.offered_pps());
    const double loss = t.loss_ratio();
    // A trial that could not offer its rate (the generator lost its CPU)
    // still bounds the search by what it did offer.
    if (loss == 0) {
      if (offered > ndr_lo) ndr_lo = offered, ndr_trial = t;
      if (offered > pdr_lo) pdr_lo = offered, pdr_trial = t;
    } else if (loss <= opt.pdr_loss) {
      ndr_hi = std::min(ndr_hi, rate);
      if (offered > pdr_lo) pdr_lo = offered, pdr_trial = t;
    } else {
      ndr_hi = std::min(ndr_hi, rate);
      pdr_hi = std::min(pdr_hi, rate);
    }
    ndr_lo = std::min(ndr_lo, ndr_hi);
    pdr_lo = std::min(pdr_lo, pdr_hi);
    if (pdr_lo < ndr_lo) pdr_lo = ndr_lo, pdr_trial = ndr_trial;
    gen.idle(opt.settle);
  }
  return r;
}

}  // namespace pgen
