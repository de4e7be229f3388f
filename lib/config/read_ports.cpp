// ports: each port's device, role, addresses, next hops, neighbours and
// kernel interface (exception), then the rules between ports (names, devices,
// subnets and kernel interface names used once; exactly one inside and one
// outside port). Next hops and neighbours must be on-link, which is checked
// only when the port's own address parsed.
#include "config/readers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "packet/address_text.hpp"

namespace passgate::config {

using packet::text::is_hex_digit;
using packet::text::parse_prefix;

namespace {

bool is_pci_address(std::string_view s) {  // dddd:bb:dd.f
  if (s.size() != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (!is_hex_digit(s[i])) return false;
  return s[11] >= '0' && s[11] <= '7';
}

bool is_vdev(std::string_view s) {  // net_<driver><n>[,key=value...]
  if (s.rfind("net_", 0) != 0) return false;
  const std::size_t comma = s.find(',');
  const std::string_view name = s.substr(4, comma == std::string_view::npos ? std::string_view::npos : comma - 4);
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
      }))
    return false;
  if (comma == std::string_view::npos) return true;
  const std::string_view args = s.substr(comma + 1);
  return !args.empty() && std::none_of(args.begin(), args.end(), [](char ch) { return ch == ' ' || ch == '\t'; });
}

// What EAL calls the device: the vdev name without its arguments, or the PCI address.
std::string device_key(std::string_view device) {
  std::string key(device.substr(0, device.find(',')));
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return key;
}

// What the kernel takes as an interface name (IFNAMSIZ less the NUL), kept
// to characters that need no quoting in ip(8), sysctl paths and scripts.
constexpr std::size_t max_interface_name = 15;
bool is_interface_name(std::string_view s) {
  return !s.empty() && s.size() <= max_interface_name && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char ch) {
           return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '-' || ch == '.';
         });
}

// A host on the port's subnet: gateway, route next hop, static neighbour.
bool on_link(Checker& c, const Field& f, be32 a, const PortConfig& port, std::string_view what) {
  const Ipv4Prefix subnet = port.subnet();
  if (!subnet.contains(a)) {
    c.error(Code::not_on_link, f,
            fmt::format("{} {} is outside the port's subnet {}; expected an on-link address", what, to_string(a),
                        to_string(subnet)));
    return false;
  }
  if (a == port.address) {
    c.error(Code::not_a_host, f,
            fmt::format("{} {} is the port's own address; expected another host on {}", what, to_string(a),
                        to_string(subnet)));
    return false;
  }
  if (subnet.length <= 30 && (a.host() == network_of(subnet) || a.host() == broadcast_of(subnet))) {
    c.error(Code::not_a_host, f,
            fmt::format("{} {} is the {} address of {}; expected a host address", what, to_string(a),
                        a.host() == network_of(subnet) ? "network" : "broadcast", to_string(subnet)));
    return false;
  }
  return true;
}

// ports[].exception (written after name, which is its default interface).
void read_exception(Checker& c, const Field& f, PortSeen& p) {
  // `exception:` with nothing under it: the defaults, as `exception: {}`.
  const Field f_map = f.node.IsNull() ? Field{YAML::Node(YAML::NodeType::Map), f.key_mark, f.path} : f;
  const Mapping m(c, f_map, {"interface", "rate", "burst", "allow", "device"});
  if (!m.ok()) return;
  ExceptionConfig e;
  const std::string_view expected = "a Linux interface name of 1 to 15 letters, digits, '.', '_' or '-' like outside";
  if (const Field* inf = m.get("interface")) {
    if (auto s = c.text(*inf, expected)) {
      if (is_interface_name(*s)) {
        e.interface = *s;
        p.interface_f = *inf;
      } else {
        c.error(Code::bad_interface, *inf, fmt::format("expected {}, got '{}'", expected, *s));
      }
    }
  } else if (p.name_ok) {
    if (p.cfg.name.size() > max_interface_name)
      c.error_at_key(Code::bad_interface, f,
                     fmt::format("the kernel interface would take the port's name '{}', {} characters, and the kernel "
                                 "takes at most {}; expected exception.interface with a shorter name",
                                 p.cfg.name, p.cfg.name.size(), max_interface_name));
    else {
      e.interface = p.cfg.name;
      p.interface_f = f;
    }
  }
  set_integer(c, m, "rate", e.rate, 1, 1000000, "packets per second per worker");
  set_integer(c, m, "burst", e.burst, 1, 100000, "packets");
  if (const Field* af = m.get("allow"))
    if (const auto items = sequence(c, *af, "source prefixes like [198.51.100.254/32]", false))
      for (const Field& item : *items)
        if (const auto pre = c.network_prefix(item, "198.51.100.254/32")) e.allow.push_back(*pre);
  if (const Field* df = m.get("device")) {
    const std::string_view dev_expected = "a virtual device like net_virtio_user0,path=/dev/vhost-net or a PCI address";
    if (auto s = c.text(*df, dev_expected)) {
      if (is_pci_address(*s) || is_vdev(*s)) {
        e.device = *s;
        p.exception_device_f = *df;
      } else {
        c.error(Code::bad_device, *df, fmt::format("expected {}, got '{}'", dev_expected, *s));
      }
    }
  }
  p.cfg.exception = std::move(e);
}

void read_port(Checker& c, PortSeen& p) {
  const Mapping m(c, p.item,
                  {"name", "device", "role", "address", "gateway", "routes", "mtu", "vlan", "neighbours", "rx_queues",
                   "tx_queues", "rx_descriptors", "tx_descriptors", "promiscuous", "mac", "exception"});
  if (!m.ok()) return;
  PortConfig& cfg = p.cfg;

  if (const Field* f = m.require("name")) {
    p.name_f = *f;
    if (auto n = c.name(*f, "inside")) {
      cfg.name = *n;
      p.name_ok = true;
    }
  }
  if (const Field* f = m.require("device")) {
    p.device_f = *f;
    const std::string_view expected =
        "a PCI address like 0000:03:00.0 or a virtual device like net_af_packet0,iface=eth1";
    if (auto s = c.text(*f, expected)) {
      if (is_pci_address(*s) || is_vdev(*s)) {
        cfg.device = *s;
        p.device_ok = true;
      } else {
        c.error(Code::bad_device, *f, fmt::format("expected {}, got '{}'", expected, *s));
      }
    }
  }
  if (const Field* f = m.require("role")) {
    p.role_f = *f;
    if (auto s = c.text(*f, "inside or outside")) {
      if (*s == "inside" || *s == "outside") {
        cfg.role = *s == "inside" ? PortRole::inside : PortRole::outside;
        p.role_ok = true;
      } else {
        c.error(Code::bad_choice, *f, fmt::format("expected inside or outside, got '{}'", *s));
      }
    }
  }
  if (const Field* f = m.require("address")) {
    p.address_f = *f;
    const std::string_view expected = "the port's address and prefix length like 100.64.0.1/24";
    if (auto s = c.text(*f, expected)) {
      const auto pre = parse_prefix(*s);
      if (!pre) {
        c.error(Code::bad_prefix, *f, fmt::format("expected {}, got '{}'", expected, *s));
      } else if (pre->length == 0 || pre->length == 32) {
        c.error(Code::bad_prefix, *f,
                fmt::format("{} has prefix length /{}; expected /1 to /31 so that neighbours are on-link", *s,
                            pre->length));
      } else if (const char* r = reserved_in(pre->address.host(), pre->address.host())) {
        c.error(Code::reserved_address, *f,
                fmt::format("{} is in {}; expected a unicast address", to_string(pre->address), r));
      } else if (pre->length <= 30 && pre->address.host() == network_of(*pre)) {
        c.error(Code::not_a_host, *f,
                fmt::format("{} is the network address of {}; expected a host address in the subnet",
                            to_string(pre->address), to_string(*pre)));
      } else if (pre->length <= 30 && pre->address.host() == broadcast_of(*pre)) {
        c.error(Code::not_a_host, *f,
                fmt::format("{} is the broadcast address of {}; expected a host address in the subnet",
                            to_string(pre->address), to_string(*pre)));
      } else {
        cfg.address = pre->address;
        cfg.prefix_length = pre->length;
        p.address_ok = true;
      }
    }
  }

  if (const Field* f = m.get("gateway"))
    if (const auto a = c.address(*f, "198.51.100.254"))
      if (!p.address_ok || on_link(c, *f, *a, cfg, "gateway")) cfg.gateway = *a;

  if (const Field* f = m.get("routes"))
    if (const auto items = sequence(c, *f, "routes like {prefix: 100.65.0.0/16, via: 100.64.0.2}", true))
      for (const Field& item : *items) {
        const Mapping rm(c, item, {"prefix", "via"});
        if (!rm.ok()) continue;
        Route r{};
        bool ok = true;
        if (const Field* pf = rm.require("prefix")) {
          if (const auto pre = c.network_prefix(*pf, "100.65.0.0/16")) {
            r.prefix = *pre;
            for (const Route& earlier : cfg.routes)
              if (earlier.prefix.address == pre->address && earlier.prefix.length == pre->length) {
                c.error(Code::repeated, *pf,
                        fmt::format("a second route to {}; expected each prefix once", to_string(*pre)));
                ok = false;
              }
          } else {
            ok = false;
          }
        } else {
          ok = false;
        }
        if (const Field* vf = rm.require("via")) {
          if (const auto a = c.address(*vf, "100.64.0.2")) {
            r.via = *a;
            if (p.address_ok && !on_link(c, *vf, *a, cfg, "next hop")) ok = false;
          } else {
            ok = false;
          }
        } else {
          ok = false;
        }
        if (ok) cfg.routes.push_back(r);
      }

  set_integer(c, m, "mtu", cfg.mtu, 576, 9000, "bytes; 576 is the datagram every IPv4 host accepts, RFC 791");
  set_integer(c, m, "vlan", cfg.vlan, 0, 4094, "802.1Q VLAN id, 0 = untagged");

  if (const Field* f = m.get("neighbours"))
    if (const auto items = sequence(c, *f, "neighbours like {address: 100.64.0.10, mac: \"02:00:00:00:00:10\"}", true))
      for (const Field& item : *items) {
        const Mapping nm(c, item, {"address", "mac"});
        if (!nm.ok()) continue;
        StaticNeighbour n{};
        bool ok = true;
        if (const Field* af = nm.require("address")) {
          if (const auto a = c.address(*af, "100.64.0.10")) {
            n.address = *a;
            if (p.address_ok && !on_link(c, *af, *a, cfg, "neighbour")) ok = false;
            for (const StaticNeighbour& earlier : cfg.neighbours)
              if (ok && earlier.address == *a) {
                c.error(Code::repeated, *af,
                        fmt::format("neighbour {} is given twice; expected one entry per address", to_string(*a)));
                ok = false;
              }
          } else {
            ok = false;
          }
        } else {
          ok = false;
        }
        if (const Field* mf = nm.require("mac")) {
          if (const auto mac = unicast_mac(c, *mf))
            n.mac = *mac;
          else
            ok = false;
        } else {
          ok = false;
        }
        if (ok) cfg.neighbours.push_back(n);
      }

  set_integer(c, m, "rx_queues", cfg.rx_queues, 1, 128, "one per worker");
  set_integer(c, m, "tx_queues", cfg.tx_queues, 1, 128, "one per worker");
  set_integer(c, m, "rx_descriptors", cfg.rx_descriptors, 64, 32768);
  set_integer(c, m, "tx_descriptors", cfg.tx_descriptors, 64, 32768);
  set_bool(c, m, "promiscuous", cfg.promiscuous);
  if (const Field* mf = m.get("mac")) cfg.mac = unicast_mac(c, *mf);
  if (const Field* ef = m.get("exception")) read_exception(c, *ef, p);
}

// Kernel interfaces and exception devices against every port and each other:
// all live in passgate's network namespace and on EAL's device list, so a
// name used twice would make one of them fail at start, or worse, open the
// data port's own interface as the exception interface.
void check_exceptions(Checker& c, const std::vector<PortSeen>& seen) {
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const PortSeen& p = seen[i];
    if (!p.cfg.exception) continue;
    const ExceptionConfig& e = *p.cfg.exception;
    for (std::size_t j = 0; j < seen.size(); ++j) {
      const PortSeen& q = seen[j];
      if (p.interface_f && q.device_ok && device_interface(q.cfg.device) == e.interface) {
        c.error(Code::repeated, *p.interface_f,
                fmt::format("kernel interface '{}' is the interface port '{}' (line {}) opens as its device; expected "
                            "another name (exception.interface)",
                            e.interface, q.cfg.name, line_of(q.item.key_mark)));
      }
      if (p.exception_device_f && q.device_ok && device_key(e.device) == device_key(q.cfg.device))
        c.error(Code::repeated, *p.exception_device_f,
                fmt::format("exception device {} is port '{}' (line {}) itself; expected another device",
                            device_key(e.device), q.cfg.name, line_of(q.item.key_mark)));
      if (j >= i || !q.cfg.exception) continue;
      if (p.interface_f && q.interface_f && q.cfg.exception->interface == e.interface)
        c.error(Code::repeated, *p.interface_f,
                fmt::format("kernel interface '{}' is already port '{}''s (line {}); expected one per port",
                            e.interface, q.cfg.name, line_of(q.item.key_mark)));
      if (p.exception_device_f && q.exception_device_f && device_key(e.device) == device_key(q.cfg.exception->device))
        c.error(Code::repeated, *p.exception_device_f,
                fmt::format("exception device {} is already port '{}''s (line {}); expected one per port",
                            device_key(e.device), q.cfg.name, line_of(q.item.key_mark)));
    }
  }
}

}  // namespace

std::string_view device_interface(std::string_view device) {
  for (std::size_t at = device.find(','); at != std::string_view::npos; at = device.find(',', at + 1)) {
    const std::string_view arg = device.substr(at + 1, device.find(',', at + 1) - at - 1);
    if (arg.rfind("iface=", 0) == 0) return arg.substr(6);
  }
  return {};
}

void read_ports(Checker& c, const Field& f, std::vector<PortSeen>& seen) {
  const auto items = sequence(c, f, "ports (one inside, one outside)", false);
  if (!items) return;
  for (const Field& item : *items) {
    seen.emplace_back();
    seen.back().item = item;
    read_port(c, seen.back());
  }
  const bool all_roles = std::all_of(seen.begin(), seen.end(), [](const PortSeen& p) { return p.role_ok; });

  for (std::size_t i = 0; i < seen.size(); ++i) {
    const PortSeen& p = seen[i];
    for (std::size_t j = 0; j < i; ++j) {
      const PortSeen& q = seen[j];
      if (p.name_ok && q.name_ok && p.cfg.name == q.cfg.name)
        c.error(Code::repeated, *p.name_f,
                fmt::format("duplicate port name '{}'; first used on line {}", p.cfg.name, line_of(q.item.key_mark)));
      if (p.device_ok && q.device_ok && device_key(p.cfg.device) == device_key(q.cfg.device))
        c.error(Code::repeated, *p.device_f,
                fmt::format("device {} is already used by port '{}' (line {})", device_key(p.cfg.device), q.cfg.name,
                            line_of(q.item.key_mark)));
      if (p.address_ok && q.address_ok && overlap(p.cfg.subnet(), q.cfg.subnet()))
        c.error(
            Code::overlap, *p.address_f,
            fmt::format("subnet {} overlaps subnet {} of port '{}' (line {}); expected disjoint "
                        "subnets on different ports",
                        to_string(p.cfg.subnet()), to_string(q.cfg.subnet()), q.cfg.name, line_of(q.item.key_mark)));
    }
    // The dataplane handles exactly one inside and one outside port for now.
    if (p.role_ok)
      for (std::size_t j = 0; j < i; ++j)
        if (seen[j].role_ok && seen[j].cfg.role == p.cfg.role) {
          const char* role = p.cfg.role == PortRole::inside ? "inside" : "outside";
          c.error(Code::port_roles, *p.role_f,
                  fmt::format("a second {} port; passgate supports exactly one inside and one outside port "
                              "for now, and port '{}' (line {}) is already the {} port",
                              role, seen[j].cfg.name, line_of(seen[j].item.key_mark), role));
          break;
        }
  }
  check_exceptions(c, seen);
  if (all_roles && !seen.empty()) {
    for (PortRole role : {PortRole::inside, PortRole::outside})
      if (std::none_of(seen.begin(), seen.end(), [&](const PortSeen& p) { return p.cfg.role == role; }))
        c.error_at_key(Code::port_roles, f,
                       fmt::format("no {} port; expected exactly one port with role inside and one with role outside",
                                   role == PortRole::inside ? "inside" : "outside"));
  }
}

}  // namespace passgate::config
