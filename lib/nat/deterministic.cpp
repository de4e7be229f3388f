// Deterministic NAT (RFC 7422): the arithmetic of deterministic.hpp, its
// reverse, and the one-line description logged as the mapping event.
#include "nat/deterministic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

namespace passgate::nat {

namespace {
// RFC 7422 section 2.3 counts a /28 as 14 subscribers: no network or
// broadcast address (a /31 or /32 has neither, RFC 3021).
bool has_boundaries(const Ipv4Prefix& p) { return p.length <= 30; }
std::uint64_t prefix_size(const Ipv4Prefix& p) {
  return (std::uint64_t{1} << (32 - p.length)) - (has_boundaries(p) ? 2 : 0);
}
std::uint32_t first_host(const Ipv4Prefix& p) { return p.network() + (has_boundaries(p) ? 1 : 0); }
std::uint64_t range_size(const AddressRange& r) { return std::uint64_t{r.last.host()} - r.first.host() + 1; }
}  // namespace

DeterministicGeometry deterministic_geometry(const PoolConfig& pc) {
  DeterministicGeometry g;
  for (const Ipv4Prefix& p : pc.subscribers) g.subscribers += prefix_size(p);
  for (const AddressRange& r : pc.public_addresses)
    if (r.first.host() <= r.last.host()) g.addresses += range_size(r);
  if (g.addresses == 0 || g.subscribers == 0) return g;
  const std::uint64_t needed = (g.subscribers + g.addresses - 1) / g.addresses;  // ceil(N / M)
  g.ratio = pc.sharing_ratio != 0 ? pc.sharing_ratio : static_cast<std::uint32_t>(std::min<std::uint64_t>(needed, 1u << 30));
  const unsigned ports = pc.port_max >= pc.port_min ? pc.port_max - pc.port_min + 1u : 0u;
  g.ports_per_subscriber = g.ratio == 0 ? 0 : ports / g.ratio;
  g.ranges = static_cast<std::uint32_t>(std::min<std::uint64_t>(g.ratio, g.subscribers));
  return g;
}

std::string deterministic_problem(const PoolConfig& pc) {
  const DeterministicGeometry g = deterministic_geometry(pc);
  if (g.subscribers == 0 || g.addresses == 0) return {};  // reported as an empty pool
  const std::uint64_t needed = (g.subscribers + g.addresses - 1) / g.addresses;
  if (pc.sharing_ratio != 0 && pc.sharing_ratio < needed)
    return fmt::format(
        "sharing_ratio {} gives {} public addresses room for {} subscribers, but the subscriber prefixes hold {} "
        "addresses; expected a sharing_ratio of at least {} (RFC 7422: every subscriber address has a range)",
        pc.sharing_ratio, g.addresses, std::uint64_t{pc.sharing_ratio} * g.addresses, g.subscribers, needed);
  if (g.ports_per_subscriber < 1)
    return fmt::format(
        "ports {}-{} ({} ports) are too few for a sharing ratio of {} subscribers per public address: each "
        "would get no port; expected a wider port range, more public addresses or a lower sharing_ratio",
        pc.port_min, pc.port_max, pc.port_max - pc.port_min + 1u, g.ratio);
  return {};
}

DeterministicMap::DeterministicMap(const PoolConfig& pc)
    : geometry_(deterministic_geometry(pc)),
      port_min_(pc.port_min),
      prefixes_(pc.subscribers),
      publics_(pc.public_addresses) {
  std::uint64_t at = 0;
  for (const Ipv4Prefix& p : prefixes_) {
    prefix_start_.push_back(at);
    at += prefix_size(p);
  }
  at = 0;
  for (const AddressRange& r : publics_) {
    public_start_.push_back(at);
    at += range_size(r);
  }
}

std::optional<DeterministicMap::Slot> DeterministicMap::forward(be32 inside) const {
  const DeterministicGeometry& g = geometry_;
  if (g.ports_per_subscriber == 0) return std::nullopt;
  for (std::size_t k = 0; k < prefixes_.size(); ++k) {
    if (!prefixes_[k].contains(inside)) continue;
    const std::uint32_t offset = inside.host() - first_host(prefixes_[k]);
    if (inside.host() < first_host(prefixes_[k]) || offset >= prefix_size(prefixes_[k])) return std::nullopt;
    const std::uint64_t i = prefix_start_[k] + offset;
    const std::uint64_t a = i / g.ratio;
    const std::uint64_t r = i % g.ratio;
    if (a >= g.addresses) return std::nullopt;  // only with a sharing_ratio below ceil(N / M), which validation refuses
    // The configured range holding address index a.
    const auto it = std::upper_bound(public_start_.begin(), public_start_.end(), a) - 1;
    const std::size_t pr = static_cast<std::size_t>(it - public_start_.begin());
    Slot s{};
    s.subscriber_index = i;
    s.address_index = static_cast<std::uint32_t>(a);
    s.range = static_cast<std::uint32_t>(r);
    s.public_address = be32::from_host(static_cast<std::uint32_t>(publics_[pr].first.host() + (a - *it)));
    const std::uint32_t first = port_min_ + static_cast<std::uint32_t>(r) * g.ports_per_subscriber;
    s.first_port = static_cast<std::uint16_t>(first);
    s.last_port = static_cast<std::uint16_t>(first + g.ports_per_subscriber - 1);
    return s;
  }
  return std::nullopt;
}

std::optional<be32> DeterministicMap::reverse(be32 public_address, std::uint16_t port) const {
  const DeterministicGeometry& g = geometry_;
  if (g.ports_per_subscriber == 0 || port < port_min_) return std::nullopt;
  for (std::size_t k = 0; k < publics_.size(); ++k) {
    const AddressRange& pr = publics_[k];
    if (public_address.host() < pr.first.host() || public_address.host() > pr.last.host()) continue;
    const std::uint64_t a = public_start_[k] + (public_address.host() - pr.first.host());
    const std::uint64_t r = (port - port_min_) / g.ports_per_subscriber;
    if (r >= g.ratio) return std::nullopt;  // the unused ports at the top of the range
    const std::uint64_t i = a * g.ratio + r;
    if (i >= g.subscribers) return std::nullopt;  // a range no subscriber address reaches
    return subscriber_at(i);
  }
  return std::nullopt;
}

be32 DeterministicMap::subscriber_at(std::uint64_t i) const {
  const auto it = std::upper_bound(prefix_start_.begin(), prefix_start_.end(), i) - 1;
  const Ipv4Prefix& p = prefixes_[static_cast<std::size_t>(it - prefix_start_.begin())];
  return be32::from_host(static_cast<std::uint32_t>(first_host(p) + (i - *it)));
}

std::uint32_t blocks_per_address(const PoolConfig& pc) {
  if (pc.mode == PoolMode::deterministic) return pc.block_size == 0 ? 0 : deterministic_geometry(pc).ranges;
  return static_cast<std::uint32_t>((pc.port_max - pc.port_min + 1u) / pc.block_size);
}

bool same_geometry(const PoolConfig& a, const PoolConfig& b) {
  if (a.mode != b.mode || a.port_min != b.port_min || a.port_max != b.port_max) return false;
  if (a.mode == PoolMode::dynamic) return a.block_size == b.block_size;
  return a.subscribers == b.subscribers && a.public_addresses == b.public_addresses &&
         deterministic_geometry(a).ratio == deterministic_geometry(b).ratio;
}

PoolConfig per_engine(const PoolConfig& pc, std::uint16_t step) {
  if (pc.mode != PoolMode::deterministic) return pc;
  PoolConfig out = pc;
  out.block_size = static_cast<std::uint16_t>(deterministic_geometry(pc).ports_per_subscriber / (step == 0 ? 1 : step));
  out.max_blocks_per_subscriber = 1;
  return out;
}

std::string describe_mapping(const PoolConfig& pc) {
  const DeterministicGeometry g = deterministic_geometry(pc);
  std::string subs, pubs;
  for (const Ipv4Prefix& p : pc.subscribers)
    subs += fmt::format("{}{}/{}", subs.empty() ? "" : ",", to_string(be32::from_host(p.network())), p.length);
  for (const AddressRange& r : pc.public_addresses)
    pubs += r.first == r.last ? fmt::format("{}{}", pubs.empty() ? "" : ",", to_string(r.first))
                              : fmt::format("{}{}-{}", pubs.empty() ? "" : ",", to_string(r.first), to_string(r.last));
  return fmt::format("algorithm=rfc7422 pool={} subscribers={} public={} ports={}-{} ratio={} ports_per_subscriber={}",
                     pc.name, subs, pubs, pc.port_min, pc.port_max, g.ratio, g.ports_per_subscriber);
}

std::optional<PoolConfig> parse_mapping(const std::string& line, std::string* error) {
  PoolConfig pc;
  pc.mode = PoolMode::deterministic;
  pc.max_blocks_per_subscriber = 1;
  pc.log_blocks = false;
  const auto fail = [&](std::string why) -> std::optional<PoolConfig> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  // From the first field on: what precedes it (a syslog header and its
  // structured data) uses the same words with quoted values.
  const std::size_t from = line.find("algorithm=rfc7422 ");
  std::istringstream words(from == std::string::npos ? line : line.substr(from));
  std::string word, algorithm;
  std::optional<std::uint32_t> per_subscriber;
  bool have_subs = false, have_pubs = false, have_ports = false;
  const auto list = [](const std::string& v) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= v.size()) {
      const std::size_t comma = std::min(v.find(',', at), v.size());
      out.push_back(v.substr(at, comma - at));
      at = comma + 1;
    }
    return out;
  };
  while (words >> word) {
    const std::size_t eq = word.find('=');
    if (eq == std::string::npos) continue;  // text around the fields (a syslog line's MSG)
    const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "algorithm") {
      algorithm = value;
    } else if (key == "pool") {
      pc.name = value;
    } else if (key == "subscribers") {
      for (const std::string& item : list(value)) {
        const auto p = packet::text::parse_prefix(item);
        if (!p) return fail(fmt::format("subscribers: '{}' is not a prefix", item));
        pc.subscribers.push_back(*p);
      }
      have_subs = true;
    } else if (key == "public") {
      for (const std::string& item : list(value)) {
        const std::size_t dash = item.find('-');
        const auto first = packet::text::parse_ipv4(item.substr(0, dash));
        const auto last = dash == std::string::npos ? first : packet::text::parse_ipv4(item.substr(dash + 1));
        if (!first || !last || first->host() > last->host())
          return fail(fmt::format("public: '{}' is not an address or range", item));
        pc.public_addresses.push_back(AddressRange{*first, *last});
      }
      have_pubs = true;
    } else if (key == "ports") {
      const std::size_t dash = value.find('-');
      if (dash == std::string::npos) return fail(fmt::format("ports: '{}' is not a range", value));
      const auto lo = packet::text::parse_port(value.substr(0, dash));
      const auto hi = packet::text::parse_port(value.substr(dash + 1));
      if (!lo || !hi || *lo > *hi) return fail(fmt::format("ports: '{}' is not a range", value));
      pc.port_min = lo.value();
      pc.port_max = hi.value();
      have_ports = true;
    } else if (key == "ratio") {
      const auto v = packet::text::parse_uint(value);
      if (!v || *v == 0 || *v > (1u << 30)) return fail(fmt::format("ratio: '{}' is not a sharing ratio", value));
      pc.sharing_ratio = static_cast<std::uint32_t>(*v);
    } else if (key == "ports_per_subscriber") {
      const auto v = packet::text::parse_uint(value);
      if (!v) return fail(fmt::format("ports_per_subscriber: '{}' is not a number", value));
      per_subscriber = static_cast<std::uint32_t>(*v);
    }
  }
  if (algorithm != "rfc7422") return fail(fmt::format("algorithm '{}' is not rfc7422", algorithm));
  if (!have_subs || !have_pubs || !have_ports || pc.sharing_ratio == 0)
    return fail("the line lacks one of subscribers=, public=, ports=, ratio=");
  // The line states P too: a reader computing another P would answer wrongly.
  if (per_subscriber && *per_subscriber != deterministic_geometry(pc).ports_per_subscriber)
    return fail(fmt::format("ports_per_subscriber={} does not follow from the other fields ({})", *per_subscriber,
                            deterministic_geometry(pc).ports_per_subscriber));
  return pc;
}

}  // namespace passgate::nat
