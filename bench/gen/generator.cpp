#include "generator.hpp"

#include <rte_cycles.h>

#include <optional>
#include <utility>
#include <vector>

namespace pgen {

Generator::Generator(Options o, InsideSide& in, OutsideSide& out, RunState& st, bool two_lcores)
    : opt_(std::move(o)), inside_(in), outside_(out), state_(st), two_lcores_(two_lcores), hz_(rte_get_tsc_hz()) {}

void Generator::idle(double seconds, bool warmup) {
  const std::uint64_t end = rte_rdtsc() + static_cast<std::uint64_t>(seconds * static_cast<double>(hz_));
  while (rte_rdtsc() < end && !interrupted) poll_all(warmup);
}

bool Generator::resolve_neighbours() {
  const std::uint64_t deadline = rte_rdtsc() + 10 * hz_;
  std::uint64_t next = 0;
  while (!(inside_.port->peer_known && outside_.port->peer_known)) {
    if (interrupted || rte_rdtsc() > deadline) return false;
    if (rte_rdtsc() >= next) {
      if (!inside_.port->peer_known) send_arp_request(*inside_.port, inside_.pool);
      if (!outside_.port->peer_known) send_arp_request(*outside_.port, outside_.pool);
      next = rte_rdtsc() + hz_ / 5;
    }
    poll_all(false);
  }
  return true;
}

WarmupResult Generator::warm_up() {
  WarmupResult r;
  const std::uint64_t flows = inside_.model->flows();
  r.flows = flows;
  inside_.answered_bits.assign((flows + 63) / 64, 0);
  const std::uint64_t t0 = rte_rdtsc();
  new_trial(Phase::warmup);
  bool identifiable = true;
  double rate = opt_.warmup_rate;
  for (unsigned pass = 0; pass < opt_.warmup_passes && !interrupted; ++pass) {
    // Flows lost in a pass were sent faster than the DUT opened them (or
    // than the link carried them): the next pass goes at half the rate.
    if (pass > 0) rate /= 2;
    std::uint64_t cursor = 0;
    auto next_unanswered = [&]() -> std::optional<std::uint64_t> {
      while (cursor < flows) {
        const std::uint64_t f = cursor++;
        if (pass == 0 || !(inside_.answered_bits[f / 64] >> (f % 64) & 1)) return f;
      }
      return std::nullopt;
    };
    std::vector<std::uint64_t> pending;
    pending.reserve(burst_size);
    const std::uint64_t start = rte_rdtsc();
    std::uint64_t sent = 0;
    bool more = true;
    while (more && !interrupted) {
      const std::uint64_t allowed = static_cast<std::uint64_t>(
          static_cast<double>(rte_rdtsc() - start) / static_cast<double>(hz_) * rate);
      if (allowed > sent) {
        pending.clear();
        while (pending.size() < std::min<std::uint64_t>(burst_size, allowed - sent)) {
          auto f = next_unanswered();
          if (!f) {
            more = false;
            break;
          }
          pending.push_back(*f);
        }
        std::size_t k = 0;
        while (k < pending.size() && !interrupted) {
          std::size_t i = k;
          const unsigned took = inside_.send(static_cast<unsigned>(pending.size() - k), Phase::warmup,
                                             [&] { return pending[i++]; });
          k += took;
          r.packets += took;
          if (took == 0) poll_all(true);
        }
        sent += pending.size();
      }
      poll_all(true);
    }
    idle(opt_.drain, true);
    r.passes = pass + 1;
    r.answered = count_answered();
    // Tunnels and NAT-T share identifiers the answer cannot be traced back
    // from: count them answered when the totals say so.
    if (r.answered >= flows) break;
    if (pass == 0 && inside_.inbound_rx.received >= flows) {
      identifiable = false;
      break;
    }
  }
  if (!identifiable) r.answered = std::min<std::uint64_t>(flows, inside_.inbound_rx.received);
  r.seconds = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz_);
  collect();
  return r;
}

TrialResult Generator::trial(double rate, double seconds, Phase phase) {
  new_trial(phase);
  TrialResult r;
  r.requested_pps = rate;
  const std::uint64_t flows = inside_.model->flows();
  const std::uint64_t start = rte_rdtsc();
  const std::uint64_t end = start + static_cast<std::uint64_t>(seconds * static_cast<double>(hz_));
  std::uint64_t offered = 0;
  std::uint64_t now = start;
  while (now < end && !interrupted) {
    unsigned want = burst_size;
    if (rate > 0) {
      // Pacing from the start of the trial. When the generator loses its
      // CPU for a moment (a shared machine) the backlog is made up at
      // once so that the average rate holds, but at most max_backlog
      // packets: a burst the DUT's 1024-descriptor ring can absorb.
      const auto due = static_cast<std::uint64_t>(static_cast<double>(now - start) / static_cast<double>(hz_) * rate);
      want = due > offered ? static_cast<unsigned>(std::min<std::uint64_t>(due - offered, burst_size)) : 0;
      if (due > offered + max_backlog) offered = due - max_backlog;
    }
    if (want) {
      if (phase == Phase::cps) {
        inside_.send(want, phase, [&] { return cps_cursor_++; });
      } else {
        inside_.send(want, phase, [&] {
          const std::uint64_t f = flow_cursor_;
          if (++flow_cursor_ == flows) flow_cursor_ = 0;
          return f;
        });
      }
      offered += want;
    }
    poll_all(false);
    now = rte_rdtsc();
  }
  r.seconds = static_cast<double>(now - start) / static_cast<double>(hz_);
  idle(opt_.drain);
  collect();
  r.outbound = trial_out_;
  r.inbound = trial_in_;
  return r;
}

void Generator::new_trial(Phase phase) {
  collect();  // drop whatever arrived between trials
  state_.phase = phase;
  state_.trial.store(static_cast<std::uint16_t>(state_.trial.load() + 1));
  collect();
}

void Generator::collect() {
  trial_out_ = DirectionCounters{};
  trial_in_ = DirectionCounters{};
  trial_out_.merge(inside_.outbound_tx);
  trial_in_.merge(inside_.inbound_rx);
  inside_.outbound_tx = DirectionCounters{};
  inside_.inbound_rx = DirectionCounters{};
  DirectionCounters out_rx, in_tx;
  if (two_lcores_) {
    const int req = state_.snapshot_request.load() + 1;
    state_.snapshot_request.store(req, std::memory_order_release);
    while (state_.snapshot_done.load(std::memory_order_acquire) != req) inside_.poll(false);
    out_rx = outside_.snapshot_out;
    in_tx = outside_.snapshot_in;
  } else {
    out_rx = outside_.outbound_rx;
    in_tx = outside_.inbound_tx;
    outside_.outbound_rx = DirectionCounters{};
    outside_.inbound_tx = DirectionCounters{};
  }
  // The outside's receive side belongs to the outbound direction, its
  // transmit side to the inbound one.
  trial_out_.received = out_rx.received;
  trial_out_.stale = out_rx.stale;
  trial_out_.foreign = out_rx.foreign;
  trial_out_.untranslated = out_rx.untranslated;
  trial_out_.latency = out_rx.latency;
  trial_in_.sent = in_tx.sent;
  trial_in_.tx_refused = in_tx.tx_refused;
}

std::uint64_t Generator::count_answered() const {
  std::uint64_t n = 0;
  for (std::uint64_t w : inside_.answered_bits) n += static_cast<std::uint64_t>(__builtin_popcountll(w));
  return n;
}

}  // namespace pgen
