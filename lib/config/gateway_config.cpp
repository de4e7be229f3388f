// YAML to GatewayConfig, with every problem reported at once.
//
// Theory of operation: the document is walked once, section by section, by
// small readers that never stop at a problem. A value that does not fit is
// reported (file, line, column, what was expected, what was found) and left at
// its default, so one run lists every mistake in the file. Rules between
// fields (on-link next hops, one inside and one outside port, pool overlaps,
// static mappings against dynamic port ranges, sizes that cannot work) run on
// the values that did parse and skip what depends on a value already
// reported, so one typo is not reported three times. Last, NatConfig::validate()
// (the engine's own check) runs on the pools and static mappings that passed;
// anything it finds that was not already reported is added at the `nat` key,
// so no rule the engine enforces can be missed here.
//
// yaml-cpp throws; that stays inside this file (the core libraries are built
// without exceptions). Marks from yaml-cpp are 0-based and reported 1-based.
#include "config/gateway_config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <grp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <span>
#include <sstream>
#include <string_view>
#include <utility>

#include "config/mbuf_budget.hpp"
#include "packet/headers.hpp"

namespace passgate::config {

using nat::AddressRange;
using nat::Filtering;
using nat::PoolConfig;
using nat::StaticMapping;
using packet::text::is_hex_digit;
using packet::text::parse_ipv4;
using packet::text::parse_mac;
using packet::text::parse_port;
using packet::text::parse_prefix;
using packet::text::parse_uint;

std::string to_string(const ConfigError& e) {
  if (e.line <= 0) return fmt::format("{}: error: {}", e.file, e.message);
  return fmt::format("{}:{}:{}: error: {}", e.file, e.line, e.column, e.message);
}

namespace {

std::uint32_t network_of(const Ipv4Prefix& p) { return p.network(); }
std::uint32_t broadcast_of(const Ipv4Prefix& p) { return p.broadcast(); }

bool overlap(std::uint32_t a_first, std::uint32_t a_last, std::uint32_t b_first, std::uint32_t b_last) {
  return a_first <= b_last && b_first <= a_last;
}
bool overlap(const AddressRange& a, const AddressRange& b) {
  return overlap(a.first.host(), a.last.host(), b.first.host(), b.last.host());
}
bool overlap(const Ipv4Prefix& a, const Ipv4Prefix& b) {
  return overlap(network_of(a), broadcast_of(a), network_of(b), broadcast_of(b));
}

// How an error names the reserved block [first, last] touches; nullptr: none.
const char* reserved_in(std::uint32_t first, std::uint32_t last) {
  const packet::ReservedBlock* r = packet::reserved_in(first, last);
  return r ? r->what : nullptr;
}

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

std::string join(std::span<const std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string got(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "'" + n.Scalar() + "'";
}

int line_of(const YAML::Mark& m) { return m.line >= 0 ? m.line + 1 : 0; }

// ------------------------------------------------------------ the checker

// A value in the document, where its key (or list item) is, and its path.
struct Field {
  YAML::Node node;
  YAML::Mark key_mark;
  std::string path;  // "nat.pools[0].ports"; empty for the top level
};

class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void error_at(const YAML::Mark& m, std::string message) {
    ConfigError e{file_, line_of(m), 0, std::move(message)};
    if (e.line > 0) e.column = m.column >= 0 ? m.column + 1 : 1;
    errors_.push_back(std::move(e));
  }
  // At the value; an empty value is reported at its key (yaml-cpp places it
  // where the next token starts).
  void error(const Field& f, std::string_view message) {
    const bool empty = !f.node.IsDefined() || f.node.IsNull();
    error_at(empty ? f.key_mark : f.node.Mark(),
             f.path.empty() ? std::string(message) : f.path + ": " + std::string(message));
  }

  // At the key: for a problem with a list or mapping as a whole.
  void error_at_key(const Field& f, std::string_view message) {
    error_at(f.key_mark, f.path.empty() ? std::string(message) : f.path + ": " + std::string(message));
  }

  [[nodiscard]] std::size_t count() const { return errors_.size(); }
  std::vector<ConfigError> take() { return std::move(errors_); }

  std::optional<std::string> text(const Field& f, std::string_view expected) {
    if (!f.node.IsScalar()) {
      error(f, fmt::format("expected {}, got {}", expected, got(f.node)));
      return std::nullopt;
    }
    return f.node.Scalar();
  }

  // minimum_note names the rule behind `min` ("the minimum of 120 s (RFC 4787 REQ-5)").
  std::optional<std::uint64_t> integer(const Field& f, std::uint64_t min, std::uint64_t max, std::string_view unit = {},
                                       std::string_view minimum_note = {}) {
    const std::string range = unit.empty() ? fmt::format("an integer from {} to {}", min, max)
                                           : fmt::format("an integer from {} to {} ({})", min, max, unit);
    const auto s = text(f, range);
    if (!s) return std::nullopt;
    const auto v = parse_uint(*s);
    if (!v) {
      error(f, fmt::format("expected {}, got '{}'", range, *s));
      return std::nullopt;
    }
    if (*v < min && !minimum_note.empty()) {
      error(f, fmt::format("{} is below {}; expected {}", *v, minimum_note, range));
      return std::nullopt;
    }
    if (*v < min || *v > max) {
      error(f, fmt::format("expected {}, got {}", range, *v));
      return std::nullopt;
    }
    return v;
  }

  // A YAML boolean: plain true or false (YAML 1.2 also spells them True, TRUE,
  // False, FALSE). YAML 1.1's yes/no/on/off, 1/0 and quoted strings are refused.
  std::optional<bool> boolean(const Field& f) {
    const auto s = text(f, "true or false");
    if (!s) return std::nullopt;
    const std::string& tag = f.node.Tag();
    const bool plain = tag == "?" || tag == "tag:yaml.org,2002:bool";
    if (plain && (*s == "true" || *s == "True" || *s == "TRUE")) return true;
    if (plain && (*s == "false" || *s == "False" || *s == "FALSE")) return false;
    if (tag == "!") {
      error(f, fmt::format("expected true or false, got the quoted string '{}'; write the boolean without quotes", *s));
    } else if (plain && (*s == "yes" || *s == "no" || *s == "on" || *s == "off" || *s == "y" || *s == "n" ||
                         *s == "Yes" || *s == "No" || *s == "On" || *s == "Off" || *s == "YES" || *s == "NO" ||
                         *s == "ON" || *s == "OFF")) {
      error(f, fmt::format("expected true or false, got '{}' (a YAML 1.1 spelling, not a boolean here)", *s));
    } else {
      error(f, fmt::format("expected true or false, got '{}'", *s));
    }
    return std::nullopt;
  }

  std::optional<std::string> name(const Field& f, std::string_view example) {
    const std::string expected =
        fmt::format("a name of 1 to 32 lowercase letters, digits, '_' or '-' like {}", example);
    const auto s = text(f, expected);
    if (!s) return std::nullopt;
    const bool ok = !s->empty() && s->size() <= 32 && std::all_of(s->begin(), s->end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    });
    if (!ok) {
      error(f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    return s;
  }

  std::optional<be32> address(const Field& f, std::string_view example) {
    const std::string expected = fmt::format("an IPv4 address like {}", example);
    const auto s = text(f, expected);
    if (!s) return std::nullopt;
    const auto a = parse_ipv4(*s);
    if (!a) {
      error(f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    if (const char* r = reserved_in(a->host(), a->host())) {
      error(f, fmt::format("{} is in {}; expected a unicast address", *s, r));
      return std::nullopt;
    }
    return a;
  }

  // A prefix naming a network: no host bits set.
  std::optional<Ipv4Prefix> network_prefix(const Field& f, std::string_view example) {
    const std::string expected = fmt::format("an IPv4 prefix like {}", example);
    const auto s = text(f, expected);
    if (!s) return std::nullopt;
    const auto p = parse_prefix(*s);
    if (!p) {
      error(f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    if (p->address.host() != network_of(*p)) {
      error(f, fmt::format("{} has host bits set; expected the network address {}", *s, to_string(*p)));
      return std::nullopt;
    }
    return p;
  }

  // A host on the port's subnet: gateway, route next hop, static neighbour.
  bool on_link(const Field& f, be32 a, const PortConfig& port, std::string_view what) {
    const Ipv4Prefix subnet = port.subnet();
    if (!subnet.contains(a)) {
      error(f, fmt::format("{} {} is outside the port's subnet {}; expected an on-link address", what, to_string(a),
                           to_string(subnet)));
      return false;
    }
    if (a == port.address) {
      error(f, fmt::format("{} {} is the port's own address; expected another host on {}", what, to_string(a), to_string(subnet)));
      return false;
    }
    if (subnet.length <= 30 && (a.host() == network_of(subnet) || a.host() == broadcast_of(subnet))) {
      error(f, fmt::format("{} {} is the {} address of {}; expected a host address", what, to_string(a),
                           a.host() == network_of(subnet) ? "network" : "broadcast", to_string(subnet)));
      return false;
    }
    return true;
  }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

// A mapping with a fixed set of keys: wrong type, unknown keys and repeated
// keys are reported when it is opened.
class Mapping {
 public:
  Mapping(Checker& c, const Field& f, std::initializer_list<std::string_view> keys)
      : Mapping(c, f, std::span<const std::string_view>(keys.begin(), keys.size())) {}

  // Keys from a table (the passthrough protocols).
  Mapping(Checker& c, const Field& f, std::span<const std::string_view> keys) : c_(c), f_(f) {
    if (!f.node.IsMap()) {
      c.error(f, fmt::format("expected a mapping with the keys {}, got {}", join(keys), got(f.node)));
      return;
    }
    ok_ = true;
    for (auto it = f.node.begin(); it != f.node.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        c.error_at(key.Mark(), fmt::format("expected a key name in {}, got {}", where(), got(key)));
        continue;
      }
      const std::string& k = key.Scalar();
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
        c.error_at(key.Mark(), fmt::format("unknown key '{}' in {}; expected one of: {}", k, where(), join(keys)));
        continue;
      }
      if (const Field* first = get(k)) {
        c.error_at(key.Mark(), fmt::format("duplicate key '{}' in {}; first given on line {}", k, where(),
                                           line_of(first->key_mark)));
        continue;
      }
      entries_.emplace_back(k, Field{it->second, key.Mark(), f.path.empty() ? k : f.path + "." + k});
    }
  }

  [[nodiscard]] bool ok() const { return ok_; }

  [[nodiscard]] const Field* get(std::string_view key) const {
    for (const auto& [k, field] : entries_)
      if (k == key) return &field;
    return nullptr;
  }

  // Missing keys are reported at the mapping's own key (or list item).
  const Field* require(std::string_view key) const {
    if (!ok_) return nullptr;
    const Field* f = get(key);
    if (!f) c_.error_at(f_.key_mark, fmt::format("missing required key '{}' in {}", key, where()));
    return f;
  }

 private:
  [[nodiscard]] std::string where() const { return f_.path.empty() ? "the top level" : f_.path; }

  Checker& c_;
  Field f_;
  bool ok_ = false;
  std::vector<std::pair<std::string, Field>> entries_;
};

// A list; an empty value (every item commented out) is an empty list.
std::optional<std::vector<Field>> sequence(Checker& c, const Field& f, std::string_view of_what, bool may_be_empty) {
  std::vector<Field> items;
  if (f.node.IsNull()) {
    if (may_be_empty) return items;
    c.error(f, fmt::format("expected a list of {}, got nothing", of_what));
    return std::nullopt;
  }
  if (!f.node.IsSequence()) {
    c.error(f, fmt::format("expected a list of {}, got {}", of_what, got(f.node)));
    return std::nullopt;
  }
  std::size_t i = 0;
  for (const YAML::Node& item : f.node) {
    items.push_back(Field{item, item.Mark(), fmt::format("{}[{}]", f.path, i)});
    ++i;
  }
  if (items.empty() && !may_be_empty) {
    c.error(f, fmt::format("expected at least one of {}, got an empty list", of_what));
    return std::nullopt;
  }
  return items;
}

template <typename T>
void set_integer(Checker& c, const Mapping& m, std::string_view key, T& out, std::uint64_t min, std::uint64_t max,
                 std::string_view unit = {}, std::string_view minimum_note = {}) {
  if (const Field* f = m.get(key))
    if (const auto v = c.integer(*f, min, max, unit, minimum_note)) out = static_cast<T>(*v);
}

std::optional<MacAddress> unicast_mac(Checker& c, const Field& f) {
  const std::string_view expected = "a unicast MAC address like 02:00:00:00:00:10";
  const auto s = c.text(f, expected);
  if (!s) return std::nullopt;
  const auto mac = parse_mac(*s);
  if (!mac)
    c.error(f, fmt::format("expected {}, got '{}'", expected, *s));
  else if (mac->bytes[0] & 1)
    c.error(f, fmt::format("{} is a multicast MAC address (first octet odd); expected {}", *s, expected));
  else if (*mac == MacAddress{})
    c.error(f, fmt::format("{} is the zero MAC address; expected {}", *s, expected));
  else
    return mac;
  return std::nullopt;
}

void set_bool(Checker& c, const Mapping& m, std::string_view key, bool& out) {
  if (const Field* f = m.get(key))
    if (const auto v = c.boolean(*f)) out = *v;
}

constexpr std::uint32_t max_timeout_s = 7 * 86400;  // NatConfig::validate's upper bound

// ------------------------------------------------------------ ports

struct PortSeen {
  PortConfig cfg;
  Field item;
  bool name_ok = false, device_ok = false, role_ok = false, address_ok = false;
  std::optional<Field> name_f, device_f, role_f, address_f;
};

void read_port(Checker& c, PortSeen& p) {
  const Mapping m(c, p.item,
                  {"name", "device", "role", "address", "gateway", "routes", "mtu", "vlan", "neighbours", "rx_queues",
                   "tx_queues", "rx_descriptors", "tx_descriptors", "promiscuous", "mac"});
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
        c.error(*f, fmt::format("expected {}, got '{}'", expected, *s));
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
        c.error(*f, fmt::format("expected inside or outside, got '{}'", *s));
      }
    }
  }
  if (const Field* f = m.require("address")) {
    p.address_f = *f;
    const std::string_view expected = "the port's address and prefix length like 100.64.0.1/24";
    if (auto s = c.text(*f, expected)) {
      const auto pre = parse_prefix(*s);
      if (!pre) {
        c.error(*f, fmt::format("expected {}, got '{}'", expected, *s));
      } else if (pre->length == 0 || pre->length == 32) {
        c.error(*f, fmt::format("{} has prefix length /{}; expected /1 to /31 so that neighbours are on-link", *s,
                                pre->length));
      } else if (const char* r = reserved_in(pre->address.host(), pre->address.host())) {
        c.error(*f, fmt::format("{} is in {}; expected a unicast address", to_string(pre->address), r));
      } else if (pre->length <= 30 && pre->address.host() == network_of(*pre)) {
        c.error(*f, fmt::format("{} is the network address of {}; expected a host address in the subnet",
                                to_string(pre->address), to_string(*pre)));
      } else if (pre->length <= 30 && pre->address.host() == broadcast_of(*pre)) {
        c.error(*f, fmt::format("{} is the broadcast address of {}; expected a host address in the subnet",
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
      if (!p.address_ok || c.on_link(*f, *a, cfg, "gateway")) cfg.gateway = *a;

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
                c.error(*pf, fmt::format("a second route to {}; expected each prefix once", to_string(*pre)));
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
            if (p.address_ok && !c.on_link(*vf, *a, cfg, "next hop")) ok = false;
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
            if (p.address_ok && !c.on_link(*af, *a, cfg, "neighbour")) ok = false;
            for (const StaticNeighbour& earlier : cfg.neighbours)
              if (ok && earlier.address == *a) {
                c.error(*af, fmt::format("neighbour {} is given twice; expected one entry per address", to_string(*a)));
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
        c.error(*p.name_f,
                fmt::format("duplicate port name '{}'; first used on line {}", p.cfg.name, line_of(q.item.key_mark)));
      if (p.device_ok && q.device_ok && device_key(p.cfg.device) == device_key(q.cfg.device))
        c.error(*p.device_f, fmt::format("device {} is already used by port '{}' (line {})", device_key(p.cfg.device),
                                         q.cfg.name, line_of(q.item.key_mark)));
      if (p.address_ok && q.address_ok && overlap(p.cfg.subnet(), q.cfg.subnet()))
        c.error(*p.address_f,
                fmt::format("subnet {} overlaps subnet {} of port '{}' (line {}); expected disjoint "
                            "subnets on different ports",
                            to_string(p.cfg.subnet()), to_string(q.cfg.subnet()), q.cfg.name, line_of(q.item.key_mark)));
    }
    // The dataplane handles exactly one inside and one outside port for now.
    if (p.role_ok)
      for (std::size_t j = 0; j < i; ++j)
        if (seen[j].role_ok && seen[j].cfg.role == p.cfg.role) {
          const char* role = p.cfg.role == PortRole::inside ? "inside" : "outside";
          c.error(*p.role_f, fmt::format("a second {} port; passgate supports exactly one inside and one outside port "
                                         "for now, and port '{}' (line {}) is already the {} port",
                                         role, seen[j].cfg.name, line_of(seen[j].item.key_mark), role));
          break;
        }
  }
  if (all_roles && !seen.empty()) {
    for (PortRole role : {PortRole::inside, PortRole::outside})
      if (std::none_of(seen.begin(), seen.end(), [&](const PortSeen& p) { return p.cfg.role == role; }))
        c.error_at_key(f,
                       fmt::format("no {} port; expected exactly one port with role inside and one with role outside",
                                   role == PortRole::inside ? "inside" : "outside"));
  }
}

// ------------------------------------------------------------ control

// "ADDRESS:PORT" with a strict dotted IPv4 address (no leading zeros, no
// spaces) and a port from 1 to 65535.
bool valid_endpoint(std::string_view s) { return packet::text::parse_endpoint(s).has_value(); }

void read_endpoint(Checker& c, const Mapping& m, std::string_view key, std::string& out, std::string_view what,
                   std::string_view example) {
  const Field* f = m.get(std::string(key));
  if (!f) return;
  if (auto s = c.text(*f, what)) {
    if (valid_endpoint(*s)) out = *s;
    else c.error(*f, fmt::format("expected {} as IPv4ADDRESS:PORT (e.g. {}), got '{}'", what, example, *s));
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

// control: the Prometheus endpoint, the telemetry socket's group, the
// gateway's own log, NAT event export.
void read_control(Checker& c, const Field& f, ControlConfig& out) {
  const Mapping m(c, f, {"prometheus", "telemetry_group", "log_level", "log_to_syslog", "nat_events"});
  if (!m.ok()) return;
  if (const Field* pf = m.get("prometheus"))
    if (auto s = c.text(*pf, "the Prometheus listen address, PORT or IPv4:PORT")) {
      std::string problem;
      if (auto listen = listen_address(*s, &problem)) out.prometheus = *listen;
      else c.error(*pf, problem);
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
        c.error(*gf, fmt::format("no group '{}' on this host{}; expected the group whose members may use "
                                 "passgatectl (the telemetry socket becomes 0660, its directory 0750)",
                                 *s, rc != 0 && rc != ENOENT ? fmt::format(" ({})", std::strerror(rc)) : ""));
      }
    }
  if (const Field* lf = m.get("log_level"))
    if (auto s = c.text(*lf, "error, warning, notice, info or debug")) {
      if (*s == "error" || *s == "warning" || *s == "notice" || *s == "info" || *s == "debug") out.log_level = *s;
      else c.error(*lf, fmt::format("expected error, warning, notice, info or debug, got '{}'", *s));
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
          if (!found) c.error(*ff, fmt::format("expected local0 to local7, daemon or user (RFC 5424 facility), got '{}'", *s));
        }
      out.syslog = x;
    }
  }
}

// ------------------------------------------------------------ dataplane

struct DataplaneSeen {
  std::optional<Field> section, mbufs;
  bool clean = true;
};

void read_dataplane(Checker& c, const Field& f, DataplaneConfig& d, DataplaneSeen& seen) {
  const std::size_t errors_before = c.count();
  seen.section = f;
  const Mapping m(c, f,
                  {"eal", "workers", "mbufs", "mbuf_cache", "burst", "mode", "steering", "neighbour", "icmp_errors"});
  if (m.ok()) {
    if (const Field* ef = m.get("eal"))
      if (const auto items = sequence(c, *ef, "EAL arguments like \"--no-huge\"", true))
        for (const Field& item : *items)
          if (auto s = c.text(item, "an EAL argument (a string)")) d.eal_args.push_back(*s);

    if (const Field* wf = m.get("workers"))
      if (const auto items = sequence(c, *wf, "lcore ids like 1", true))
        for (const Field& item : *items)
          if (const auto v = c.integer(item, 0, 127, "an lcore id below DPDK's RTE_MAX_LCORE of 128")) {
            const auto lcore = static_cast<unsigned>(*v);
            if (std::find(d.worker_lcores.begin(), d.worker_lcores.end(), lcore) != d.worker_lcores.end())
              c.error(item, fmt::format("lcore {} is listed twice; expected each worker lcore once", lcore));
            else
              d.worker_lcores.push_back(lcore);
          }

    if (const Field* mf = m.get("mbufs")) {
      seen.mbufs = *mf;
      if (!(mf->node.IsScalar() && mf->node.Scalar() == "auto"))
        set_integer(c, m, "mbufs", d.mbufs, 1023, (1u << 26) - 1, "buffers, or auto");
    }
    set_integer(c, m, "mbuf_cache", d.mbuf_cache, 0, 512, "per lcore; DPDK's RTE_MEMPOOL_CACHE_MAX_SIZE is 512");
    set_integer(c, m, "burst", d.burst, 1, 64, "packets per receive call");
    if (const Field* sf = m.get("steering"))
      if (auto s = c.text(*sf, "auto or handoff")) {
        if (*s == "auto" || *s == "handoff") d.steering_handoff_only = *s == "handoff";
        else c.error(*sf, fmt::format("expected auto (program RSS where the device can) or handoff, got '{}'", *s));
      }
    if (const Field* mf = m.get("mode"))
      if (auto s = c.text(*mf, "nat or forward")) {
        if (*s == "nat" || *s == "forward") d.forward_only = *s == "forward";
        else c.error(*mf, fmt::format("expected nat (translate) or forward (route without NAT, for benchmarks), got '{}'", *s));
      }

    if (const Field* nf = m.get("neighbour")) {
      const Mapping nm(c, *nf, {"reachable_s", "retry_ms", "max_retries", "queue", "table_size", "unsolicited_percent", "held"});
      if (nm.ok()) {
        NeighbourConfig& n = d.neighbour;
        set_integer(c, nm, "reachable_s", n.reachable_seconds, 1, 86400, "seconds");
        set_integer(c, nm, "retry_ms", n.retry_ms, 10, 60000, "milliseconds");
        set_integer(c, nm, "max_retries", n.max_retries, 1, 100);
        set_integer(c, nm, "queue", n.queue_packets, 1, 256, "packets per unresolved neighbour");
        set_integer(c, nm, "table_size", n.table_size, 16, 1u << 20, "neighbours per port");
        set_integer(c, nm, "held", n.held_packets, 1, 1u << 22, "packets waiting for ARP per port and worker");
        set_integer(c, nm, "unsolicited_percent", n.unsolicited_percent, 0, 100,
                    "percent of the table for neighbours that asked for us");
      }
    }
    if (const Field* icf = m.get("icmp_errors")) {
      const Mapping im(c, *icf, {"rate", "burst"});
      if (im.ok()) {
        set_integer(c, im, "rate", d.icmp_error_rate, 0, 1000000, "errors per second per worker; 0 sends none");
        set_integer(c, im, "burst", d.icmp_error_burst, 1, 100000, "errors");
      }
    }
  }
  seen.clean = c.count() == errors_before;
}

// Buffers: the pool must cover every place that can hold them at once
// (config/mbuf_budget.hpp), so that no full ring or queue can empty it and
// stall receive. Checked here with the fewest workers the file allows; the
// gateway checks again with the lcores EAL gives. (rte_mempool_create also
// refuses a cache above two thirds of the pool: the budget covers 1.5 caches
// per lcore, which rules that out.)
void check_buffers(Checker& c, const GatewayConfig& g, const DataplaneSeen& seen, const YAML::Mark& root_mark) {
  const DataplaneConfig& d = g.dataplane;
  const MbufBudget budget = mbuf_budget(g, workers_at_least(g));
  const std::uint64_t need = budget.total();
  constexpr std::uint64_t most = (1u << 26) - 1;
  std::string message;
  if (d.mbufs == 0 && need > most)
    message = fmt::format("this configuration can hold {} mbufs at once ({}), more than the {} a pool takes; "
                          "expected smaller neighbour tables or queues, fewer descriptors or workers",
                          need, budget.explain(), most);
  else if (d.mbufs != 0 && d.mbufs < need)
    message = fmt::format("{} mbufs cannot cover what this configuration can hold at once: {}; expected at least {}, "
                          "or auto to size the pool to that",
                          d.mbufs, budget.explain(), need);
  if (message.empty()) return;
  if (seen.mbufs)
    c.error(*seen.mbufs, message);
  else if (seen.section)
    c.error(*seen.section, message);
  else
    c.error_at(root_mark, "dataplane: " + message);
}

// ------------------------------------------------------------ nat

struct PoolSeen {
  PoolConfig cfg;
  Field item;
  bool name_ok = false, ports_ok = false, block_ok = false, publics_ok = false;
  bool clean = false;
  std::optional<Field> name_f;
  std::vector<std::pair<Ipv4Prefix, Field>> subscribers;
  std::vector<std::pair<AddressRange, Field>> publics;
};

std::string pool_label(const PoolSeen& p) {
  return p.name_ok ? fmt::format("pool '{}' (line {})", p.cfg.name, line_of(p.item.key_mark))
                   : fmt::format("the pool on line {}", line_of(p.item.key_mark));
}

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
      c.error(f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    if (first->host() > last->host()) {
      c.error(f, fmt::format("range {} ends before it starts; expected first-last with first <= last", *s));
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
      c.error(f, fmt::format("expected {}, got '{}'", expected, *s));
      return std::nullopt;
    }
    r = AddressRange{*a, *a};
  }
  if (const char* why = reserved_in(r.first.host(), r.last.host())) {
    c.error(f, fmt::format("{} includes {}; expected public unicast addresses", *s, why));
    return std::nullopt;
  }
  return r;
}

void read_pool(Checker& c, PoolSeen& p, const std::vector<PortSeen>& ports) {
  const Mapping m(c, p.item,
                  {"name", "subscribers", "public", "ports", "block_size", "max_blocks_per_subscriber",
                   "max_sessions_per_subscriber", "filtering"});
  if (!m.ok()) return;
  PoolConfig& cfg = p.cfg;
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
              c.error(item, fmt::format("subscriber prefix {} overlaps {} (line {}) of the same pool", to_string(*pre),
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
            c.error(item, fmt::format("public addresses {} overlap {} (line {}) of the same pool", to_string(*r),
                                      to_string(earlier), line_of(where.node.Mark())));
            ok = false;
            break;
          }
        // The gateway answers ARP for its own addresses; a pool address there
        // would be claimed twice.
        for (const PortSeen& port : ports)
          if (port.address_ok && r->first.host() <= port.cfg.address.host() &&
              port.cfg.address.host() <= r->last.host()) {
            c.error(item, fmt::format("public addresses {} include {}, the own address of port '{}' (line {})", to_string(*r),
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
        c.error(*ports_f, fmt::format("expected {}, got '{}'", expected, *s));
      } else {
        cfg.port_min = *first;
        cfg.port_max = *last;
        p.ports_ok = true;
      }
    }
  } else {
    p.ports_ok = true;  // the default range
  }

  const Field* block_f = m.get("block_size");
  if (block_f) {
    if (const auto v = c.integer(*block_f, 1, 65535, "ports per block, RFC 6888 REQ-13/14")) {
      cfg.block_size = static_cast<std::uint16_t>(*v);
      p.block_ok = true;
    }
  } else {
    p.block_ok = true;
  }
  const unsigned range = cfg.port_max - cfg.port_min + 1u;
  if (p.ports_ok && p.block_ok && cfg.block_size > range) {
    c.error(block_f ? *block_f : *ports_f,
            fmt::format("block_size {} is larger than the {} ports of the range {}-{}; expected at most {}",
                        cfg.block_size, range, cfg.port_min, cfg.port_max, range));
    p.block_ok = false;
  }

  const Field* blocks_f = m.get("max_blocks_per_subscriber");
  bool blocks_ok = !blocks_f;
  if (blocks_f)
    if (const auto v = c.integer(*blocks_f, 1, 64, "port limit = blocks x block_size, RFC 6888 REQ-4")) {
      cfg.max_blocks_per_subscriber = static_cast<std::uint16_t>(*v);
      blocks_ok = true;
    }
  // Paired pooling (RFC 6888 REQ-2): a subscriber's blocks all come from one
  // public address, so a limit above what one address holds cannot be reached.
  if (p.ports_ok && p.block_ok && blocks_ok) {
    const unsigned per_address = range / cfg.block_size;
    if (cfg.max_blocks_per_subscriber > per_address)
      c.error(blocks_f  ? *blocks_f
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
      if (!found) c.error(*f, fmt::format("expected {} (RFC 4787 REQ-8), got '{}'", expected, *s));
    }
  }
}

void check_pool_against_earlier(Checker& c, const PoolSeen& p, std::span<const PoolSeen> earlier) {
  for (const PoolSeen& q : earlier) {
    if (p.name_ok && q.name_ok && p.cfg.name == q.cfg.name)
      c.error(*p.name_f,
              fmt::format("duplicate pool name '{}'; first used on line {}", p.cfg.name, line_of(q.item.key_mark)));
    for (const auto& [mine, where] : p.subscribers)
      for (const auto& [theirs, there] : q.subscribers)
        if (overlap(mine, theirs)) {
          c.error(where, fmt::format("subscriber prefix {} overlaps {} of {}; each subscriber belongs to one pool",
                                     to_string(mine), to_string(theirs), pool_label(q)));
          break;
        }
    for (const auto& [mine, where] : p.publics)
      for (const auto& [theirs, there] : q.publics)
        if (overlap(mine, theirs)) {
          c.error(where, fmt::format("public addresses {} overlap {} of {}; each public address belongs to one pool",
                                     to_string(mine), to_string(theirs), pool_label(q)));
          break;
        }
  }
}

std::optional<std::pair<be32, be16>> endpoint(Checker& c, const Field& f, std::string_view example) {
  const std::string expected = fmt::format("an address and port like {}", example);
  const auto s = c.text(f, expected);
  if (!s) return std::nullopt;
  const auto e = packet::text::parse_endpoint(*s);
  if (!e) {
    c.error(f, fmt::format("expected {} (port from 1 to 65535), got '{}'", expected, *s));
    return std::nullopt;
  }
  if (const char* why = reserved_in(e->address.host(), e->address.host())) {
    c.error(f, fmt::format("{} is in {}; expected a unicast address", to_string(e->address), why));
    return std::nullopt;
  }
  return std::make_pair(e->address, be16::from_host(e->port));
}

struct StaticSeen {
  StaticMapping map{};
  Field item;
  bool proto_ok = false, inside_ok = false, public_ok = false;
  bool clean = false;
};

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
        c.error(*f, fmt::format("expected tcp or udp, got '{}'", *t));
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
          c.error(*public_f,
                  fmt::format("{}:{} lies inside the dynamic range of {}, which hands out ports {}-{} of {}; "
                              "expected a port outside {}-{} or an address outside the pool",
                              to_string(s.map.public_address), port, pool_label(p), p.cfg.port_min, p.cfg.port_max, to_string(r),
                              p.cfg.port_min, p.cfg.port_max));
    }
  }
  if (proto_ok)
    for (const StaticSeen& o : earlier) {
      if (!o.proto_ok || o.map.protocol != s.map.protocol) continue;
      if (public_ok && o.public_ok && o.map.public_address == s.map.public_address &&
          o.map.public_port == s.map.public_port)
        c.error(*public_f, fmt::format("public {}:{} is already mapped by the static mapping on line {}",
                                       to_string(s.map.public_address), s.map.public_port.host(), line_of(o.item.key_mark)));
      if (inside_ok && o.inside_ok && o.map.inside_address == s.map.inside_address &&
          o.map.inside_port == s.map.inside_port)
        c.error(*inside_f, fmt::format("inside {}:{} is already mapped by the static mapping on line {}",
                                       to_string(s.map.inside_address), s.map.inside_port.host(), line_of(o.item.key_mark)));
    }
  s.clean = c.count() == errors_before;
}

// ------------------------------------------------------------ passthrough

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
      c.error(*hold_f, fmt::format("{} ms exceeds learn_window_ms {} ms{}; expected at most {} (a held SPI must "
                                   "not wait longer than the client already learning)",
                                   *hold, *learn, learn_f ? "" : " (the default)", *learn));
    else
      c.error(*learn_f, fmt::format("{} ms is below hold_window_ms {} ms (the default); expected at least {} or "
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
      c.error(*turn_f, fmt::format("{} ms is below learn_window_ms {} ms{}; expected at least {} (a turn as learner "
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

// True when nothing under nat.passthrough was reported.
bool read_passthrough(Checker& c, const Field& f, nat::PassthroughConfig& out) {
  const std::size_t errors_before = c.count();
  const Mapping m(c, f, passthrough_keys);
  if (m.ok())
    for (const PassthroughProtocol& p : passthrough_protocols)
      if (const Field* pf = m.get(p.key)) p.read(c, *pf, out);
  return c.count() == errors_before;
}

struct NatSeen {
  std::optional<Field> section;
  bool pools_reported = false;        // a problem with the pools list itself or any pool
  bool blocks_reported = false;       // the total block count was reported
  bool passthrough_reported = false;  // something under nat.passthrough was reported
};

void read_nat(Checker& c, const Field& f, GatewayConfig& g, const std::vector<PortSeen>& ports,
              std::vector<PoolSeen>& pools, std::vector<StaticSeen>& statics, NatSeen& seen) {
  seen.section = f;
  nat::NatConfig& n = g.nat;
  const Mapping m(
      c, f,
      {"max_sessions", "max_subscribers", "random_seed", "timeouts", "fragments", "limits", "event_ring", "pools", "static",
       "passthrough"});
  if (!m.ok()) {
    seen.pools_reported = true;
    return;
  }
  set_integer(c, m, "max_sessions", n.max_sessions, 1, 1u << 30);
  set_integer(c, m, "max_subscribers", n.max_subscribers, 1, 1u << 26);
  if (const Field* rf = m.get("random_seed"))
    if (const auto v = c.integer(*rf, 0, std::numeric_limits<std::uint64_t>::max(),
                                 "fixes hash keys and port choice; omit for a random seed")) {
      n.random_seed = *v;
      g.random_seed_given = true;
    }

  if (const Field* tf = m.get("timeouts")) {
    const Mapping tm(c, *tf, {"udp", "tcp_established", "tcp_transitory", "icmp", "port_reuse_hold", "fragment_ms"});
    if (tm.ok()) {
      nat::Timeouts& t = n.timeouts;
      set_integer(c, tm, "udp", t.udp, 120, max_timeout_s, "seconds", "the minimum of 120 s (RFC 4787 REQ-5)");
      set_integer(c, tm, "tcp_established", t.tcp_established, 7440, max_timeout_s, "seconds",
                  "the minimum of 7440 s, 2 h 4 min (RFC 5382 REQ-5)");
      set_integer(c, tm, "tcp_transitory", t.tcp_transitory, 240, max_timeout_s, "seconds",
                  "the minimum of 240 s, 4 min (RFC 5382 REQ-5, RFC 7857)");
      set_integer(c, tm, "icmp", t.icmp, 60, max_timeout_s, "seconds", "the minimum of 60 s (RFC 5508 REQ-1)");
      set_integer(c, tm, "port_reuse_hold", t.port_reuse_hold, 0, max_timeout_s, "seconds, RFC 6888 REQ-8 asks 120");
      set_integer(c, tm, "fragment_ms", t.fragment_ms, 1, 60000, "milliseconds");
    }
  }
  if (const Field* ff = m.get("fragments")) {
    const Mapping fm(c, *ff, {"flows", "hold_slots", "hold_bytes"});
    if (fm.ok()) {
      set_integer(c, fm, "flows", n.fragment_flows, 1, 1u << 24, "datagrams tracked at once");
      set_integer(c, fm, "hold_slots", n.fragment_hold_slots, 0, 1u << 16, "out-of-order fragments held at once");
      set_integer(c, fm, "hold_bytes", n.fragment_hold_bytes, 68, 9216,
                  "bytes; 68 is the IPv4 minimum fragment, RFC 791");
    }
  }
  // Issue 11: bounds that keep one party from exhausting what a worker shares.
  if (const Field* lf = m.get("limits")) {
    const Mapping lm(c, *lf,
                     {"new_subscribers_per_second", "static_mapping_sessions", "limit_event_interval_ms",
                      "fragment_flows_per_host", "fragments_held_per_host"});
    if (lm.ok()) {
      nat::AbuseLimits& l = n.limits;
      set_integer(c, lm, "new_subscribers_per_second", l.new_subscribers_per_second, 1, 1u << 24,
                  "new subscriber records a second, per worker");
      set_integer(c, lm, "static_mapping_sessions", l.static_mapping_sessions, 1, 1u << 30,
                  "sessions of one static mapping whose host is in no subscriber prefix");
      set_integer(c, lm, "limit_event_interval_ms", l.limit_event_interval_ms, 0, 3'600'000,
                  "milliseconds between two limit events of one subscriber and type");
      set_integer(c, lm, "fragment_flows_per_host", l.fragment_flows_per_host, 1, 1u << 24,
                  "fragmented datagrams tracked at once per host");
      set_integer(c, lm, "fragments_held_per_host", l.fragments_held_per_host, 0, 1u << 16,
                  "out-of-order fragments held at once per host");
    }
  }
  set_integer(c, m, "event_ring", n.event_ring_size, 1, 1u << 24, "NAT events buffered for logging");
  if (const Field* pf = m.get("passthrough")) seen.passthrough_reported = !read_passthrough(c, *pf, n.passthrough);

  if (const Field* pf = m.require("pools")) {
    const std::size_t errors_before = c.count();
    if (const auto items = sequence(c, *pf, "pools", false)) {
      for (const Field& item : *items) {
        const std::size_t before = c.count();
        pools.emplace_back();
        pools.back().item = item;
        read_pool(c, pools.back(), ports);
        check_pool_against_earlier(c, pools.back(), std::span<const PoolSeen>(pools.data(), pools.size() - 1));
        pools.back().clean = c.count() == before;
      }
      // The engine numbers port blocks in 26 bits.
      std::uint64_t blocks = 0;
      for (const PoolSeen& p : pools)
        if (p.ports_ok && p.block_ok && p.publics_ok) {
          std::uint64_t addresses = 0;
          for (const auto& [r, where] : p.publics) addresses += std::uint64_t{r.last.host()} - r.first.host() + 1;
          blocks += addresses * ((p.cfg.port_max - p.cfg.port_min + 1u) / p.cfg.block_size);
        }
      if (blocks > (1ull << 26)) {
        c.error_at_key(*pf,
                       fmt::format("the pools hold {} port blocks (addresses x ports / block_size); at most 67108864 "
                                   "(2^26) fit: expected fewer public addresses or a larger block_size",
                                   blocks));
        seen.blocks_reported = true;
      }
    }
    seen.pools_reported = c.count() != errors_before;
  } else {
    seen.pools_reported = true;
  }
  for (const PoolSeen& p : pools) n.pools.push_back(p.cfg);

  if (const Field* sf = m.get("static"))
    if (const auto items = sequence(c, *sf,
                                    "static mappings like {protocol: tcp, inside: 100.64.0.20:8080, "
                                    "public: 198.51.100.30:80}",
                                    true))
      for (const Field& item : *items) {
        statics.emplace_back();
        statics.back().item = item;
        read_static(c, statics.back(), pools, std::span<const StaticSeen>(statics.data(), statics.size() - 1));
        n.static_mappings.push_back(statics.back().map);
      }
}

// The engine's own check on what passed here: anything it finds that this
// file did not report is added at the `nat` key, so no rule is lost.
void cross_check_with_engine(Checker& c, const GatewayConfig& g, const std::vector<PoolSeen>& pools,
                             const std::vector<StaticSeen>& statics, const NatSeen& seen, const YAML::Mark& root_mark) {
  nat::NatConfig clean = g.nat;
  clean.pools.clear();
  clean.static_mappings.clear();
  for (const PoolSeen& p : pools)
    if (p.clean) clean.pools.push_back(p.cfg);
  for (const StaticSeen& s : statics)
    if (s.clean) clean.static_mappings.push_back(s.map);
  if (seen.passthrough_reported) clean.passthrough = {};  // already reported; the engine checks the defaults
  for (const std::string& problem : clean.validate()) {
    if (seen.pools_reported && clean.pools.empty() && problem == "at least one pool is required") continue;
    if (seen.blocks_reported && problem.rfind("the pools hold ", 0) == 0) continue;
    const std::string message = "nat: " + problem + " (the NAT engine's own check)";
    if (seen.section)
      c.error_at(seen.section->key_mark, message);
    else
      c.error_at(root_mark, message);
  }
}

// Where each YAML document of the text starts. yaml-cpp 0.7's LoadAll loops
// forever on a stray ',' where a document should start (the parser reports an
// empty document without consuming the token), so documents are walked here
// first with a parser that only records their starts; a document starting
// where the previous one did is that case, reported as a syntax error.
// Syntax errors elsewhere are thrown as YAML::ParserException.
std::vector<YAML::Mark> document_starts(const std::string& text, Checker& c) {
  struct Starts : YAML::EventHandler {
    std::vector<YAML::Mark> marks;
    void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
  } starts;
  std::istringstream in(text);
  YAML::Parser parser(in);
  while (parser.HandleNextDocument(starts)) {
    const std::size_t n = starts.marks.size();
    if (n >= 2 && starts.marks[n - 1].pos == starts.marks[n - 2].pos) {
      const YAML::Mark& at = starts.marks[n - 1];
      const std::size_t pos = static_cast<std::size_t>(at.pos);
      c.error_at(at, fmt::format("YAML syntax error: unexpected '{}'", pos < text.size() ? text.substr(pos, 1) : ""));
      break;
    }
  }
  return starts.marks;
}

}  // namespace

LoadResult parse_gateway_config(const std::string& yaml_text, const std::string& source_name) {
  LoadResult result;
  Checker c(source_name);
  std::vector<YAML::Mark> documents;
  YAML::Node root;
  try {
    documents = document_starts(yaml_text, c);
    if (c.count() == 0 && !documents.empty()) root = YAML::Load(yaml_text);  // the first document
  } catch (const YAML::Exception& e) {
    c.error_at(e.mark, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    c.error_at(YAML::Mark::null_mark(), std::string("cannot parse YAML: ") + e.what());
  }
  if (c.count() > 0) {
    result.errors = c.take();
    return result;
  }

  GatewayConfig g;
  g.source = source_name;
  try {
    if (documents.empty()) {
      c.error_at(YAML::Mark::null_mark(),
                 "the file holds no YAML document; expected a mapping with the keys "
                 "dataplane, ports and nat");
    } else {
      if (documents.size() > 1)
        c.error_at(documents[1], "a second YAML document; expected the whole configuration in one document");
      YAML::Mark root_mark = root.Mark();
      if (root_mark.line < 0) root_mark = YAML::Mark{};
      const Field top{root, root_mark, ""};
      const Mapping m(c, top, {"dataplane", "ports", "nat", "control"});
      if (m.ok()) {
        std::vector<PortSeen> ports;
        std::vector<PoolSeen> pools;
        std::vector<StaticSeen> statics;
        DataplaneSeen dp;
        NatSeen ns;

        const std::size_t errors_before_l2 = c.count();
        if (const Field* f = m.require("ports")) read_ports(c, *f, ports);
        for (const PortSeen& p : ports) g.ports.push_back(p.cfg);
        const bool ports_clean = c.count() == errors_before_l2;
        if (const Field* f = m.get("dataplane")) read_dataplane(c, *f, g.dataplane, dp);
        if (ports_clean && dp.clean && !ports.empty()) check_buffers(c, g, dp, root_mark);

        if (const Field* f = m.require("nat"))
          read_nat(c, *f, g, ports, pools, statics, ns);
        else
          ns.pools_reported = true;
        cross_check_with_engine(c, g, pools, statics, ns, root_mark);
        if (const Field* f = m.get("control")) read_control(c, *f, g.control);
        g.nat.log_sessions = g.control.log_sessions;
      }
    }
  } catch (const std::exception& e) {  // yaml-cpp misuse would land here; never expected
    c.error_at(YAML::Mark::null_mark(), std::string("internal error while reading the configuration: ") + e.what());
  }

  result.errors = c.take();
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  if (result.errors.empty()) result.config = std::move(g);
  return result;
}

std::vector<std::string> restart_required_changes(const GatewayConfig& running, const GatewayConfig& next) {
  std::vector<std::string> out;
  if (running.ports.size() != next.ports.size()) {
    out.push_back(fmt::format("ports: {} ports instead of {}; ports change only with a restart", next.ports.size(),
                              running.ports.size()));
  } else {
    for (std::size_t i = 0; i < next.ports.size(); ++i)
      if (!(running.ports[i] == next.ports[i]))
        out.push_back(fmt::format("ports: '{}' changes; ports change only with a restart", next.ports[i].name));
  }
  if (!(running.dataplane == next.dataplane)) out.push_back("dataplane: changes only with a restart");
  if (running.control.prometheus != next.control.prometheus)
    out.push_back("control.prometheus: the listen address changes only with a restart");
  if (running.control.telemetry_group != next.control.telemetry_group)
    out.push_back("control.telemetry_group: the telemetry socket's group changes only with a restart");
  return out;
}

LoadResult load_gateway_config(const std::string& path) {
  const auto fail = [&](int err) {
    LoadResult r;
    r.errors.push_back(
        ConfigError{path, 0, 0, fmt::format("cannot read the configuration file: {}", std::strerror(err))});
    return r;
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return fail(errno);
  std::string text;
  char buffer[16384];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int err = errno;
  std::fclose(file);
  if (failed) return fail(err == 0 ? EIO : err);
  return parse_gateway_config(text, path);
}

std::optional<std::string> parse_listen_address(std::string_view text, std::string* problem) {
  return listen_address(text, problem);
}

}  // namespace passgate::config
