#include "packet/parse.hpp"

#include "packet/address.hpp"

namespace passgate::packet {

const char* parse_error_name(ParseError e) {
  switch (e) {
    case ParseError::ok: return "ok";
#define PASSGATE_X(name, text) \
  case ParseError::name:       \
    return #name;
    PASSGATE_PARSE_ERRORS(PASSGATE_X)
#undef PASSGATE_X
    case ParseError::count_: break;
  }
  return "unknown";
}

const char* parse_error_text(ParseError e) {
  switch (e) {
    case ParseError::ok: return "ok";
#define PASSGATE_X(name, text) \
  case ParseError::name:       \
    return text;
    PASSGATE_PARSE_ERRORS(PASSGATE_X)
#undef PASSGATE_X
    case ParseError::count_: break;
  }
  return "unknown";
}

namespace {

// The transport part of an ICMP error: embedded IPv4 header plus at least 8
// bytes of its transport header (RFC 792, RFC 5508 section 3).
ParseError parse_icmp_inner(std::span<const std::uint8_t> pkt, std::uint16_t inner_off, IcmpInner& in) {
  const std::size_t avail = pkt.size() - inner_off;
  if (avail < sizeof(Ipv4Header)) return ParseError::truncated_icmp_inner;
  const auto* ip = reinterpret_cast<const Ipv4Header*>(pkt.data() + inner_off);
  if (ip->version() != 4) return ParseError::bad_icmp_inner;
  const unsigned ihl = ip->header_bytes();
  if (ihl < sizeof(Ipv4Header)) return ParseError::bad_icmp_inner;
  if (avail < ihl + 8u) return ParseError::truncated_icmp_inner;
  // A later fragment carries no ports: nothing to translate back.
  if (ip->fragment_offset_bytes() != 0) return ParseError::bad_icmp_inner;
  in.ip_offset = inner_off;
  in.ihl_bytes = static_cast<std::uint8_t>(ihl);
  in.proto = ip->protocol;
  in.l4_offset = static_cast<std::uint16_t>(inner_off + ihl);
  in.l4_available = static_cast<std::uint16_t>(avail - ihl);
  in.src = ip->src;
  in.dst = ip->dst;
  const std::uint8_t* l4 = pkt.data() + in.l4_offset;
  switch (ip->protocol) {
    case ip_proto::tcp:
    case ip_proto::udp:
      in.kind = ip->protocol == ip_proto::tcp ? L4Kind::tcp : L4Kind::udp;
      in.src_port = load<be16>(l4);
      in.dst_port = load<be16>(l4 + 2);
      return ParseError::ok;
    case ip_proto::icmp: {
      const auto* icmp = reinterpret_cast<const IcmpHeader*>(l4);
      // An error is never sent about an error (RFC 1122 3.2.2), so only an
      // embedded query can be translated back.
      if (!is_icmp_query_type(icmp->type)) return ParseError::bad_icmp_inner;
      in.kind = L4Kind::icmp_query;
      in.src_port = icmp->rest_hi;
      in.dst_port = icmp->rest_hi;
      return ParseError::ok;
    }
    default:
      return ParseError::bad_icmp_inner;
  }
}

// RFC 1812 section 5.3.7: a router does not forward a packet from "this
// network" (0/8; 0.0.0.0 is a source only on the local link, for DHCP),
// loopback (127/8), or a source that is not unicast: multicast (224/4), class
// E and the limited broadcast (240/4). Destinations: 0/8 and 127/8 only;
// multicast, class E and broadcast destinations depend on the port's subnet
// and are the dataplane's decision.
bool is_martian_source(be32 a) { return is_reserved_address(a); }
bool is_martian_destination(be32 a) {
  const unsigned first = a.host() >> 24;
  return first == 0 || first == 127;
}

namespace ip_option {
inline constexpr std::uint8_t end = 0;  // end of option list
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t record_route = 7;
inline constexpr std::uint8_t timestamp = 68;
inline constexpr std::uint8_t loose_source_route = 131;
inline constexpr std::uint8_t strict_source_route = 137;
}  // namespace ip_option

// RFC 791 section 3.1: an option is a single octet (end of list, no
// operation) or type, length (counting type and length, so at least 2) and
// data, all inside the header. Nothing after end of list is read (it is
// padding). Record route and the source routes carry a pointer of at least 4,
// the timestamp one of at least 5; a pointer inside the option leaves room
// for a whole 4-octet slot. Linux (ip_options_compile) refuses the same
// shapes. A well-formed list with a source route is refused as such (RFC 7126
// sections 4.3 and 4.4: dropped by default; behind a NAT its hops would be
// untranslated addresses).
[[gnu::cold]] ParseError check_ip_options(std::span<const std::uint8_t> options) {
  bool source_routed = false;
  std::size_t i = 0;
  while (i < options.size()) {
    const std::uint8_t type = options[i];
    if (type == ip_option::end) break;
    if (type == ip_option::nop) {
      ++i;
      continue;
    }
    if (options.size() - i < 2) return ParseError::bad_ip_options;
    const unsigned length = options[i + 1];
    if (length < 2 || length > options.size() - i) return ParseError::bad_ip_options;
    unsigned min_length = 0, min_pointer = 0;
    switch (type) {
      case ip_option::loose_source_route:
      case ip_option::strict_source_route:
        source_routed = true;
        [[fallthrough]];
      case ip_option::record_route:
        min_length = 3;
        min_pointer = 4;
        break;
      case ip_option::timestamp:
        min_length = 4;
        min_pointer = 5;
        break;
      default:
        break;
    }
    if (min_length != 0) {
      if (length < min_length) return ParseError::bad_ip_options;
      const unsigned pointer = options[i + 2];
      if (pointer < min_pointer || (pointer <= length && pointer + 3 > length)) return ParseError::bad_ip_options;
    }
    i += length;
  }
  return source_routed ? ParseError::source_route : ParseError::ok;
}

// A fragment (MF set or offset != 0), checked after its own header.
//  - RFC 791: offsets count 8-octet units, so every fragment but the last
//    carries a multiple of 8 octets; one that carries nothing is refused as
//    well (Linux discards it at reassembly).
//  - The datagram it belongs to cannot exceed 65535 octets: offset plus data
//    beyond that is the "ping of death" that overflows a reassembly buffer.
//    Later fragments copy only some options, so their IHL is at most the
//    first fragment's: the sum with their own IHL is a lower bound.
//  - RFC 1858 section 3.2: a TCP fragment at offset 8 overlaps the first
//    fragment's TCP header from the acknowledgment number on, and on
//    reassembly rewrites the data offset and flags that were judged.
ParseError check_fragment(const Ipv4Header& ip, unsigned ihl, unsigned total) {
  const unsigned data = total - ihl;
  if (data == 0 || (ip.more_fragments() && data % 8 != 0)) return ParseError::bad_fragment_length;
  if (ihl + ip.fragment_offset_bytes() + data > 65535u) return ParseError::oversized_fragment;
  if (ip.protocol == ip_proto::tcp && ip.fragment_offset_bytes() == 8) return ParseError::tcp_fragment_overlap;
  return ParseError::ok;
}

ParseError parse_transport(std::span<const std::uint8_t> pkt, const Ipv4Header& ip, unsigned ihl, ParsedIpv4& out,
                           ParseOptions options);

}  // namespace

ParseError parse_ipv4(std::span<const std::uint8_t> bytes, ParsedIpv4& out, ParseOptions options) {
  if (bytes.empty()) return ParseError::empty;
  if ((bytes[0] >> 4) != 4) return ParseError::not_ipv4;
  if (bytes.size() < sizeof(Ipv4Header)) return ParseError::truncated_ip_header;
  const auto* ip = reinterpret_cast<const Ipv4Header*>(bytes.data());
  const unsigned ihl = ip->header_bytes();
  if (ihl < sizeof(Ipv4Header) || ihl > bytes.size()) return ParseError::bad_ihl;
  const unsigned total = ip->total_length.host();
  if (total < ihl || total > bytes.size()) return ParseError::bad_total_length;
  if (options.verify_ip_checksum && fold(ones_sum(bytes.first(ihl))) != 0xffff) return ParseError::bad_ip_checksum;
  if (is_martian_source(ip->src)) return ParseError::martian_source;
  if (is_martian_destination(ip->dst)) return ParseError::martian_destination;
  if (ihl > sizeof(Ipv4Header)) {
    const ParseError e = check_ip_options(bytes.subspan(sizeof(Ipv4Header), ihl - sizeof(Ipv4Header)));
    if (e != ParseError::ok) return e;
  }

  const std::span<const std::uint8_t> pkt = bytes.first(total);
  out.total_length = static_cast<std::uint16_t>(total);
  out.ihl_bytes = static_cast<std::uint8_t>(ihl);
  out.proto = ip->protocol;
  out.src = ip->src;
  out.dst = ip->dst;
  out.ip_id = ip->identification;
  out.fragmented = ip->is_fragment();
  out.first_fragment = ip->fragment_offset_bytes() == 0;
  out.tcp_flags = 0;
  out.icmp_type = out.icmp_code = 0;
  out.src_port = out.dst_port = be16{0};
  out.esp_spi = be32{0};
  out.gre_version = 0;
  out.gre_key_offset = 0;

  if (!out.first_fragment) {
    out.kind = L4Kind::later_fragment;
    return check_fragment(*ip, ihl, total);
  }
  // A first fragment is judged by its transport header first (a tiny one is
  // tiny_fragment whatever its length), then as a fragment.
  const ParseError e = parse_transport(pkt, *ip, ihl, out, options);
  if (e != ParseError::ok || !out.fragmented) return e;
  return check_fragment(*ip, ihl, total);
}

namespace {

ParseError parse_transport(std::span<const std::uint8_t> pkt, const Ipv4Header& ip, unsigned ihl, ParsedIpv4& out,
                           ParseOptions options) {
  const std::size_t l4_len = pkt.size() - ihl;
  const std::uint8_t* l4 = pkt.data() + ihl;
  // The first fragment must hold the whole transport header we translate
  // (RFC 1858 tiny-fragment defence); an unfragmented packet that is too short
  // is simply truncated.
  const ParseError short_l4 = out.fragmented ? ParseError::tiny_fragment : ParseError::truncated_l4;

  switch (ip.protocol) {
    case ip_proto::udp: {
      if (l4_len < sizeof(UdpHeader)) return short_l4;
      // RFC 768: the length counts header and data. Unfragmented, it may not
      // run past the IP payload; shorter leaves a surplus area, which RFC
      // 9868 uses for UDP options and Linux trims, so it is accepted. A first
      // fragment holds only part of the datagram: refused only below the
      // header or beyond what any IPv4 datagram can carry after this header.
      const unsigned udp_length = load<be16>(l4 + 4).host();
      if (udp_length < sizeof(UdpHeader) || udp_length > (out.fragmented ? 65535u - ihl : l4_len))
        return ParseError::bad_udp_length;
      out.kind = L4Kind::udp;
      out.src_port = load<be16>(l4);
      out.dst_port = load<be16>(l4 + 2);
      return ParseError::ok;
    }
    case ip_proto::tcp: {
      if (l4_len < sizeof(TcpHeader)) return short_l4;
      const auto* tcp = reinterpret_cast<const TcpHeader*>(l4);
      if (tcp->header_bytes() < sizeof(TcpHeader) || tcp->header_bytes() > l4_len) return ParseError::bad_tcp_offset;
      out.kind = L4Kind::tcp;
      out.src_port = tcp->src_port;
      out.dst_port = tcp->dst_port;
      out.tcp_flags = tcp->flags;
      return ParseError::ok;
    }
    case ip_proto::icmp: {
      if (l4_len < sizeof(IcmpHeader)) return short_l4;
      const auto* icmp = reinterpret_cast<const IcmpHeader*>(l4);
      out.icmp_type = icmp->type;
      out.icmp_code = icmp->code;
      // The checksum covers the whole message, which a fragment does not hold.
      if (options.verify_icmp_checksum && !out.fragmented &&
          fold(ones_sum(pkt.subspan(ihl))) != 0xffff)
        return ParseError::bad_icmp_checksum;
      if (is_icmp_query_type(icmp->type)) {
        out.kind = L4Kind::icmp_query;
        out.src_port = icmp->rest_hi;
        out.dst_port = icmp->rest_hi;
        return ParseError::ok;
      }
      if (is_icmp_error_type(icmp->type)) {
        out.kind = L4Kind::icmp_error;
        return parse_icmp_inner(pkt, static_cast<std::uint16_t>(ihl + sizeof(IcmpHeader)), out.inner);
      }
      out.kind = L4Kind::icmp_other;
      return ParseError::ok;
    }
    case ip_proto::esp: {
      if (l4_len < sizeof(EspHeader)) return short_l4;
      out.kind = L4Kind::esp;
      out.esp_spi = load<be32>(l4);
      return ParseError::ok;
    }
    case ip_proto::gre: {
      if (l4_len < sizeof(GreHeader)) return short_l4;
      const auto* gre = reinterpret_cast<const GreHeader*>(l4);
      const unsigned version = gre->version();
      std::size_t need = sizeof(GreHeader);
      if (version == 0) {
        // RFC 2784 / 2890: optional checksum+reserved, key, sequence. The
        // routing bit is deprecated (RFC 2784 section 2.1) and refused.
        if (gre->routing_present()) return ParseError::bad_gre;
        if (gre->checksum_present()) need += 4;
        if (gre->key_present()) {
          out.gre_key_offset = static_cast<std::uint16_t>(ihl + need);
          need += 4;
        }
        if (gre->sequence_present()) need += 4;
      } else if (version == 1) {
        // RFC 2637 4.1: enhanced GRE always has the key (payload length +
        // call ID), never checksum or routing, and carries PPP.
        if (gre->checksum_present() || gre->routing_present() || !gre->key_present() ||
            gre->protocol.host() != gre_protocol_ppp)
          return ParseError::bad_gre;
        out.gre_key_offset = static_cast<std::uint16_t>(ihl + need);
        need += 4;
        if (gre->sequence_present()) need += 4;
        if (gre->ack_present()) need += 4;
      } else {
        return ParseError::bad_gre;
      }
      if (l4_len < need) return out.fragmented ? ParseError::tiny_fragment : ParseError::bad_gre;
      out.kind = L4Kind::gre;
      out.gre_version = static_cast<std::uint8_t>(version);
      return ParseError::ok;
    }
    default:
      out.kind = L4Kind::other;
      return ParseError::ok;
  }
}

}  // namespace
}  // namespace passgate::packet
