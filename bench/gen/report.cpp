#include "report.hpp"

#include "wire.hpp"

#include <rte_version.h>

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace pgen {

namespace {

std::string json_direction(const DirectionCounters& d) {
  const auto lost = d.sent - std::min(d.sent, d.received);
  return fmt::format(
      "{{\"sent\": {}, \"received\": {}, \"lost\": {}, \"tx_refused\": {}, \"stale\": {}, \"foreign\": {}, "
      "\"untranslated\": {}, \"mismatched\": {}, \"latency_us\": {{\"samples\": {}, \"min\": {:.2f}, \"mean\": {:.2f}, "
      "\"p50\": {:.1f}, \"p90\": {:.1f}, \"p99\": {:.1f}, \"p999\": {:.1f}, \"max\": {:.2f}}}}}",
      d.sent, d.received, lost, d.tx_refused, d.stale, d.foreign, d.untranslated, d.mismatched, d.latency.count,
      d.latency.count ? static_cast<double>(d.latency.min_ns) / 1000.0 : 0.0,
      d.latency.count ? static_cast<double>(d.latency.sum_ns) / static_cast<double>(d.latency.count) / 1000.0 : 0.0,
      d.latency.percentile_us(0.5), d.latency.percentile_us(0.9), d.latency.percentile_us(0.99),
      d.latency.percentile_us(0.999), static_cast<double>(d.latency.max_ns) / 1000.0);
}

}  // namespace

std::string json_trial(const TrialResult& t) {
  return fmt::format(
      "{{\"requested_pps\": {:.0f}, \"seconds\": {:.3f}, \"offered_pps\": {:.0f}, \"bidirectional_pps\": {:.0f}, "
      "\"received_pps\": {:.0f}, \"loss_ratio\": {:.6g}, \"outbound\": {}, \"inbound\": {}}}",
      t.requested_pps, t.seconds, t.offered_pps(), t.bidirectional_pps(),
      t.seconds > 0 ? static_cast<double>(t.received_total()) / t.seconds : 0.0, t.loss_ratio(),
      json_direction(t.outbound), json_direction(t.inbound));
}

std::string json_warmup(const WarmupResult& w) {
  return fmt::format(
      "{{\"flows\": {}, \"answered\": {}, \"packets\": {}, \"passes\": {}, \"seconds\": {:.3f}, \"rate\": {:.0f}}}",
      w.flows, w.answered, w.packets, w.passes, w.seconds, w.seconds > 0 ? w.flows / w.seconds : 0.0);
}

std::string json_search(const SearchResult& s, double pdr_loss, bool reply) {
  const auto rate_json = [&](const std::optional<TrialResult>& t) {
    return t ? json_trial(*t) : std::string("null");
  };
  const double mult = reply ? 2.0 : 1.0;
  return fmt::format(
      "{{\"ndr_pps\": {:.0f}, \"pdr_pps\": {:.0f}, \"ndr_bidirectional_pps\": {:.0f}, "
      "\"pdr_bidirectional_pps\": {:.0f}, \"pdr_loss\": {}, \"generator_limited\": {}, "
      "\"ndr_trial\": {}, \"pdr_trial\": {}}}",
      s.ndr ? s.ndr->offered_pps() : 0.0, s.pdr ? s.pdr->offered_pps() : 0.0,
      s.ndr ? s.ndr->offered_pps() * mult : 0.0, s.pdr ? s.pdr->offered_pps() * mult : 0.0, pdr_loss,
      s.generator_limited, rate_json(s.ndr), rate_json(s.pdr));
}

std::string json_document(const RunReport& r) {
  const Options& opt = r.cl.opt;
  const FlowModel& model = r.cl.model;
  std::string trials_json;
  for (const auto& t : r.trials) trials_json += (trials_json.empty() ? "" : ", ") + json_trial(t);
  std::string publics_json;
  for (unsigned i = 0; i < r.publics.count; ++i)
    publics_json += (i ? ", " : "") + fmt::format("\"{}\"", ipv4_text(r.publics.seen[i]));
  const unsigned rx_queues = r.cl.rx_queues;
  return fmt::format(
      "{{\n  \"generator\": \"passgate-gen\", \"dpdk\": \"{}\", \"label\": \"{}\", \"mode\": \"{}\",\n"
      "  \"config\": {{\"subscribers\": {}, \"flows_per_subscriber\": {}, \"flows\": {}, \"servers\": {}, "
      "\"mix_percent\": {{{}}}, \"frame_size\": {}, \"reply\": {}, \"duration_s\": {}, \"drain_s\": {}, "
      "\"settle_s\": {}, \"lcores\": {}, \"rx_queues\": {}, \"tx_queues\": {}, \"inside\": \"{}\", \"outside\": \"{}\"}},\n"
      "  \"rx_per_queue\": {{\"inside\": [{}], \"outside\": [{}]}},\n"
      "  \"dut_macs\": {{\"inside\": \"{:02x}\", \"outside\": \"{:02x}\"}},\n"
      "  \"public_addresses_seen\": [{}], \"more_public_addresses\": {},\n"
      "  \"warmup\": {},\n  \"result\": {},\n  \"trials\": [{}]\n}}\n",
      rte_version(), opt.label, opt.mode, model.subscribers, model.flows_per_subscriber, model.flows(),
      model.servers, mix_json(model.mix), r.cl.frame_size, opt.reply, opt.duration, opt.drain, opt.settle,
      r.two_lcores ? 2 : 1, rx_queues, r.cl.tx_queues, opt.inside_dev, opt.outside_dev,
      fmt::join(r.inside.rx_per_queue.begin(), r.inside.rx_per_queue.begin() + rx_queues, ", "),
      fmt::join(r.outside.rx_per_queue.begin(), r.outside.rx_per_queue.begin() + rx_queues, ", "),
      fmt::join(r.inside.peer_mac.addr_bytes, ":"), fmt::join(r.outside.peer_mac.addr_bytes, ":"), publics_json,
      r.publics.more, r.warmup_json, r.result_json, trials_json);
}

}  // namespace pgen
