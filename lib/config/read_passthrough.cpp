// nat.passthrough: one reader per VPN protocol (lib/passthrough), listed in
// the passthrough_protocols table; the table is also the list of keys the
// section accepts.
#include "config/readers.hpp"

#include <fmt/format.h>

#include <array>
#include <iterator>
#include <string_view>

namespace passgate::config {

namespace {

// nat.passthrough.esp: ESP (IP protocol 50) has no ports. The client's SPI is seen in its
// packets; the server's SPI only in the server's first answer, so the engine
// learns one (public address, server) pair at a time.
void read_esp(Checker& c, const Field& f, nat::PassthroughConfig& out) {
  const Mapping m(c, f, {"enabled", "idle_timeout", "learn_window_ms", "hold_window_ms", "hold_packets", "max_sas",
                         "learner_turn_ms"});
  if (!m.ok()) return;
  nat::EspConfig& e = out.esp;
  set_bool(c, m, "enabled", e.enabled);
  set_integer(c, m, "idle_timeout", e.idle_timeout, 30, 86400, "seconds");
  // hold_window_ms <= learn_window_ms: a held SPI must not wait longer than the
  // client already learning. Reported at hold_window_ms, or at
  // learn_window_ms when hold_window_ms keeps its default.
  const Field* learn_f = m.get("learn_window_ms");
  const Field* hold_f = m.get("hold_window_ms");
  const auto learn = learn_f ? c.integer(*learn_f, 100, 60000, "milliseconds") : e.learn_window_ms;
  const auto hold = hold_f ? c.integer(*hold_f, 100, 60000, "milliseconds") : e.hold_window_ms;
  if (learn && hold && *hold > *learn) {
    if (hold_f)
      c.error(Code::conflict, *hold_f,
              fmt::format("{} ms exceeds learn_window_ms {} ms{}; expected at most {} (a held SPI must "
                          "not wait longer than the client already learning)",
                          *hold, *learn, learn_f ? "" : " (the default)", *learn));
    else
      c.error(Code::conflict, *learn_f,
              fmt::format("{} ms is below hold_window_ms {} ms (the default); expected at least {} or "
                          "a hold_window_ms of at most {}",
                          *learn, *hold, *hold, *learn));
  } else {
    if (learn) e.learn_window_ms = static_cast<std::uint32_t>(*learn);
    if (hold) e.hold_window_ms = static_cast<std::uint32_t>(*hold);
  }
  // learner_turn_ms >= learn_window_ms: a client's first SA always gets its
  // whole learn window (issue 11.9). Left out: twice learn_window_ms.
  if (const Field* turn_f = m.get("learner_turn_ms")) {
    const auto turn = c.integer(*turn_f, 100, 600000, "milliseconds");
    if (turn && learn && *turn < *learn)
      c.error(Code::conflict, *turn_f,
              fmt::format("{} ms is below learn_window_ms {} ms{}; expected at least {} (a turn as learner "
                          "is at least one learn window)",
                          *turn, *learn, learn_f ? "" : " (the default)", *learn));
    else if (turn)
      e.learner_turn_ms = static_cast<std::uint32_t>(*turn);
  }
  set_integer(c, m, "hold_packets", e.hold_packets, 1, 65536, "packets held at once, all servers together");
  set_integer(c, m, "max_sas", e.max_sas, 1, 1u << 24, "security associations tracked");
}

// nat.passthrough.pptp: PPTP (RFC 2637). The TCP 1723 control connection is
// watched; each client Call ID gets a translated value unique per (public
// address, server), restored where the server quotes it, and GRE v1 is
// matched by that key. Ranges are the engine's (NatConfig::validate).
void read_pptp(Checker& c, const Field& f, nat::PassthroughConfig& out) {
  const Mapping m(c, f, {"enabled", "max_calls", "call_idle_timeout", "max_calls_per_subscriber"});
  if (!m.ok()) return;
  nat::PptpConfig& p = out.pptp;
  set_bool(c, m, "enabled", p.enabled);
  set_integer(c, m, "max_calls", p.max_calls, 1, 1u << 22, "calls tracked at once");
  set_integer(c, m, "call_idle_timeout", p.call_idle_timeout, 60, max_timeout_s, "seconds");
  set_integer(c, m, "max_calls_per_subscriber", p.max_calls_per_subscriber, 1, 65535,
              "calls of one subscriber at once");
}

// nat.passthrough.ike (UDP 500 and NAT-T 4500, RFC 3947/3948) and
// nat.passthrough.l2tp (UDP 1701, RFC 2661): ordinary UDP with paired pooling,
// payloads never rewritten. preserve_port keeps the client's source port when
// it is free on the subscriber's public address and not inside another
// subscriber's port block (only opportunistic: RFC 7296 2.23 makes a responder
// accept any port); timeout is these sessions' own UDP timeout, with the
// engine's range (NatConfig::validate).
template <nat::UdpServiceConfig nat::PassthroughConfig::*service>
void read_udp_service(Checker& c, const Field& f, nat::PassthroughConfig& out) {
  const Mapping m(c, f, {"preserve_port", "timeout"});
  if (!m.ok()) return;
  nat::UdpServiceConfig& u = out.*service;
  set_bool(c, m, "preserve_port", u.preserve_port);
  set_integer(c, m, "timeout", u.timeout, 120, 86400, "seconds", "the minimum of 120 s (RFC 4787 REQ-5)");
}

// nat.passthrough.gre: GRE version 0 without PPTP (RFC 2784/2890), one
// tunnel per (inside address, server). Ranges are the engine's.
void read_gre(Checker& c, const Field& f, nat::PassthroughConfig& out) {
  const Mapping m(c, f, {"enabled", "timeout", "max_tunnels", "conflict_idle", "contended_hold"});
  if (!m.ok()) return;
  nat::GreConfig& g = out.gre;
  set_bool(c, m, "enabled", g.enabled);
  set_integer(c, m, "timeout", g.timeout, 60, 86400, "seconds");
  set_integer(c, m, "max_tunnels", g.max_tunnels, 1, 1u << 20, "tunnels tracked at once");
  // No monopoly of a (public address, server) slot (issue 11.9).
  set_integer(c, m, "conflict_idle", g.conflict_idle, 1, 86400, "seconds a holder may be silent while others ask");
  set_integer(c, m, "contended_hold", g.contended_hold, 10, 86400, "seconds a holder keeps a slot others ask for");
}

// The protocols nat.passthrough accepts. Adding one: its struct in
// nat::PassthroughConfig, a reader like read_esp, a row here.
struct PassthroughProtocol {
  std::string_view key;
  void (*read)(Checker&, const Field&, nat::PassthroughConfig&);
};
constexpr PassthroughProtocol passthrough_protocols[] = {
    {"esp", read_esp},
    {"pptp", read_pptp},
    {"ike", read_udp_service<&nat::PassthroughConfig::ike>},
    {"l2tp", read_udp_service<&nat::PassthroughConfig::l2tp>},
    {"gre", read_gre},
};
constexpr auto passthrough_keys = [] {
  std::array<std::string_view, std::size(passthrough_protocols)> keys{};
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = passthrough_protocols[i].key;
  return keys;
}();

}  // namespace

bool read_passthrough(Checker& c, const Field& f, nat::PassthroughConfig& out) {
  const std::size_t errors_before = c.count();
  const Mapping m(c, f, passthrough_keys);
  if (m.ok())
    for (const PassthroughProtocol& p : passthrough_protocols)
      if (const Field* pf = m.get(p.key)) p.read(c, *pf, out);
  return c.count() == errors_before;
}

}  // namespace passgate::config
