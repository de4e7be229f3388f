// Trials of passgate-gen: ARP resolution, the CSIT-style warm-up that opens
// every flow before measuring, and one paced trial followed by its drain,
// with both sides' counters collected per trial.
#pragma once

#include "counters.hpp"
#include "inside.hpp"
#include "outside.hpp"
#include "run_state.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace pgen {

struct Options {
  std::string inside_dev, outside_dev;
  std::string mode = "fixed";
  double rate = 0;  // packets/s inside to outside; 0 = as fast as possible
  double duration = 3;
  double warmup_rate = 200000;
  unsigned warmup_passes = 3;
  bool warmup = true;
  bool reply = true;
  double drain = 0.5, settle = 1.0;
  double pdr_loss = 0.005;
  double precision = 0.02;
  unsigned max_trials = 14;
  double max_rate = 0;
  std::uint64_t cps_budget = 0;
  std::string json_path;
  std::string label;
};

struct TrialResult {
  double requested_pps = 0;
  double seconds = 0;
  DirectionCounters outbound;  // inside -> outside: sent here, received there
  DirectionCounters inbound;   // outside -> inside: answers
  std::uint64_t sent_total() const { return outbound.sent + inbound.sent; }
  std::uint64_t received_total() const { return outbound.received + inbound.received; }
  // RFC 2544 section 26.1: frames the DUT was offered but did not forward,
  // both directions together (section 14, bidirectional traffic).
  double loss_ratio() const {
    const std::uint64_t s = sent_total();
    return s ? static_cast<double>(s - std::min(s, received_total())) / static_cast<double>(s) : 0.0;
  }
  double offered_pps() const { return seconds > 0 ? static_cast<double>(outbound.sent) / seconds : 0; }
  double bidirectional_pps() const { return seconds > 0 ? static_cast<double>(sent_total()) / seconds : 0; }
};

struct WarmupResult {
  std::uint64_t flows = 0, answered = 0, packets = 0;
  unsigned passes = 0;
  double seconds = 0;
};

class Generator {
 public:
  Generator(Options o, InsideSide& in, OutsideSide& out, RunState& st, bool two_lcores);

  // Polls both ports (the outside only in one-lcore mode) for `seconds`.
  void idle(double seconds, bool warmup = false);

  bool resolve_neighbours();

  // CSIT-style warm-up: one packet per flow at a modest rate, then the
  // flows still unanswered again, up to `passes` times.
  WarmupResult warm_up();

  // One trial at `rate` packets/s (0: as fast as the PMD takes them) for
  // `seconds`, then the drain. Established flows cycle through the model;
  // in cps mode every packet takes the next never-used flow number.
  TrialResult trial(double rate, double seconds, Phase phase);

  std::uint64_t cps_cursor() const { return cps_cursor_; }
  void set_cps_cursor(std::uint64_t c) { cps_cursor_ = c; }

 private:
  void poll_all(bool warmup) {
    inside_.poll(warmup);
    if (!two_lcores_) outside_.poll();
  }
  void new_trial(Phase phase);
  // Moves both sides' counters into trial_out_/trial_in_ and resets them.
  void collect();
  std::uint64_t count_answered() const;

  Options opt_;
  InsideSide& inside_;
  OutsideSide& outside_;
  RunState& state_;
  bool two_lcores_;
  std::uint64_t hz_;
  std::uint64_t flow_cursor_ = 0;
  std::uint64_t cps_cursor_ = 0;
  DirectionCounters trial_out_, trial_in_;
};

}  // namespace pgen
