// nat.pools: each pool's mode (dynamic blocks or deterministic, RFC 7422),
// subscriber prefixes, public addresses (single, range or prefix, never
// reserved, never a port's own address), port range, block size or sharing
// ratio and per-subscriber limits, with the RFC 6888 rules between
// them; then each pool against the earlier ones (names, prefixes and public
// addresses used once).
#include "config/readers.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "nat/deterministic.hpp"
#include "packet/address_text.hpp"

namespace passgate::config {

using nat::Filtering;
using packet::text::parse_ipv4;
using packet::text::parse_port;

namespace {

std::optional<AddressRange> public_range(Checker& c, const Field& f) {
  const std::string_view expected =
      "a public address, range or prefix like 198.51.100.10, 198.51.100.10-198.51.100.13 or 198.51.100.16/28";
  const auto s = c.text(f, expected);
  if (!s) return std::nullopt;
  AddressRange r{};
  if (const std::size_t dash = s->find('-'); dash != std::string::npos) {
    const auto first = parse_ipv4(std::string_view(*s).substr(0, dash));
    const auto last = parse_ipv4(std::string_view(*s).substr(dash + 1));
    if (!first || !last) {
      c.error(Code::bad_range, f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    if (first->host() > last->host()) {
      c.error(Code::bad_range, f,
              fmt::format("range {} ends before it starts; expected first-last with first <= last", *s));
      return std::nullopt;
    }
    r = AddressRange{*first, *last};
  } else if (s->find('/') != std::string::npos) {
    const auto p = c.network_prefix(f, "198.51.100.16/28");
    if (!p) return std::nullopt;
    r = AddressRange{be32::from_host(network_of(*p)), be32::from_host(broadcast_of(*p))};
  } else {
    const auto a = parse_ipv4(*s);
    if (!a) {
      c.error(Code::bad_address, f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    r = AddressRange{*a, *a};
  }
  if (const char* why = reserved_in(r.first.host(), r.last.host())) {
    c.error(Code::reserved_address, f, fmt::format("{} includes {}; expected public unicast addresses", *s, why));
    return std::nullopt;
  }
  return r;
}

}  // namespace

std::string pool_label(const PoolSeen& p) {
  return p.name_ok ? fmt::format("pool '{}' (line {})", p.cfg.name, line_of(p.item.key_mark))
                   : fmt::format("the pool on line {}", line_of(p.item.key_mark));
}

void read_pool(Checker& c, PoolSeen& p, const std::vector<PortSeen>& ports, unsigned workers) {
  const Mapping m(c, p.item,
                  {"name", "mode", "subscribers", "public", "ports", "block_size", "max_blocks_per_subscriber",
                   "max_sessions_per_subscriber", "filtering", "sharing_ratio", "log_blocks"});
  if (!m.ok()) return;
  PoolConfig& cfg = p.cfg;
  const Field* mode_f = m.get("mode");
  if (mode_f) {
    const std::string_view expected = "dynamic (port blocks on demand) or deterministic (RFC 7422)";
    if (const auto s = c.text(*mode_f, expected)) {
      if (*s == "deterministic")
        cfg.mode = nat::PoolMode::deterministic;
      else if (*s != "dynamic")
        c.error(Code::bad_choice, *mode_f, fmt::format("expected {}, got '{}'", expected, *s));
    }
  }
  const bool deterministic = cfg.mode == nat::PoolMode::deterministic;
  if (const Field* f = m.require("name"))
    if (p.name_f = *f; auto n = c.name(*f, "cgn")) {
      cfg.name = *n;
      p.name_ok = true;
    }

  if (const Field* f = m.require("subscribers"))
    if (const auto items = sequence(c, *f, "subscriber prefixes like 100.64.0.0/10", false))
      for (const Field& item : *items)
        if (const auto pre = c.network_prefix(item, "100.64.0.0/10")) {
          bool ok = true;
          for (const auto& [earlier, where] : p.subscribers)
            if (overlap(*pre, earlier)) {
              c.error(Code::overlap, item,
                      fmt::format("subscriber prefix {} overlaps {} (line {}) of the same pool", to_string(*pre),
                                  to_string(earlier), line_of(where.node.Mark())));
              ok = false;
              break;
            }
          if (ok) {
            cfg.subscribers.push_back(*pre);
            p.subscribers.emplace_back(*pre, item);
          }
        }

  if (const Field* f = m.require("public")) {
    if (const auto items =
            sequence(c, *f, "public addresses, ranges or prefixes like 198.51.100.10-198.51.100.13", false)) {
      p.publics_ok = true;
      for (const Field& item : *items) {
        const auto r = public_range(c, item);
        if (!r) {
          p.publics_ok = false;
          continue;
        }
        bool ok = true;
        for (const auto& [earlier, where] : p.publics)
          if (overlap(*r, earlier)) {
            c.error(Code::overlap, item,
                    fmt::format("public addresses {} overlap {} (line {}) of the same pool", to_string(*r),
                                to_string(earlier), line_of(where.node.Mark())));
            ok = false;
            break;
          }
        // The gateway answers ARP for its own addresses; a pool address there
        // would be claimed twice.
        for (const PortSeen& port : ports)
          if (port.address_ok && r->first.host() <= port.cfg.address.host() &&
              port.cfg.address.host() <= r->last.host()) {
            c.error(Code::overlap, item,
                    fmt::format("public addresses {} include {}, the own address of port '{}' (line {})", to_string(*r),
                                to_string(port.cfg.address), port.cfg.name, line_of(port.item.key_mark)));
            ok = false;
          }
        if (ok) {
          cfg.public_addresses.push_back(*r);
          p.publics.emplace_back(*r, item);
        } else {
          p.publics_ok = false;
        }
      }
    }
  }

  const Field* ports_f = m.get("ports");
  if (ports_f) {
    const std::string_view expected = "a port range like 1024-65535 (first <= last, from 1 to 65535)";
    if (const auto s = c.text(*ports_f, expected)) {
      const std::size_t dash = s->find('-');
      const auto first = dash == std::string::npos ? std::nullopt : parse_port(std::string_view(*s).substr(0, dash));
      const auto last = dash == std::string::npos ? std::nullopt : parse_port(std::string_view(*s).substr(dash + 1));
      if (!first || !last || *first > *last) {
        c.error(Code::bad_range, *ports_f, fmt::format("expected {}, got '{}'", expected, *s));
      } else {
        cfg.port_min = *first;
        cfg.port_max = *last;
        p.ports_ok = true;
      }
    }
  } else {
    p.ports_ok = true;  // the default range
  }

  // A deterministic subscriber's one block is its range: the keys that size
  // dynamic blocks would be silently ignored, so they are refused.
  if (deterministic)
    for (const char* key : {"block_size", "max_blocks_per_subscriber"})
      if (const Field* f = m.get(key))
        c.error(Code::conflict, *f,
                fmt::format("{} does not apply to a deterministic pool (mode on line {}): each subscriber has one "
                            "range, its ports set by sharing_ratio (RFC 7422); remove it",
                            key, line_of(mode_f->key_mark)));
  if (!deterministic)
    if (const Field* f = m.get("sharing_ratio"))
      c.error(Code::conflict, *f, "sharing_ratio applies only to a pool with mode: deterministic");
  const Field* ratio_f = m.get("sharing_ratio");
  bool ratio_ok = true;
  if (deterministic && ratio_f) {
    const auto v = c.integer(*ratio_f, 1, 65535, "subscribers per public address (RFC 7422)");
    if (v) cfg.sharing_ratio = static_cast<std::uint32_t>(*v);
    ratio_ok = v.has_value();
  }
  cfg.log_blocks = !deterministic;
  if (const Field* f = m.get("log_blocks"))
    if (const auto v = c.boolean(*f)) cfg.log_blocks = *v;

  const Field* block_f = deterministic ? nullptr : m.get("block_size");
  if (block_f) {
    if (const auto v = c.integer(*block_f, 1, 65535, "ports per block, RFC 6888 REQ-13/14")) {
      cfg.block_size = static_cast<std::uint16_t>(*v);
      p.block_ok = true;
    }
  } else {
    p.block_ok = true;
  }
  const unsigned range = cfg.port_max - cfg.port_min + 1u;
  if (!deterministic && p.ports_ok && p.block_ok && cfg.block_size > range) {
    c.error(Code::conflict, block_f ? *block_f : *ports_f,
            fmt::format("block_size {} is larger than the {} ports of the range {}-{}; expected at most {}",
                        cfg.block_size, range, cfg.port_min, cfg.port_max, range));
    p.block_ok = false;
  }

  if (deterministic) {
    cfg.max_blocks_per_subscriber = 1;
    // The arithmetic of deterministic.hpp, once the lists and ports read cleanly.
    if (p.ports_ok && p.publics_ok && ratio_ok && !cfg.subscribers.empty()) {
      const Field& where = ratio_f ? *ratio_f : ports_f ? *ports_f : *mode_f;
      if (const std::string why = nat::deterministic_problem(cfg); !why.empty()) {
        c.error(Code::conflict, where, why);
      } else {
        const nat::DeterministicGeometry geo = nat::deterministic_geometry(cfg);
        if (geo.ports_per_subscriber < workers)
          c.error(Code::conflict, where,
                  fmt::format("{} ports per subscriber (ports {}-{} shared by {} subscribers per public address) cannot "
                              "be split over the {} workers' port combs; expected at least {} ports per subscriber",
                              geo.ports_per_subscriber, cfg.port_min, cfg.port_max, geo.ratio, workers, workers));
      }
    }
  }

  const Field* blocks_f = deterministic ? nullptr : m.get("max_blocks_per_subscriber");
  bool blocks_ok = !blocks_f;
  if (blocks_f)
    if (const auto v = c.integer(*blocks_f, 1, 64, "port limit = blocks x block_size, RFC 6888 REQ-4")) {
      cfg.max_blocks_per_subscriber = static_cast<std::uint16_t>(*v);
      blocks_ok = true;
    }
  // Paired pooling (RFC 6888 REQ-2): a subscriber's blocks all come from one
  // public address, so a limit above what one address holds cannot be reached.
  if (!deterministic && p.ports_ok && p.block_ok && blocks_ok) {
    const unsigned per_address = range / cfg.block_size;
    if (cfg.max_blocks_per_subscriber > per_address)
      c.error(Code::conflict,
              blocks_f  ? *blocks_f
              : ports_f ? *ports_f
              : block_f ? *block_f
                        : p.item,
              fmt::format("max_blocks_per_subscriber {} is more than the {} blocks of {} ports one public address "
                          "holds (ports {}-{}); a subscriber's blocks all come from one address (RFC 6888 REQ-2): "
                          "expected at most {}",
                          cfg.max_blocks_per_subscriber, per_address, cfg.block_size, cfg.port_min, cfg.port_max,
                          per_address));
  }

  set_integer(c, m, "max_sessions_per_subscriber", cfg.max_sessions_per_subscriber, 1, 1u << 30, "RFC 6888 REQ-5");

  if (const Field* f = m.get("filtering")) {
    const std::string_view expected = "endpoint-independent, address-dependent or address-and-port-dependent";
    if (const auto s = c.text(*f, expected)) {
      bool found = false;
      for (Filtering v :
           {Filtering::endpoint_independent, Filtering::address_dependent, Filtering::address_and_port_dependent})
        if (*s == nat::to_string(v)) {
          cfg.filtering = v;
          found = true;
        }
      if (!found) c.error(Code::bad_choice, *f, fmt::format("expected {} (RFC 4787 REQ-8), got '{}'", expected, *s));
    }
  }
}

void check_pool_against_earlier(Checker& c, const PoolSeen& p, std::span<const PoolSeen> earlier) {
  for (const PoolSeen& q : earlier) {
    if (p.name_ok && q.name_ok && p.cfg.name == q.cfg.name)
      c.error(Code::repeated, *p.name_f,
              fmt::format("duplicate pool name '{}'; first used on line {}", p.cfg.name, line_of(q.item.key_mark)));
    for (const auto& [mine, where] : p.subscribers)
      for (const auto& [theirs, there] : q.subscribers)
        if (overlap(mine, theirs)) {
          c.error(Code::overlap, where,
                  fmt::format("subscriber prefix {} overlaps {} of {}; each subscriber belongs to one pool",
                              to_string(mine), to_string(theirs), pool_label(q)));
          break;
        }
    for (const auto& [mine, where] : p.publics)
      for (const auto& [theirs, there] : q.publics)
        if (overlap(mine, theirs)) {
          c.error(Code::overlap, where,
                  fmt::format("public addresses {} overlap {} of {}; each public address belongs to one pool",
                              to_string(mine), to_string(theirs), pool_label(q)));
          break;
        }
  }
}

}  // namespace passgate::config
