// control: the Prometheus listen address (also --prometheus), the telemetry
// socket's group (resolved now, so a missing group is reported at its line),
// the gateway's own log, and NAT event export to collectors.
#include "config/readers.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grp.h>

#include "packet/address_text.hpp"

namespace passgate::config {

using packet::text::parse_ipv4;
using packet::text::parse_port;

namespace {

// "ADDRESS:PORT" with a strict dotted IPv4 address (no leading zeros, no
// spaces) and a port from 1 to 65535.
bool valid_endpoint(std::string_view s) { return packet::text::parse_endpoint(s).has_value(); }

void read_endpoint(Checker& c, const Mapping& m, std::string_view key, std::string& out, std::string_view what,
                   std::string_view example) {
  const Field* f = m.get(std::string(key));
  if (!f) return;
  if (auto s = c.text(*f, what)) {
    if (valid_endpoint(*s)) out = *s;
    else
      c.error(Code::bad_endpoint, *f,
              fmt::format("expected {} as IPv4ADDRESS:PORT (e.g. {}), got '{}'", what, example, *s));
  }
}

// The Prometheus listen address (see parse_listen_address): loopback unless
// an address is written. civetweb would read "9469" as every interface and
// takes suffixes ("9469r", "9469s") and lists: none of that gets through.
std::optional<std::string> listen_address(std::string_view text, std::string* problem) {
  const auto fail = [&](std::string_view why) -> std::optional<std::string> {
    *problem = fmt::format("expected PORT (on 127.0.0.1, loopback) or IPv4:PORT (e.g. 9469, 192.0.2.1:9469){}, "
                           "got '{}'",
                           why, text);
    return std::nullopt;
  };
  const std::size_t colon = text.rfind(':');
  const std::string_view port_text = colon == std::string_view::npos ? text : text.substr(colon + 1);
  const auto port = parse_port(port_text);
  if (!port) return fail("; the port is 1 to 65535");
  if (colon == std::string_view::npos || colon == 0) return fmt::format("127.0.0.1:{}", *port);
  const std::string_view address_text = text.substr(0, colon);
  const auto address = parse_ipv4(address_text);
  if (!address) return fail("; the address is a dotted IPv4 address");
  const std::uint32_t a = address->host();
  if (a != 0 && reserved_in(a, a) && (a >> 24) != 127)
    return fail(fmt::format("; {} is in {}, not an address of this host (0.0.0.0 is every interface)", address_text,
                            reserved_in(a, a)));
  return fmt::format("{}:{}", address_text, *port);
}

}  // namespace

// control: the Prometheus endpoint, the telemetry socket's group, the
// gateway's own log, NAT event export.
void read_control(Checker& c, const Field& f, ControlConfig& out) {
  const Mapping m(c, f, {"prometheus", "telemetry_group", "log_level", "log_to_syslog", "nat_events"});
  if (!m.ok()) return;
  if (const Field* pf = m.get("prometheus"))
    if (auto s = c.text(*pf, "the Prometheus listen address, PORT or IPv4:PORT")) {
      std::string problem;
      if (auto listen = listen_address(*s, &problem)) out.prometheus = *listen;
      else
        c.error(Code::bad_endpoint, *pf, problem);
    }
  if (const Field* gf = m.get("telemetry_group"))
    if (auto s = c.text(*gf, "a group name like passgate")) {
      // Resolved now, so --check and a reload report a group this host lacks.
      std::vector<char> buffer(16384);
      group entry{};
      group* found = nullptr;
      const int rc = s->empty() ? ENOENT : getgrnam_r(s->c_str(), &entry, buffer.data(), buffer.size(), &found);
      if (found) {
        out.telemetry_group = *s;
        out.telemetry_gid = found->gr_gid;
      } else {
        c.error(Code::unknown_group, *gf,
                fmt::format("no group '{}' on this host{}; expected the group whose members may use "
                            "passgatectl (the telemetry socket becomes 0660, its directory 0750)",
                            *s, rc != 0 && rc != ENOENT ? fmt::format(" ({})", std::strerror(rc)) : ""));
      }
    }
  if (const Field* lf = m.get("log_level"))
    if (auto s = c.text(*lf, "error, warning, notice, info or debug")) {
      if (*s == "error" || *s == "warning" || *s == "notice" || *s == "info" || *s == "debug") out.log_level = *s;
      else
        c.error(Code::bad_choice, *lf, fmt::format("expected error, warning, notice, info or debug, got '{}'", *s));
    }
  set_bool(c, m, "log_to_syslog", out.log_to_syslog);
  const Field* ef = m.get("nat_events");
  if (!ef) return;
  const Mapping em(c, *ef, {"sessions", "destinations", "ipfix", "syslog"});
  if (!em.ok()) return;
  set_bool(c, em, "sessions", out.log_sessions);
  set_bool(c, em, "destinations", out.log_destinations);
  if (const Field* xf = em.get("ipfix")) {
    const Mapping xm(c, *xf, {"collector", "observation_domain", "template_refresh_s"});
    if (xm.ok()) {
      IpfixExportConfig x;
      if (!xm.require("collector")) return;
      read_endpoint(c, xm, "collector", x.collector, "the IPFIX collector", "192.0.2.10:4739");
      set_integer(c, xm, "observation_domain", x.observation_domain, 0, 0xffffffffu, "an IPFIX observation domain id");
      set_integer(c, xm, "template_refresh_s", x.template_refresh_s, 10, 86400, "seconds (RFC 7011 8.4)");
      out.ipfix = x;
    }
  }
  if (const Field* sf = em.get("syslog")) {
    const Mapping sm(c, *sf, {"server", "facility"});
    if (sm.ok()) {
      SyslogExportConfig x;
      if (!sm.require("server")) return;
      read_endpoint(c, sm, "server", x.server, "the syslog server", "192.0.2.11:514");
      if (const Field* ff = sm.get("facility"))
        if (auto s = c.text(*ff, "local0 to local7, daemon or user")) {
          static constexpr std::pair<const char*, int> names[] = {
              {"user", 1}, {"daemon", 3}, {"local0", 16}, {"local1", 17}, {"local2", 18}, {"local3", 19},
              {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23}};
          bool found = false;
          for (const auto& [name, code] : names)
            if (*s == name) {
              x.facility = code;
              found = true;
            }
          if (!found)
            c.error(Code::bad_choice, *ff,
                    fmt::format("expected local0 to local7, daemon or user (RFC 5424 facility), got '{}'", *s));
        }
      out.syslog = x;
    }
  }
}

std::optional<std::string> parse_listen_address(std::string_view text, std::string* problem) {
  return listen_address(text, problem);
}

}  // namespace passgate::config
