#include "nat/nat_config.hpp"

#include <fmt/format.h>

#include "nat/deterministic.hpp"
#include "packet/headers.hpp"

namespace passgate::nat {

const char* to_string(Filtering f) {
  switch (f) {
    case Filtering::endpoint_independent: return "endpoint-independent";
    case Filtering::address_dependent: return "address-dependent";
    case Filtering::address_and_port_dependent: return "address-and-port-dependent";
  }
  return "?";
}

const char* to_string(PoolMode m) { return m == PoolMode::deterministic ? "deterministic" : "dynamic"; }

namespace {

bool ranges_overlap(const AddressRange& a, const AddressRange& b) {
  return a.first.host() <= b.last.host() && b.first.host() <= a.last.host();
}

bool in_any(const std::vector<AddressRange>& ranges, be32 a) {
  for (const auto& r : ranges)
    if (a.host() >= r.first.host() && a.host() <= r.last.host()) return true;
  return false;
}

}  // namespace

std::vector<std::string> NatConfig::validate() const {
  std::vector<std::string> texts;
  for (NatProblem& p : problems()) texts.push_back(std::move(p.text));
  return texts;
}

std::vector<NatProblem> NatConfig::problems() const {
  std::vector<NatProblem> errors;
  NatProblem::Code code = NatProblem::Code::no_pool;  // set per group of rules below
  auto error = [&](std::string text) { errors.push_back(NatProblem{code, std::move(text)}); };

  if (pools.empty()) error("at least one pool is required");
  code = NatProblem::Code::size;
  if (max_sessions == 0 || max_sessions > (1u << 30)) error("max_sessions must be between 1 and 2^30");
  if (max_subscribers == 0 || max_subscribers > (1u << 26)) error("max_subscribers must be between 1 and 2^26");
  if (fragment_flows == 0) error("fragment_flows must be at least 1");
  if (fragment_hold_bytes < 68 || fragment_hold_bytes > 9216)
    error("fragment_hold_bytes must be between 68 (the IPv4 minimum) and 9216");
  if (event_ring_size == 0) error("event_ring_size must be at least 1");
  if (limits.new_subscribers_per_second == 0) error("limits.new_subscribers_per_second must be at least 1");
  if (limits.static_mapping_sessions == 0) error("limits.static_mapping_sessions must be at least 1");
  if (limits.limit_event_interval_ms > 3'600'000) error("limits.limit_event_interval_ms must be at most an hour");
  if (limits.fragment_flows_per_host == 0) error("limits.fragment_flows_per_host must be at least 1");

  code = NatProblem::Code::timeout;
  const Timeouts& t = timeouts;
  if (t.udp < 120) error(fmt::format("timeouts.udp {} s is below RFC 4787 REQ-5's 120 s minimum", t.udp));
  if (t.tcp_established < 7440)
    error(fmt::format("timeouts.tcp_established {} s is below RFC 5382 REQ-5's 7440 s minimum", t.tcp_established));
  if (t.tcp_transitory < 240)
    error(fmt::format("timeouts.tcp_transitory {} s is below RFC 5382 REQ-5's 240 s minimum", t.tcp_transitory));
  if (t.icmp < 60) error(fmt::format("timeouts.icmp {} s is below RFC 5508's 60 s minimum", t.icmp));
  for (std::uint32_t v : {t.udp, t.tcp_established, t.tcp_transitory, t.icmp, t.port_reuse_hold})
    if (v > 86400 * 7) error(fmt::format("timeout {} s is longer than a week", v));
  if (t.fragment_ms == 0 || t.fragment_ms > 60000) error("timeouts.fragment_ms must be between 1 and 60000");

  code = NatProblem::Code::passthrough;
  std::vector<std::string> passthrough_problems;
  passthrough::validate(passthrough, passthrough_problems);
  for (std::string& text : passthrough_problems) error(std::move(text));

  code = NatProblem::Code::pool;
  std::uint64_t total_blocks = 0;
  for (std::size_t i = 0; i < pools.size(); ++i) {
    const PoolConfig& p = pools[i];
    const std::string name = p.name.empty() ? fmt::format("pool {}", i) : fmt::format("pool '{}'", p.name);
    if (p.subscribers.empty()) error(name + ": no subscriber prefixes");
    if (p.public_addresses.empty()) error(name + ": no public addresses");
    for (const auto& prefix : p.subscribers)
      if (prefix.length > 32) error(fmt::format("{}: prefix length {} is above 32", name, prefix.length));
    std::uint64_t addresses = 0;
    for (const auto& r : p.public_addresses) {
      if (r.first.host() > r.last.host())
        error(fmt::format("{}: range {}-{} ends before it starts", name, to_string(r.first), to_string(r.last)));
      else
        addresses += r.size();
    }
    if (p.port_min == 0 || p.port_min > p.port_max)
      error(fmt::format("{}: port range {}-{} is empty or starts at 0", name, p.port_min, p.port_max));
    const unsigned ports = p.port_max >= p.port_min ? p.port_max - p.port_min + 1u : 0u;
    if (p.mode == PoolMode::deterministic) {
      // One block per subscriber range on every address (RFC 7422).
      if (std::string why = deterministic_problem(p); !why.empty())
        error(fmt::format("{}: {}", name, why));
      else
        total_blocks += addresses * deterministic_geometry(p).ranges;
    } else if (p.block_size == 0 || p.block_size > ports)
      error(fmt::format("{}: block_size {} does not fit the {} ports of the range", name, p.block_size, ports));
    else
      total_blocks += addresses * (ports / p.block_size);
    if (p.max_blocks_per_subscriber == 0 || p.max_blocks_per_subscriber > 64)
      error(fmt::format("{}: max_blocks_per_subscriber {} must be between 1 and 64", name, p.max_blocks_per_subscriber));
    if (p.max_sessions_per_subscriber == 0) error(name + ": max_sessions_per_subscriber must be at least 1");

    for (std::size_t j = 0; j < i; ++j) {
      for (const auto& a : p.public_addresses)
        for (const auto& b : pools[j].public_addresses)
          if (ranges_overlap(a, b))
            error(fmt::format("{}: public range {}-{} overlaps pool {}", name, to_string(a.first), to_string(a.last),
                              pools[j].name.empty() ? std::to_string(j) : "'" + pools[j].name + "'"));
      for (const auto& a : p.subscribers)
        for (const auto& b : pools[j].subscribers) {
          const std::uint8_t shorter = a.length < b.length ? a.length : b.length;
          const Ipv4Prefix wide{a.address, shorter};
          if (wide.contains(b.address))
            error(fmt::format("{}: subscriber prefix {}/{} overlaps pool {}", name, to_string(a.address), a.length,
                              pools[j].name.empty() ? std::to_string(j) : "'" + pools[j].name + "'"));
        }
    }
  }
  code = NatProblem::Code::too_many_blocks;
  if (total_blocks > (1ull << 26)) error(fmt::format("the pools hold {} port blocks; at most 2^26 fit", total_blocks));

  code = NatProblem::Code::static_mapping;
  for (std::size_t i = 0; i < static_mappings.size(); ++i) {
    const StaticMapping& s = static_mappings[i];
    if (s.protocol != packet::ip_proto::tcp && s.protocol != packet::ip_proto::udp)
      error(fmt::format("static mapping {}: protocol must be tcp or udp", i));
    if (s.inside_port.host() == 0 || s.public_port.host() == 0) error(fmt::format("static mapping {}: port 0", i));
    for (const auto& p : pools)
      if (in_any(p.public_addresses, s.public_address) && s.public_port.host() >= p.port_min &&
          s.public_port.host() <= p.port_max)
        error(fmt::format("static mapping {}: {}:{} lies inside pool '{}' dynamic port range {}-{}", i,
                          to_string(s.public_address), s.public_port.host(), p.name, p.port_min, p.port_max));
    for (std::size_t j = 0; j < i; ++j) {
      const StaticMapping& o = static_mappings[j];
      if (o.protocol == s.protocol && o.public_address == s.public_address && o.public_port == s.public_port)
        error(fmt::format("static mapping {}: same public address and port as static mapping {}", i, j));
      if (o.protocol == s.protocol && o.inside_address == s.inside_address && o.inside_port == s.inside_port)
        error(fmt::format("static mapping {}: same inside address and port as static mapping {}", i, j));
    }
  }
  return errors;
}

}  // namespace passgate::nat
