#include "packet/router.hpp"

#include <algorithm>
#include <cstring>

#include "packet/address.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace passgate::packet {

namespace {

constexpr std::uint16_t dont_fragment = 0x4000;
constexpr std::uint16_t more_fragments = 0x2000;
constexpr std::uint16_t offset_mask = 0x1fff;

bool is_icmp_error_type(std::uint8_t type) {
  return type == icmp_type::dest_unreachable || type == icmp_type::source_quench || type == icmp_type::redirect ||
         type == icmp_type::time_exceeded || type == icmp_type::parameter_problem;
}

void finish_ip_header(std::uint8_t* ip, std::size_t header) {
  store(ip + 10, be16{0});
  store(ip + 10, internet_checksum(std::span<const std::uint8_t>(ip, header)));
}

// Options of `packet` (after the fixed 20 bytes) whose copied flag is set,
// written at `out`; returns their length padded to 4 bytes with End of
// Option List. A malformed option list ends the copy (nothing after it is
// trusted); the caller validated the header length.
std::size_t copy_copied_options(const std::uint8_t* options, std::size_t length, std::uint8_t* out) {
  std::size_t written = 0;
  for (std::size_t at = 0; at < length;) {
    const std::uint8_t type = options[at];
    if (type == 0) break;  // End of Option List
    if (type == 1) {       // No Operation: one byte, never copied
      ++at;
      continue;
    }
    if (at + 1 >= length) break;
    const std::size_t len = options[at + 1];
    if (len < 2 || at + len > length) break;
    if (type & 0x80u) {
      if (out) std::memcpy(out + written, options + at, len);
      written += len;
    }
    at += len;
  }
  const std::size_t padded = (written + 3) & ~std::size_t{3};
  if (out) std::memset(out + written, 0, padded - written);
  return padded;
}

}  // namespace

bool is_martian_source(be32 a) { return is_reserved_address(a); }  // packet/address.hpp's reserved_blocks

bool is_broadcast_or_multicast(be32 a) { return (a.host() >> 28) >= 0xe; }

bool may_send_icmp_error(std::span<const std::uint8_t> packet) {
  if (packet.size() < sizeof(Ipv4Header)) return false;
  const auto* ip = reinterpret_cast<const Ipv4Header*>(packet.data());
  if (ip->fragment_offset_bytes() != 0) return false;  // only about the first fragment
  if (is_martian_source(ip->src) || is_broadcast_or_multicast(ip->dst)) return false;
  if (ip->protocol == ip_proto::icmp) {
    const std::size_t ihl = ip->header_bytes();
    if (packet.size() <= ihl) return false;
    if (is_icmp_error_type(packet[ihl])) return false;
  }
  return true;
}

std::size_t write_icmp_error(std::span<const std::uint8_t> offending, be32 source, std::uint8_t type,
                             std::uint8_t code, std::uint16_t next_hop_mtu, std::uint16_t ip_id,
                             std::span<std::uint8_t> out) {
  if (offending.size() < sizeof(Ipv4Header)) return 0;
  const auto* orig = reinterpret_cast<const Ipv4Header*>(offending.data());
  const std::size_t orig_total = std::min<std::size_t>(offending.size(), orig->total_length.host());
  const std::size_t orig_header = orig->header_bytes();
  constexpr std::size_t head = sizeof(Ipv4Header) + sizeof(IcmpHeader);
  if (orig_total < orig_header || out.size() < head + orig_header) return 0;
  const std::size_t quoted = std::min({orig_total, icmp_error_max_bytes - head, out.size() - head});

  std::uint8_t* ip = out.data();
  const std::size_t total = head + quoted;
  ip[0] = 0x45;
  ip[1] = 0xc0;  // precedence Internetwork Control, as routers mark their ICMP (RFC 1812 4.3.2.5)
  store(ip + 2, be16::from_host(static_cast<std::uint16_t>(total)));
  store(ip + 4, be16::from_host(ip_id));
  store(ip + 6, be16{0});
  ip[8] = 64;
  ip[9] = ip_proto::icmp;
  store(ip + 12, source);
  store(ip + 16, orig->src);
  finish_ip_header(ip, sizeof(Ipv4Header));

  std::uint8_t* icmp = ip + sizeof(Ipv4Header);
  icmp[0] = type;
  icmp[1] = code;
  store(icmp + 2, be16{0});
  store(icmp + 4, be16{0});
  store(icmp + 6, be16::from_host(next_hop_mtu));
  std::memcpy(icmp + sizeof(IcmpHeader), offending.data(), quoted);
  store(icmp + 2, internet_checksum(std::span<const std::uint8_t>(icmp, sizeof(IcmpHeader) + quoted)));
  return total;
}

FragmentPlan plan_fragments(std::span<const std::uint8_t> packet, std::uint16_t mtu) {
  FragmentPlan plan;
  if (packet.size() < sizeof(Ipv4Header)) return plan;
  const auto* ip = reinterpret_cast<const Ipv4Header*>(packet.data());
  const std::size_t total = std::min<std::size_t>(packet.size(), ip->total_length.host());
  const std::size_t header = ip->header_bytes();
  if ((ip->flags_fragment.host() & dont_fragment) || header < sizeof(Ipv4Header) || total < header) return plan;
  plan.first_header = header;
  plan.later_header = sizeof(Ipv4Header) +
                      copy_copied_options(packet.data() + sizeof(Ipv4Header), header - sizeof(Ipv4Header), nullptr);
  if (mtu < plan.first_header + 8 || mtu < plan.later_header + 8) return plan;
  plan.first_data = (mtu - plan.first_header) & ~std::size_t{7};
  plan.later_data = (mtu - plan.later_header) & ~std::size_t{7};
  const std::size_t data = total - header;
  if (data <= plan.first_data) {
    plan.count = 1;
    return plan;
  }
  plan.count = 1 + static_cast<unsigned>((data - plan.first_data + plan.later_data - 1) / plan.later_data);
  return plan;
}

std::size_t write_fragment(std::span<const std::uint8_t> packet, const FragmentPlan& plan, unsigned index,
                           std::span<std::uint8_t> out) {
  if (index >= plan.count) return 0;
  const auto* ip = reinterpret_cast<const Ipv4Header*>(packet.data());
  const std::size_t total = std::min<std::size_t>(packet.size(), ip->total_length.host());
  const std::size_t data = total - plan.first_header;
  const std::size_t start = index == 0 ? 0 : plan.first_data + (index - 1) * plan.later_data;
  const std::size_t piece = std::min(data - start, index == 0 ? plan.first_data : plan.later_data);
  const std::size_t header = index == 0 ? plan.first_header : plan.later_header;
  if (out.size() < header + piece) return 0;

  std::uint8_t* f = out.data();
  std::memcpy(f, packet.data(), sizeof(Ipv4Header));
  if (index == 0)
    std::memcpy(f + sizeof(Ipv4Header), packet.data() + sizeof(Ipv4Header), header - sizeof(Ipv4Header));
  else
    copy_copied_options(packet.data() + sizeof(Ipv4Header), plan.first_header - sizeof(Ipv4Header),
                        f + sizeof(Ipv4Header));
  f[0] = static_cast<std::uint8_t>(0x40 | (header / 4));
  std::memcpy(f + header, packet.data() + plan.first_header + start, piece);

  // Offsets count from the original datagram's start: a fragment split
  // again keeps its own offset as the base and its More Fragments flag on
  // the last piece.
  const std::uint16_t flags = ip->flags_fragment.host();
  const std::size_t offset = (flags & offset_mask) * 8u + start;
  const bool last = index + 1 == plan.count;
  const bool more = !last || (flags & more_fragments);
  const auto word = static_cast<std::uint16_t>((flags & ~(offset_mask | more_fragments)) | (more ? more_fragments : 0) |
                                               (offset / 8));
  store(f + 2, be16::from_host(static_cast<std::uint16_t>(header + piece)));
  store(f + 6, be16::from_host(word));
  finish_ip_header(f, header);
  return header + piece;
}

}  // namespace passgate::packet
