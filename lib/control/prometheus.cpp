#include "control/prometheus.hpp"

#include <fmt/format.h>

namespace passgate::control {

namespace {

// HELP text: backslash and newline escaped (exposition format 0.0.4).
std::string escape_help(const char* text) {
  std::string out;
  for (const char* p = text; *p; ++p) {
    if (*p == '\\') out += "\\\\";
    else if (*p == '\n') out += "\\n";
    else out += *p;
  }
  return out;
}

// Label values: backslash, quote and newline escaped.
std::string escape_label(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

class Writer {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
  }
  void sample(const std::string& name, std::uint64_t value, const std::string& labels = {}) {
    if (labels.empty()) out_ += fmt::format("{} {}\n", name, value);
    else out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string render_prometheus(const stats::GatewaySnapshot& s) {
  Writer w;
  auto port_label = [&](std::size_t p) { return fmt::format("port=\"{}\"", escape_label(s.port_names[p])); };

  for (const stats::PortCounterInfo& m : stats::port_counters_info) {
    const std::string name = fmt::format("passgate_port_{}_total", m.metric);
    w.family(name, "counter", m.help);
    for (std::size_t p = 0; p < s.ports.size(); ++p) w.sample(name, s.ports[p].*m.field, port_label(p));
  }
  w.family("passgate_port_drops_total", "counter", "Frames dropped on the port outside the NAT engine, by reason.");
  for (std::size_t p = 0; p < s.ports.size(); ++p)
    for (unsigned d = 0; d < stats::port_drop_count; ++d)
      w.sample("passgate_port_drops_total", s.ports[p].drop[d],
               fmt::format("{},reason=\"{}\"", port_label(p), stats::port_drop_name(static_cast<stats::PortDrop>(d))));

  for (unsigned k = 0; k < stats::nat_counter_count; ++k) {
    const auto c = static_cast<stats::NatCounter>(k);
    const std::string name = fmt::format("passgate_nat_{}_total", stats::nat_counter_name(c));
    w.family(name, "counter", stats::nat_counter_help(c));
    w.sample(name, s.nat.counter[k]);
  }
  w.family("passgate_nat_drops_total", "counter", "Packets dropped by the NAT engine, by reason.");
  for (unsigned k = 1; k < stats::drop_reason_count; ++k)
    w.sample("passgate_nat_drops_total", s.nat.drop[k],
             fmt::format("reason=\"{}\"", stats::drop_reason_name(static_cast<stats::DropReason>(k))));
  w.family("passgate_nat_malformed_total", "counter", "Malformed packets dropped, by parse error.");
  for (unsigned k = 1; k < packet::parse_error_count; ++k)
    w.sample("passgate_nat_malformed_total", s.nat.parse_error[k],
             fmt::format("reason=\"{}\"", packet::parse_error_name(static_cast<packet::ParseError>(k))));

  // Steering between workers (lib/steering).
  w.family("passgate_port_handoffs_total", "counter",
           "Packets one worker received and handed to the worker that owns them (out), and taken over (in).");
  for (std::size_t p = 0; p < s.ports.size(); ++p) {
    w.sample("passgate_port_handoffs_total", s.ports[p].handoff_out, port_label(p) + ",direction=\"out\"");
    w.sample("passgate_port_handoffs_total", s.ports[p].handoff_in, port_label(p) + ",direction=\"in\"");
  }
  if (!s.steering_modes.empty()) {
    w.family("passgate_port_steering_info", "gauge", "How packets reach their worker on the port: rss, handoff or single.");
    for (std::size_t p = 0; p < s.steering_modes.size() && p < s.ports.size(); ++p)
      w.sample("passgate_port_steering_info", 1, port_label(p) + fmt::format(",mode=\"{}\"", s.steering_modes[p]));
  }

  // Per protocol (tcp, udp, icmp; "other" is ESP, GRE and the rest).
  w.family("passgate_nat_protocol_sessions", "gauge", "Active NAT sessions by protocol.");
  for (unsigned p = 0; p < 3; ++p)
    w.sample("passgate_nat_protocol_sessions", s.nat.proto[p].sessions_created - s.nat.proto[p].sessions_expired,
             fmt::format("protocol=\"{}\"", stats::proto_index_name(p)));
  w.family("passgate_nat_protocol_sessions_created_total", "counter", "NAT sessions created, by protocol.");
  for (unsigned p = 0; p < 3; ++p)
    w.sample("passgate_nat_protocol_sessions_created_total", s.nat.proto[p].sessions_created,
             fmt::format("protocol=\"{}\"", stats::proto_index_name(p)));
  w.family("passgate_nat_protocol_sessions_expired_total", "counter", "NAT sessions removed after their timeout, by protocol.");
  for (unsigned p = 0; p < 3; ++p)
    w.sample("passgate_nat_protocol_sessions_expired_total", s.nat.proto[p].sessions_expired,
             fmt::format("protocol=\"{}\"", stats::proto_index_name(p)));
  w.family("passgate_nat_protocol_translations_total", "counter",
           "Packets translated through a session (hits), by protocol and direction.");
  for (unsigned p = 0; p < 3; ++p) {
    w.sample("passgate_nat_protocol_translations_total", s.nat.proto[p].translated_outbound,
             fmt::format("protocol=\"{}\",direction=\"outbound\"", stats::proto_index_name(p)));
    w.sample("passgate_nat_protocol_translations_total", s.nat.proto[p].translated_inbound,
             fmt::format("protocol=\"{}\",direction=\"inbound\"", stats::proto_index_name(p)));
  }
  w.family("passgate_nat_protocol_drops_total", "counter", "Packets dropped by the NAT engine, by protocol and reason.");
  for (unsigned p = 0; p < stats::proto_index_count; ++p)
    for (unsigned k = 1; k < stats::drop_reason_count; ++k)
      if (s.nat.proto[p].drop[k])  // only reasons that happened: 4 x 40 mostly-zero series help nobody
        w.sample("passgate_nat_protocol_drops_total", s.nat.proto[p].drop[k],
                 fmt::format("protocol=\"{}\",reason=\"{}\"", stats::proto_index_name(p),
                             stats::drop_reason_name(static_cast<stats::DropReason>(k))));

  struct Gauge {
    const char* name;
    const char* help;
    std::uint64_t value;
  };
  const Gauge gauges[] = {
      {"passgate_nat_sessions", "Active NAT sessions.", s.sessions},
      {"passgate_nat_mappings", "Active endpoint-independent mappings, including ports held before reuse.", s.mappings},
      {"passgate_nat_subscribers", "Subscribers with NAT state.", s.subscribers},
      {"passgate_nat_port_blocks", "Port blocks given to subscribers.", s.blocks},
      {"passgate_esp_security_associations", "ESP security associations tracked.", s.esp_sas},
      {"passgate_esp_learners", "Clients waiting for a server's first ESP answer.", s.esp_learners},
      {"passgate_esp_held_packets", "ESP packets held while another client learns.", s.esp_held},
      {"passgate_pptp_calls", "PPTP calls with a translated Call ID.", s.pptp_calls},
      {"passgate_gre_tunnels", "GRE version 0 tunnels.", s.gre_tunnels},
      {"passgate_mbuf_pool_size", "Packet buffers in the pool.", s.mbufs_total},
      {"passgate_mbuf_pool_free", "Packet buffers free in the pool.", s.mbufs_free},
      {"passgate_workers", "Worker lcores running NAT engines.", s.workers},
  };
  for (const Gauge& g : gauges) {
    w.family(g.name, "gauge", g.help);
    w.sample(g.name, g.value);
  }

  // Per pool (RFC 6888 REQ-4/REQ-11: operators watch port exhaustion).
  struct PoolMetric {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t (*value)(const stats::PoolUsage&);
  };
  static constexpr PoolMetric pool_metrics[] = {
      {"passgate_pool_addresses", "gauge", "Public addresses of the pool that hand out new port blocks.",
       [](const stats::PoolUsage& u) -> std::uint64_t { return u.addresses; }},
      {"passgate_pool_addresses_draining", "gauge",
       "Public addresses removed by a reload whose port blocks are still in use.",
       [](const stats::PoolUsage& u) -> std::uint64_t { return u.addresses_draining; }},
      {"passgate_pool_port_blocks", "gauge", "Port blocks on the pool's addresses (capacity).",
       [](const stats::PoolUsage& u) -> std::uint64_t { return u.blocks_total; }},
      {"passgate_pool_port_blocks_in_use", "gauge", "Port blocks given to subscribers.",
       [](const stats::PoolUsage& u) -> std::uint64_t { return u.blocks_in_use; }},
      {"passgate_pool_subscribers", "gauge", "Subscribers with state in the pool.",
       [](const stats::PoolUsage& u) -> std::uint64_t { return u.subscribers; }},
      {"passgate_pool_exhaustion_events_total", "counter",
       "Times the pool or a subscriber's ports were exhausted (new flows dropped).",
       [](const stats::PoolUsage& u) -> std::uint64_t { return u.exhaustion_events; }},
  };
  if (!s.pools.empty())
    for (const PoolMetric& m : pool_metrics) {
      w.family(m.name, m.type, m.help);
      for (const stats::PoolUsage& u : s.pools)
        w.sample(m.name, m.value(u),
                 fmt::format("pool=\"{}\",state=\"{}\"", escape_label(u.name), u.retired ? "draining" : "active"));
    }

  // The policy in force and the reloads.
  w.family("passgate_config_generation", "gauge", "Generation of the policy in force (1 at start, +1 per reload).");
  w.sample("passgate_config_generation", s.config.generation);
  w.family("passgate_config_loaded_timestamp_seconds", "gauge", "Unix time the policy in force was loaded.");
  w.sample("passgate_config_loaded_timestamp_seconds", s.config.loaded_unix_s);
  w.family("passgate_config_reloads_total", "counter", "Reload requests by result.");
  w.sample("passgate_config_reloads_total", s.config.reloads_applied, "result=\"applied\"");
  w.sample("passgate_config_reloads_total", s.config.reloads_rejected, "result=\"rejected\"");

  // NAT event export (IPFIX RFC 8158, syslog RFC 5424).
  w.family("passgate_nat_events_total", "counter", "NAT events handed from the workers to the control core.");
  w.sample("passgate_nat_events_total", s.exports.events);
  w.family("passgate_export_records_total", "counter", "Event records sent, by exporter.");
  w.sample("passgate_export_records_total", s.exports.ipfix_records, "exporter=\"ipfix\"");
  w.sample("passgate_export_records_total", s.exports.syslog_messages, "exporter=\"syslog\"");
  w.family("passgate_export_messages_total", "counter", "IPFIX messages sent.");
  w.sample("passgate_export_messages_total", s.exports.ipfix_messages, "exporter=\"ipfix\"");
  w.family("passgate_export_errors_total", "counter", "Messages the kernel refused to send, by exporter.");
  w.sample("passgate_export_errors_total", s.exports.ipfix_errors, "exporter=\"ipfix\"");
  w.sample("passgate_export_errors_total", s.exports.syslog_errors, "exporter=\"syslog\"");
  // Runtime accounting (stats/runtime.hpp): where each worker's cycles go.
  // Clocks per packet of a stage = rate(cycles) / rate(packets).
  if (!s.runtime.workers.empty()) {
    w.family("passgate_tsc_hertz", "gauge", "Rate of the cycle counter the stage cycles are counted in.");
    w.sample("passgate_tsc_hertz", s.runtime.tsc_hz);
    struct StageMetric {
      const char* name;
      const char* help;
      std::uint64_t stats::StageCounter::*field;
    };
    static constexpr StageMetric stage_metrics[] = {
        {"passgate_worker_stage_cycles_total", "Cycles a worker spent in a stage of its loop.",
         &stats::StageCounter::cycles},
        {"passgate_worker_stage_calls_total", "Times a worker ran a stage (per burst, not per packet).",
         &stats::StageCounter::calls},
        {"passgate_worker_stage_packets_total", "Packets a worker's stage handled.", &stats::StageCounter::packets},
    };
    for (const StageMetric& m : stage_metrics) {
      w.family(m.name, "counter", m.help);
      for (std::size_t k = 0; k < s.runtime.workers.size(); ++k)
        for (unsigned st = 0; st < stats::stage_count; ++st)
          w.sample(m.name, s.runtime.workers[k][st].*m.field,
                   fmt::format("worker=\"{}\",stage=\"{}\"", k, stats::stage_name(static_cast<stats::Stage>(st))));
    }
  }

  // Routing health (issue 15): only with a health: section, so that an
  // alert on "not announced" never fires on a box that announces nothing.
  if (s.health.configured) {
    const stats::HealthState& h = s.health;
    w.family("passgate_health_announced", "gauge", "1 when the box's routing announcements are enabled (health:).");
    w.sample("passgate_health_announced", h.state == stats::Announcement::announced ? 1 : 0);
    w.family("passgate_health_state", "gauge", "The health state, one-hot: withdrawn, holding (hold-down) or announced.");
    for (auto a : {stats::Announcement::withdrawn, stats::Announcement::holding, stats::Announcement::announced})
      w.sample("passgate_health_state", h.state == a ? 1 : 0, fmt::format("state=\"{}\"", stats::to_string(a)));
    w.family("passgate_health_check_failing", "gauge", "1 while a health check fails, by check.");
    for (unsigned r = 0; r < stats::health_reason_count; ++r)
      w.sample("passgate_health_check_failing", (h.reasons >> r) & 1u,
               fmt::format("check=\"{}\"", stats::to_string(static_cast<stats::HealthReason>(r))));
    w.family("passgate_health_transitions_total", "counter", "Changes of the health state.");
    w.sample("passgate_health_transitions_total", h.transitions);
    w.family("passgate_health_withdrawals_total", "counter", "Times the box was withdrawn, by reason among the causes.");
    for (unsigned r = 0; r < stats::health_reason_count; ++r)
      w.sample("passgate_health_withdrawals_total", h.withdrawals[r],
               fmt::format("reason=\"{}\"", stats::to_string(static_cast<stats::HealthReason>(r))));
    w.family("passgate_health_daemon_connected", "gauge", "1 when the last exchange with the routing daemon succeeded.");
    w.sample("passgate_health_daemon_connected", h.daemon_connected ? 1 : 0);
    w.family("passgate_health_daemon_errors_total", "counter", "Commands to the routing daemon that failed or timed out.");
    w.sample("passgate_health_daemon_errors_total", h.daemon_errors);
  }
  return w.take();
}

}  // namespace passgate::control
