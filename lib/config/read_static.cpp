// nat.static: one protocol, inside endpoint and public endpoint per mapping;
// a public endpoint may not lie in a pool's dynamic port range, and no
// endpoint may be mapped twice for one protocol.
#include "config/readers.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <utility>

#include "packet/address_text.hpp"
#include "packet/headers.hpp"

namespace passgate::config {

namespace {

std::optional<std::pair<be32, be16>> endpoint(Checker& c, const Field& f, std::string_view example) {
  const std::string expected = fmt::format("an address and port like {}", example);
  const auto s = c.text(f, expected);
  if (!s) return std::nullopt;
  const auto e = packet::text::parse_endpoint(*s);
  if (!e) {
    c.error(Code::bad_endpoint, f, fmt::format("expected {} (port from 1 to 65535), got '{}'", expected, *s));
    return std::nullopt;
  }
  if (const char* why = reserved_in(e->address.host(), e->address.host())) {
    c.error(Code::reserved_address, f,
            fmt::format("{} is in {}; expected a unicast address", to_string(e->address), why));
    return std::nullopt;
  }
  return std::make_pair(e->address, be16::from_host(e->port));
}

}  // namespace

void read_static(Checker& c, StaticSeen& s, const std::vector<PoolSeen>& pools, std::span<const StaticSeen> earlier) {
  const std::size_t errors_before = c.count();
  const Mapping m(c, s.item, {"protocol", "inside", "public"});
  if (!m.ok()) return;
  bool& proto_ok = s.proto_ok;
  bool& inside_ok = s.inside_ok;
  bool& public_ok = s.public_ok;
  std::optional<Field> public_f, inside_f;
  if (const Field* f = m.require("protocol"))
    if (const auto t = c.text(*f, "tcp or udp")) {
      if (*t == "tcp" || *t == "udp") {
        s.map.protocol = *t == "tcp" ? packet::ip_proto::tcp : packet::ip_proto::udp;
        proto_ok = true;
      } else {
        c.error(Code::bad_choice, *f, fmt::format("expected tcp or udp, got '{}'", *t));
      }
    }
  if (const Field* f = m.require("inside"))
    if (const auto e = endpoint(c, *f, "100.64.0.20:8080")) {
      s.map.inside_address = e->first;
      s.map.inside_port = e->second;
      inside_ok = true;
      inside_f = *f;
    }
  if (const Field* f = m.require("public"))
    if (const auto e = endpoint(c, *f, "198.51.100.30:80")) {
      s.map.public_address = e->first;
      s.map.public_port = e->second;
      public_ok = true;
      public_f = *f;
    }

  if (public_ok) {
    const std::uint16_t port = s.map.public_port.host();
    for (const PoolSeen& p : pools) {
      if (!p.ports_ok || port < p.cfg.port_min || port > p.cfg.port_max) continue;
      for (const auto& [r, where] : p.publics)
        if (r.first.host() <= s.map.public_address.host() && s.map.public_address.host() <= r.last.host())
          c.error(Code::overlap, *public_f,
                  fmt::format("{}:{} lies inside the dynamic range of {}, which hands out ports {}-{} of {}; "
                              "expected a port outside {}-{} or an address outside the pool",
                              to_string(s.map.public_address), port, pool_label(p), p.cfg.port_min, p.cfg.port_max,
                              to_string(r), p.cfg.port_min, p.cfg.port_max));
    }
  }
  if (proto_ok)
    for (const StaticSeen& o : earlier) {
      if (!o.proto_ok || o.map.protocol != s.map.protocol) continue;
      if (public_ok && o.public_ok && o.map.public_address == s.map.public_address &&
          o.map.public_port == s.map.public_port)
        c.error(Code::repeated, *public_f,
                fmt::format("public {}:{} is already mapped by the static mapping on line {}",
                            to_string(s.map.public_address), s.map.public_port.host(), line_of(o.item.key_mark)));
      if (inside_ok && o.inside_ok && o.map.inside_address == s.map.inside_address &&
          o.map.inside_port == s.map.inside_port)
        c.error(Code::repeated, *inside_f,
                fmt::format("inside {}:{} is already mapped by the static mapping on line {}",
                            to_string(s.map.inside_address), s.map.inside_port.host(), line_of(o.item.key_mark)));
    }
  s.clean = c.count() == errors_before;
}

}  // namespace passgate::config
