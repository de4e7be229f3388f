// parse_ipv4(): every accepted shape with its summary fields, every rejected
// shape with its exact ParseError, and a bounds check that parses every
// prefix (and single-byte corruptions) of valid packets from exactly-sized
// heap buffers, so AddressSanitizer reports any read past the end.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nat/engine.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/parse.hpp"
#include "support/packet_builder.hpp"

namespace passgate::packet {
namespace {

using testing::Bytes;
using testing::IpFields;

const be32 kInside = ipv4(100, 64, 0, 10);
const be32 kServer = ipv4(203, 0, 113, 80);
const be32 kRouter = ipv4(192, 0, 2, 254);

IpFields fields(be32 src = kInside, be32 dst = kServer) {
  IpFields f;
  f.src = src;
  f.dst = dst;
  return f;
}

// Independent header checksum (big-endian reference sum).
void fix_ip_checksum(Bytes& p) {
  const std::size_t ihl = (p[0] & 0x0f) * 4u;
  p[10] = p[11] = 0;
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < ihl; i += 2) sum += static_cast<std::uint32_t>((p[i] << 8) | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  p[10] = static_cast<std::uint8_t>(~sum >> 8);
  p[11] = static_cast<std::uint8_t>(~sum);
}

// An IPv4 packet around an arbitrary payload (no transport checksum work).
Bytes raw_packet(std::uint8_t proto, const Bytes& payload, IpFields f = fields()) {
  const std::size_t ihl = 20 + f.options.size();
  Bytes p(ihl, 0);
  p[0] = static_cast<std::uint8_t>(0x40 | (ihl / 4));
  const std::size_t total = ihl + payload.size();
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  p[4] = static_cast<std::uint8_t>(f.id >> 8);
  p[5] = static_cast<std::uint8_t>(f.id);
  const std::uint16_t frag = static_cast<std::uint16_t>((f.more_fragments ? 0x2000 : 0) | (f.fragment_offset_bytes / 8));
  p[6] = static_cast<std::uint8_t>(frag >> 8);
  p[7] = static_cast<std::uint8_t>(frag);
  p[8] = f.ttl;
  p[9] = proto;
  store(&p[12], f.src);
  store(&p[16], f.dst);
  std::copy(f.options.begin(), f.options.end(), p.begin() + 20);
  p.insert(p.end(), payload.begin(), payload.end());
  fix_ip_checksum(p);
  return p;
}

// Sets the ICMP checksum of an unfragmented packet from scratch.
void fix_icmp_checksum(Bytes& p) {
  const std::size_t ihl = (p[0] & 0x0f) * 4u;
  p[ihl + 2] = p[ihl + 3] = 0;
  store(&p[ihl + 2], internet_checksum(std::span<const std::uint8_t>(p).subspan(ihl)));
}

ParseError parse(const Bytes& p, ParsedIpv4& out, ParseOptions o = {}) { return parse_ipv4(p, out, o); }
ParseError parse(const Bytes& p, ParseOptions o = {}) {
  ParsedIpv4 out{};
  return parse_ipv4(p, out, o);
}

#define EXPECT_PARSE(packet, error) EXPECT_EQ(parse(packet), ParseError::error) << parse_error_name(parse(packet))

// ------------------------------------------------------------- accepted

TEST(Parse, Udp) {
  const Bytes p = testing::udp_packet(fields(), 40000, 53, Bytes(12, 1));
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::udp);
  EXPECT_EQ(r.proto, ip_proto::udp);
  EXPECT_EQ(r.total_length, p.size());
  EXPECT_EQ(r.ihl_bytes, 20);
  EXPECT_EQ(r.src, kInside);
  EXPECT_EQ(r.dst, kServer);
  EXPECT_EQ(r.ip_id.host(), 0x1234);
  EXPECT_EQ(r.src_port.host(), 40000);
  EXPECT_EQ(r.dst_port.host(), 53);
  EXPECT_FALSE(r.fragmented);
  EXPECT_TRUE(r.first_fragment);
  EXPECT_EQ(r.gre_key_offset, 0);
  EXPECT_EQ(r.esp_spi.raw, 0u);
}

TEST(Parse, UdpWithoutChecksumAndEmptyPayload) {
  const Bytes p = testing::udp_packet(fields(), 1, 2, Bytes{}, true);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::udp);
  EXPECT_EQ(r.total_length, 28);
}

TEST(Parse, Tcp) {
  const Bytes p = testing::tcp_packet(fields(), 51000, 443, tcp_flag::syn | tcp_flag::ack);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::tcp);
  EXPECT_EQ(r.src_port.host(), 51000);
  EXPECT_EQ(r.dst_port.host(), 443);
  EXPECT_EQ(r.tcp_flags, tcp_flag::syn | tcp_flag::ack);
}

TEST(Parse, TcpWithOptionsFillingThePacket) {
  // Data offset 7 (28 bytes): exactly the 20 + 8 bytes present.
  Bytes p = testing::tcp_packet(fields(), 1000, 80, tcp_flag::syn, Bytes(8, 1));
  p[20 + 12] = 7 << 4;
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::tcp);
}

TEST(Parse, IcmpEchoRequestAndReply) {
  for (std::uint8_t type : {icmp_type::echo_request, icmp_type::echo_reply}) {
    const Bytes p = testing::icmp_echo(fields(), type, 0xbeef, 7);
    ParsedIpv4 r{};
    ASSERT_EQ(parse(p, r), ParseError::ok);
    EXPECT_EQ(r.kind, L4Kind::icmp_query);
    EXPECT_EQ(r.icmp_type, type);
    EXPECT_EQ(r.icmp_code, 0);
    EXPECT_EQ(r.src_port.host(), 0xbeef);
    EXPECT_EQ(r.dst_port.host(), 0xbeef);
  }
}

TEST(Parse, IcmpTimestampIsQueryAndRouterAdvertIsOther) {
  Bytes ts = testing::icmp_echo(fields(), icmp_type::echo_request, 42, 1, Bytes(12, 0));
  ts[20] = icmp_type::timestamp;
  fix_icmp_checksum(ts);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(ts, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::icmp_query);
  EXPECT_EQ(r.src_port.host(), 42);

  Bytes adv = testing::icmp_echo(fields(), 9, 0, 0, Bytes(8, 0));
  ASSERT_EQ(parse(adv, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::icmp_other);
  EXPECT_EQ(r.icmp_type, 9);
}

TEST(Parse, IcmpErrorEmbeddingUdp) {
  // Port unreachable from the server about a packet the subscriber sent.
  const Bytes quoted = testing::udp_packet(fields(kInside, kServer), 40000, 53, Bytes(30, 2));
  const Bytes p = testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, quoted);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::icmp_error);
  EXPECT_EQ(r.icmp_type, icmp_type::dest_unreachable);
  EXPECT_EQ(r.icmp_code, 3);
  EXPECT_EQ(r.inner.ip_offset, 28);
  EXPECT_EQ(r.inner.ihl_bytes, 20);
  EXPECT_EQ(r.inner.proto, ip_proto::udp);
  EXPECT_EQ(r.inner.l4_offset, 48);
  EXPECT_EQ(r.inner.l4_available, quoted.size() - 20);
  EXPECT_EQ(r.inner.src, kInside);
  EXPECT_EQ(r.inner.dst, kServer);
  EXPECT_EQ(r.inner.src_port.host(), 40000);
  EXPECT_EQ(r.inner.dst_port.host(), 53);
  EXPECT_EQ(r.inner.kind, L4Kind::udp);
}

TEST(Parse, IcmpErrorEmbeddingTcpQuotingOnlyEightBytes) {
  const Bytes quoted = testing::tcp_packet(fields(kInside, kServer), 51000, 443, tcp_flag::syn);
  // RFC 792: the IPv4 header and the first 64 bits of the datagram.
  const Bytes p = testing::icmp_error(fields(kRouter, kInside), icmp_type::time_exceeded, 0, quoted, 28);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::icmp_error);
  EXPECT_EQ(r.inner.kind, L4Kind::tcp);
  EXPECT_EQ(r.inner.l4_available, 8);
  EXPECT_EQ(r.inner.src_port.host(), 51000);
  EXPECT_EQ(r.inner.dst_port.host(), 443);
}

TEST(Parse, IcmpErrorEmbeddingIcmpEcho) {
  const Bytes quoted = testing::icmp_echo(fields(kInside, kServer), icmp_type::echo_request, 0x4242, 1);
  const Bytes p = testing::icmp_error(fields(kRouter, kInside), icmp_type::time_exceeded, 0, quoted);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.inner.kind, L4Kind::icmp_query);
  EXPECT_EQ(r.inner.proto, ip_proto::icmp);
  EXPECT_EQ(r.inner.src_port.host(), 0x4242);
  EXPECT_EQ(r.inner.dst_port.host(), 0x4242);
}

TEST(Parse, IcmpErrorEmbeddingPacketWithOptionsAndOuterOptions) {
  IpFields inner = fields(kInside, kServer);
  inner.options = {1, 1, 1, 0, 1, 1, 1, 0};  // NOPs and end of list
  const Bytes quoted = testing::udp_packet(inner, 1111, 2222);
  IpFields outer = fields(kServer, kInside);
  outer.options = {1, 1, 1, 0};
  const Bytes p = testing::icmp_error(outer, icmp_type::parameter_problem, 0, quoted);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.ihl_bytes, 24);
  EXPECT_EQ(r.inner.ip_offset, 32);
  EXPECT_EQ(r.inner.ihl_bytes, 28);
  EXPECT_EQ(r.inner.l4_offset, 60);
  EXPECT_EQ(r.inner.src_port.host(), 1111);
}

TEST(Parse, Esp) {
  const Bytes p = testing::esp_packet(fields(), 0xc0ffee01, 5);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::esp);
  EXPECT_EQ(r.proto, ip_proto::esp);
  EXPECT_EQ(r.esp_spi.host(), 0xc0ffee01u);
}

TEST(Parse, GreVersion0Plain) {
  const Bytes p = testing::gre_packet(fields(), 0, false, 0);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::gre);
  EXPECT_EQ(r.gre_version, 0);
  EXPECT_EQ(r.gre_key_offset, 0);
}

TEST(Parse, GreVersion0WithKeyAndSequence) {
  const Bytes p = testing::gre_packet(fields(), 0, true, 0xabcdef01, true);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.gre_version, 0);
  ASSERT_EQ(r.gre_key_offset, 24);
  EXPECT_EQ(load<be32>(&p[r.gre_key_offset]).host(), 0xabcdef01u);
}

TEST(Parse, GreVersion0WithChecksumKeyAndSequence) {
  // RFC 2890: C K S bits; checksum+reserved, key, sequence, then payload.
  Bytes gre = {0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 9};
  gre.insert(gre.end(), 20, 0x45);
  const Bytes p = raw_packet(ip_proto::gre, gre);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::gre);
  ASSERT_EQ(r.gre_key_offset, 28);  // after the 4-byte checksum field
  EXPECT_EQ(load<be32>(&p[r.gre_key_offset]).host(), 0x11223344u);

  // Checksum and sequence only: no key offset.
  Bytes gre2 = {0x90, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 1};
  ASSERT_EQ(parse(raw_packet(ip_proto::gre, gre2), r), ParseError::ok);
  EXPECT_EQ(r.gre_key_offset, 0);
  // Exactly the header, no payload, is still a GRE packet.
  ASSERT_EQ(parse(raw_packet(ip_proto::gre, Bytes(gre.begin(), gre.begin() + 16)), r), ParseError::ok);
}

TEST(Parse, GreVersion1Pptp) {
  // RFC 2637 4.1: key = payload length (16) + call ID (16).
  const Bytes p = testing::gre_packet(fields(), 1, true, 0x0010abcd, true);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::gre);
  EXPECT_EQ(r.gre_version, 1);
  ASSERT_EQ(r.gre_key_offset, 24);
  EXPECT_EQ(load<be16>(&p[r.gre_key_offset + 2]).host(), 0xabcd);  // call ID
}

TEST(Parse, GreVersion1WithAcknowledgmentOnly) {
  // K set, A set (flags_ver 0x81), no S: header + key + ack = 12 bytes.
  const Bytes gre = {0x20, 0x81, 0x88, 0x0b, 0x00, 0x00, 0x12, 0x34, 0, 0, 0, 7};
  ParsedIpv4 r{};
  ASSERT_EQ(parse(raw_packet(ip_proto::gre, gre), r), ParseError::ok);
  EXPECT_EQ(r.gre_version, 1);
  EXPECT_EQ(r.gre_key_offset, 24);
  // Without the acknowledgment number present it is truncated.
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes(gre.begin(), gre.begin() + 8)), bad_gre);
}

TEST(Parse, Ipv4WithOptions) {
  IpFields f = fields();
  f.options = {0x94, 0x04, 0x00, 0x00};  // router alert
  const Bytes p = testing::udp_packet(f, 5353, 5353);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.ihl_bytes, 24);
  EXPECT_EQ(r.kind, L4Kind::udp);
  EXPECT_EQ(r.src_port.host(), 5353);

  f.options.assign(40, 1);  // IHL 15, the maximum
  const Bytes q = testing::tcp_packet(f, 7, 8, tcp_flag::syn);
  ASSERT_EQ(parse(q, r), ParseError::ok);
  EXPECT_EQ(r.ihl_bytes, 60);
  EXPECT_EQ(r.src_port.host(), 7);
}

TEST(Parse, FirstAndLaterFragments) {
  const Bytes whole = testing::udp_packet(fields(), 3000, 4000, Bytes(100, 3));
  const std::vector<Bytes> frags = testing::fragment(whole, 48);
  ASSERT_EQ(frags.size(), 3u);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(frags[0], r), ParseError::ok);
  EXPECT_TRUE(r.fragmented);
  EXPECT_TRUE(r.first_fragment);
  EXPECT_EQ(r.kind, L4Kind::udp);
  EXPECT_EQ(r.src_port.host(), 3000);
  for (std::size_t i = 1; i < frags.size(); ++i) {
    ASSERT_EQ(parse(frags[i], r), ParseError::ok);
    EXPECT_TRUE(r.fragmented);
    EXPECT_FALSE(r.first_fragment);
    EXPECT_EQ(r.kind, L4Kind::later_fragment);
    EXPECT_EQ(r.proto, ip_proto::udp);
    EXPECT_EQ(r.ip_id.host(), 0x1234);
  }
}

TEST(Parse, FragmentedIcmpIsNotChecksummedPerFragment) {
  const Bytes whole = testing::icmp_echo(fields(), icmp_type::echo_request, 9, 9, Bytes(200, 1));
  const std::vector<Bytes> frags = testing::fragment(whole, 64);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(frags[0], r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::icmp_query);
  EXPECT_EQ(r.src_port.host(), 9);
}

TEST(Parse, LaterFragmentOfAnyProtocolNeedsNoTransportHeader) {
  IpFields f = fields();
  f.fragment_offset_bytes = 1480;
  const Bytes p = raw_packet(ip_proto::tcp, Bytes{1}, f);  // a single byte
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::later_fragment);
}

TEST(Parse, EthernetPaddingAfterTotalLengthIsIgnored) {
  // Minimum Ethernet payload is 46 bytes; a 28-byte UDP packet is padded.
  Bytes p = testing::udp_packet(fields(), 1, 2, Bytes{}, false);
  p.resize(46, 0);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.total_length, 28);
  EXPECT_EQ(r.kind, L4Kind::udp);

  // Non-zero padding after an ICMP echo: the checksum covers total length only.
  Bytes e = testing::icmp_echo(fields(), icmp_type::echo_request, 1, 1, Bytes(2, 0));
  e.resize(46, 0xee);
  ASSERT_EQ(parse(e, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::icmp_query);

  // An ICMP error: the quoted bytes end at the total length, not the buffer.
  const Bytes quoted = testing::udp_packet(fields(kInside, kServer), 1, 2, Bytes{});
  Bytes err = testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 1, quoted);
  const std::size_t total = err.size();
  err.resize(total + 10, 0xff);
  ASSERT_EQ(parse(err, r), ParseError::ok);
  EXPECT_EQ(r.total_length, total);
  EXPECT_EQ(r.inner.l4_available, 8);
}

TEST(Parse, OtherProtocolIsAcceptedAsOther) {
  const Bytes p = raw_packet(89, Bytes(12, 0));  // OSPF
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::other);
  EXPECT_EQ(r.proto, 89);
  // Even with no payload at all.
  ASSERT_EQ(parse(raw_packet(89, Bytes{}), r), ParseError::ok);
}

TEST(Parse, WellFormedIpOptionsAccepted) {
  // RFC 791 section 3.1: each option is a single octet (EOL, NOP) or type,
  // length (counting type and length), data; unknown types are passed on.
  const std::vector<Bytes> lists = {
      {7, 7, 4, 0, 0, 0, 0, 0},                           // record route, empty, then EOL
      {7, 7, 8, 192, 0, 2, 1, 1},                          // record route, full (pointer past it)
      {68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0},              // timestamp, one slot free
      {136, 4, 0x12, 0x34},                                // stream identifier
      {0x9e, 4, 1, 2},                                     // a type nobody assigned: well formed
      {0, 0xff, 0xff, 0xff},                               // nothing after EOL is read
      {1, 1, 0x94, 4, 0, 0, 1, 0},                         // NOPs, router alert, NOP, EOL
  };
  for (const Bytes& options : lists) {
    IpFields f = fields();
    f.options = options;
    ParsedIpv4 r{};
    ASSERT_EQ(parse(testing::udp_packet(f, 1000, 53), r), ParseError::ok) << int(options[0]);
    EXPECT_EQ(r.ihl_bytes, 20 + options.size());
    EXPECT_EQ(r.kind, L4Kind::udp);
  }
}

TEST(Parse, UdpSurplusAreaAccepted) {
  // RFC 9868 (UDP options): the IP payload may run past the UDP length; the
  // surplus carries transport options. Linux trims it and a router never
  // looks: only a UDP length beyond the payload is malformed.
  Bytes p = testing::udp_packet(fields(), 1000, 53, Bytes(16, 1), true);
  p[20 + 4] = 0;
  p[20 + 5] = 8 + 10;
  ParsedIpv4 r{};
  ASSERT_EQ(parse(p, r), ParseError::ok);
  EXPECT_EQ(r.kind, L4Kind::udp);
  p[20 + 5] = 8;  // no payload at all, all surplus
  EXPECT_PARSE(p, ok);
}

TEST(Parse, AddressesNextToTheMartianRangesAccepted) {
  for (const be32 a : {ipv4(1, 0, 0, 0), ipv4(126, 255, 255, 255), ipv4(128, 0, 0, 0), ipv4(223, 255, 255, 255)}) {
    EXPECT_PARSE(testing::udp_packet(fields(a, kServer), 1, 2), ok);
    EXPECT_PARSE(testing::udp_packet(fields(kInside, a), 1, 2), ok);
  }
  // Multicast, class E and broadcast destinations are the dataplane's
  // decision (it knows the port's subnet), not the parser's.
  for (const be32 a : {ipv4(224, 0, 0, 251), ipv4(239, 1, 2, 3), ipv4(240, 0, 0, 1), ipv4(255, 255, 255, 255)})
    EXPECT_PARSE(testing::udp_packet(fields(kInside, a), 1, 2), ok);
}

TEST(Parse, FragmentsUpToTheLargestDatagram) {
  // The last fragment may end exactly at 65535 bytes of datagram.
  IpFields f = fields();
  f.fragment_offset_bytes = 65512;
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes(3, 0), f), ok);
  // A first fragment's UDP length describes the whole datagram.
  f = fields();
  f.more_fragments = true;
  Bytes first = raw_packet(ip_proto::udp, Bytes{0, 1, 0, 2, 0xff, 0xeb, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, f);
  ParsedIpv4 r{};
  ASSERT_EQ(parse(first, r), ParseError::ok);  // 65515 = 65535 - 20
  EXPECT_EQ(r.kind, L4Kind::udp);
  // A later TCP fragment past the header may start anywhere from offset 16.
  f = fields();
  f.fragment_offset_bytes = 16;
  EXPECT_PARSE(raw_packet(ip_proto::tcp, Bytes(8, 0), f), ok);
}

// ------------------------------------------------------------- rejected

TEST(ParseReject, Empty) { EXPECT_PARSE(Bytes{}, empty); }

TEST(ParseReject, NotIpv4) {
  Bytes p = testing::udp_packet(fields(), 1, 2);
  p[0] = 0x65;  // IPv6
  EXPECT_PARSE(p, not_ipv4);
  EXPECT_PARSE(Bytes{0x00}, not_ipv4);
  EXPECT_PARSE(Bytes{0x60}, not_ipv4);
}

TEST(ParseReject, TruncatedIpHeader) {
  const Bytes p = testing::udp_packet(fields(), 1, 2);
  EXPECT_PARSE(Bytes{0x45}, truncated_ip_header);
  EXPECT_PARSE(Bytes(p.begin(), p.begin() + 19), truncated_ip_header);
}

TEST(ParseReject, IhlBelowFive) {
  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {
    Bytes p = testing::udp_packet(fields(), 1, 2);
    p[0] = static_cast<std::uint8_t>(0x40 | ihl);
    EXPECT_PARSE(p, bad_ihl);
  }
}

TEST(ParseReject, IhlBeyondBuffer) {
  // A bare 20-byte header that claims 24 bytes of header.
  Bytes p = raw_packet(89, Bytes{});
  p[0] = 0x46;
  EXPECT_PARSE(p, bad_ihl);
  p = raw_packet(89, Bytes(20, 0));
  p.resize(40);
  p[0] = 0x4f;  // 60 bytes of header in a 40-byte buffer
  EXPECT_PARSE(p, bad_ihl);
}

TEST(ParseReject, TotalLengthBeyondBuffer) {
  const Bytes p = testing::udp_packet(fields(), 1, 2);
  EXPECT_PARSE(Bytes(p.begin(), p.end() - 1), bad_total_length);
  Bytes q = p;
  q[2] = 0xff;
  fix_ip_checksum(q);
  EXPECT_PARSE(q, bad_total_length);
}

TEST(ParseReject, TotalLengthBelowIhl) {
  Bytes p = testing::udp_packet(fields(), 1, 2);
  p[2] = 0;
  p[3] = 19;
  fix_ip_checksum(p);
  EXPECT_PARSE(p, bad_total_length);
  IpFields f = fields();
  f.options = {1, 1, 1, 0};
  p = testing::udp_packet(f, 1, 2);
  p[2] = 0;
  p[3] = 20;  // below the 24-byte header
  fix_ip_checksum(p);
  EXPECT_PARSE(p, bad_total_length);
  p[3] = 0;
  fix_ip_checksum(p);
  EXPECT_PARSE(p, bad_total_length);
}

TEST(ParseReject, BadIpChecksum) {
  Bytes p = testing::udp_packet(fields(), 1, 2);
  p[8] ^= 1;  // TTL
  EXPECT_PARSE(p, bad_ip_checksum);
  // Unless the NIC verified it already.
  EXPECT_EQ(parse(p, ParseOptions{.verify_ip_checksum = false}), ParseError::ok);
  // Corrupt an option byte: the checksum covers the whole IHL.
  IpFields f = fields();
  f.options = {1, 1, 1, 0};
  Bytes q = testing::udp_packet(f, 1, 2);
  q[22] ^= 0x40;
  EXPECT_PARSE(q, bad_ip_checksum);
}

TEST(ParseReject, TruncatedUdpTcpIcmpEsp) {
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes(7, 0)), truncated_l4);
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes{}), truncated_l4);
  EXPECT_PARSE(raw_packet(ip_proto::tcp, Bytes(19, 0x50)), truncated_l4);
  EXPECT_PARSE(raw_packet(ip_proto::icmp, Bytes(7, 0)), truncated_l4);
  EXPECT_PARSE(raw_packet(ip_proto::esp, Bytes(7, 0)), truncated_l4);
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes(3, 0)), truncated_l4);
}

TEST(ParseReject, TcpDataOffsetBelowFiveOrBeyondPacket) {
  for (std::uint8_t off : {0, 1, 4}) {
    Bytes p = testing::tcp_packet(fields(), 1, 2, tcp_flag::syn);
    p[20 + 12] = static_cast<std::uint8_t>(off << 4);
    EXPECT_PARSE(p, bad_tcp_offset);
  }
  Bytes p = testing::tcp_packet(fields(), 1, 2, tcp_flag::syn, Bytes(8, 0));
  p[20 + 12] = 8 << 4;  // 32 bytes, only 28 present
  EXPECT_PARSE(p, bad_tcp_offset);
  p[20 + 12] = 15 << 4;
  EXPECT_PARSE(p, bad_tcp_offset);
  // Padding past total length does not count as TCP header.
  p.resize(p.size() + 40, 0);
  EXPECT_PARSE(p, bad_tcp_offset);
}

TEST(ParseReject, BadIcmpChecksum) {
  Bytes p = testing::icmp_echo(fields(), icmp_type::echo_request, 1, 2);
  p.back() ^= 0x01;
  EXPECT_PARSE(p, bad_icmp_checksum);
  EXPECT_EQ(parse(p, ParseOptions{.verify_icmp_checksum = false}), ParseError::ok);
  const Bytes quoted = testing::udp_packet(fields(kInside, kServer), 1, 2);
  Bytes e = testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, quoted);
  e[20 + 1] = 1;  // code changed, checksum not
  EXPECT_PARSE(e, bad_icmp_checksum);
}

TEST(ParseReject, IcmpErrorTooShortForEmbeddedHeader) {
  const Bytes quoted = testing::udp_packet(fields(kInside, kServer), 1, 2);
  // Fewer than 20 bytes of embedded IPv4 header.
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, quoted, 19),
               truncated_icmp_inner);
  // Header present, but fewer than 8 bytes of its transport header.
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, quoted, 27),
               truncated_icmp_inner);
  // No quote at all.
  EXPECT_PARSE(raw_packet(ip_proto::icmp, Bytes{3, 3, 0xfc, 0xfc, 0, 0, 0, 0}), truncated_icmp_inner);
  // The embedded header has options: IHL 6 needs 24 + 8 bytes.
  IpFields f = fields(kInside, kServer);
  f.options = {1, 1, 1, 0};
  const Bytes with_options = testing::udp_packet(f, 1, 2);
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, with_options, 31),
               truncated_icmp_inner);
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, with_options, 32), ok);
}

TEST(ParseReject, IcmpErrorEmbeddingNonIpv4OrBadHeader) {
  Bytes quoted = testing::udp_packet(fields(kInside, kServer), 1, 2);
  quoted[0] = 0x65;
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, quoted),
               bad_icmp_inner);
  quoted[0] = 0x44;  // IHL 4
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, quoted),
               bad_icmp_inner);
}

TEST(ParseReject, IcmpErrorInsideAnError) {
  // RFC 1122 3.2.2: no ICMP error about an ICMP error.
  const Bytes first = testing::icmp_error(fields(kInside, kServer), icmp_type::dest_unreachable, 3,
                                          testing::udp_packet(fields(kServer, kInside), 1, 2));
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::time_exceeded, 0, first), bad_icmp_inner);
  // Nor is any other non-query ICMP translatable when embedded.
  const Bytes adv = testing::icmp_echo(fields(kInside, kServer), 9, 0, 0);
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::time_exceeded, 0, adv), bad_icmp_inner);
}

TEST(ParseReject, IcmpErrorEmbeddingLaterFragmentOrOtherProtocol) {
  IpFields f = fields(kInside, kServer);
  f.fragment_offset_bytes = 8;
  const Bytes later = testing::udp_packet(f, 1, 2);
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::time_exceeded, 1, later), bad_icmp_inner);
  const Bytes esp = testing::esp_packet(fields(kInside, kServer), 1, 1);
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, esp), bad_icmp_inner);
  // A first fragment (MF set, offset 0) is fine: it carries the ports.
  IpFields first = fields(kInside, kServer);
  first.more_fragments = true;
  const Bytes frag = testing::udp_packet(first, 1, 2);
  EXPECT_PARSE(testing::icmp_error(fields(kServer, kInside), icmp_type::time_exceeded, 1, frag), ok);
}

TEST(ParseReject, TinyFirstFragment) {
  // RFC 1858: a first fragment too short for the transport header.
  const Bytes whole = testing::tcp_packet(fields(), 1, 2, tcp_flag::syn, Bytes(40, 0));
  const std::vector<Bytes> frags = testing::fragment(whole, 8);
  EXPECT_PARSE(frags[0], tiny_fragment);
  IpFields f = fields();
  f.more_fragments = true;
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes(4, 0), f), tiny_fragment);
  EXPECT_PARSE(raw_packet(ip_proto::icmp, Bytes(4, 0), f), tiny_fragment);
  EXPECT_PARSE(raw_packet(ip_proto::esp, Bytes(4, 0), f), tiny_fragment);
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes(2, 0), f), tiny_fragment);
  // GRE with a key flag whose key did not fit in the first fragment.
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes{0x20, 0x00, 0x08, 0x00}, f), tiny_fragment);
}

TEST(ParseReject, BadGre) {
  // Version 1 without the key (RFC 2637 requires it).
  EXPECT_PARSE(testing::gre_packet(fields(), 1, false, 0), bad_gre);
  // Version 1 with a checksum bit, routing bit, or not carrying PPP.
  Bytes v1 = testing::gre_packet(fields(), 1, true, 0x00000001);
  v1[20] |= 0x80;
  EXPECT_PARSE(v1, bad_gre);
  v1 = testing::gre_packet(fields(), 1, true, 0x00000001);
  v1[20] |= 0x40;
  EXPECT_PARSE(v1, bad_gre);
  v1 = testing::gre_packet(fields(), 1, true, 0x00000001);
  v1[22] = 0x08;
  v1[23] = 0x00;
  EXPECT_PARSE(v1, bad_gre);
  // Versions 2..7 do not exist.
  for (std::uint8_t v = 2; v < 8; ++v) EXPECT_PARSE(testing::gre_packet(fields(), v, true, 1), bad_gre);
  // Version 0 with the deprecated routing bit (RFC 2784 2.1).
  Bytes v0 = testing::gre_packet(fields(), 0, false, 0);
  v0[20] |= 0x40;
  EXPECT_PARSE(v0, bad_gre);
  // Optional fields announced but not present.
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes{0x20, 0x00, 0x08, 0x00, 0, 0}), bad_gre);
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes{0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}), bad_gre);
  EXPECT_PARSE(raw_packet(ip_proto::gre, Bytes{0x30, 0x01, 0x88, 0x0b, 0, 0, 0, 0}), bad_gre);
}

IpFields with_options(const Bytes& options, be32 src = kInside, be32 dst = kServer) {
  IpFields f = fields(src, dst);
  f.options = options;
  return f;
}

TEST(ParseReject, IpOptionLengthBelowTwo) {
  // A length of 0 or 1 cannot even cover the type and length octets: a
  // careless option walker loops on it (RFC 791 section 3.1).
  for (const Bytes& options : {Bytes{0x94, 0, 0, 0}, Bytes{0x94, 1, 0, 0}, Bytes{1, 1, 7, 0}, Bytes{1, 1, 0x99, 1}})
    EXPECT_PARSE(testing::udp_packet(with_options(options), 1, 2), bad_ip_options) << int(options[2]);
}

TEST(ParseReject, IpOptionRunningPastTheHeader) {
  // The length reaches past IHL, or the type octet is the last one.
  EXPECT_PARSE(testing::udp_packet(with_options({0x94, 8, 0, 0}), 1, 2), bad_ip_options);
  EXPECT_PARSE(testing::udp_packet(with_options({1, 1, 1, 0x94}), 1, 2), bad_ip_options);
  EXPECT_PARSE(testing::udp_packet(with_options({1, 1, 1, 0x44}), 1, 2), bad_ip_options);
  Bytes forty(40, 0);
  forty[0] = 7;
  forty[1] = 41;
  forty[2] = 4;
  EXPECT_PARSE(testing::tcp_packet(with_options(forty), 1, 2, tcp_flag::syn), bad_ip_options);
  // The walk goes on after a good option.
  EXPECT_PARSE(testing::udp_packet(with_options({0x94, 4, 0, 0, 1, 0x9e, 4, 0}), 1, 2), bad_ip_options);
}

TEST(ParseReject, RecordRouteAndTimestampPointersBelowTheirMinimum) {
  // RFC 791: the smallest legal pointer is 4 (record route) and 5
  // (timestamp); the option must have room for it.
  EXPECT_PARSE(testing::udp_packet(with_options({7, 7, 3, 0, 0, 0, 0, 0}), 1, 2), bad_ip_options);
  EXPECT_PARSE(testing::udp_packet(with_options({7, 2, 1, 0}), 1, 2), bad_ip_options);
  EXPECT_PARSE(testing::udp_packet(with_options({68, 8, 4, 0, 0, 0, 0, 0}), 1, 2), bad_ip_options);
  EXPECT_PARSE(testing::udp_packet(with_options({68, 3, 5, 0}), 1, 2), bad_ip_options);
}

TEST(ParseReject, SourceRoutedPacket) {
  // RFC 7126 sections 4.3 and 4.4: loose and strict source routes are dropped
  // by default; behind a NAT the listed hops are untranslated addresses.
  const Bytes lsrr = {131, 7, 4, 203, 0, 113, 1, 0};
  const Bytes ssrr = {1, 137, 7, 4, 203, 0, 113, 1};
  EXPECT_PARSE(testing::udp_packet(with_options(lsrr), 1, 2), source_route);
  EXPECT_PARSE(testing::tcp_packet(with_options(ssrr), 1, 2, tcp_flag::syn), source_route);
  // Malformed first: a source route that overruns the header.
  EXPECT_PARSE(testing::udp_packet(with_options({131, 11, 4, 203, 0, 113, 1, 0}), 1, 2), bad_ip_options);
}

TEST(ParseReject, MartianSource) {
  // RFC 1812 section 5.3.7: this network (0/8), loopback (127/8), multicast
  // (224/4), class E and the limited broadcast (240/4) are never a source a
  // router forwards.
  for (const be32 a : {ipv4(0, 0, 0, 0), ipv4(0, 1, 2, 3), ipv4(127, 0, 0, 1), ipv4(127, 255, 255, 255),
                       ipv4(224, 0, 0, 1), ipv4(239, 255, 255, 255), ipv4(240, 0, 0, 1),
                       ipv4(255, 255, 255, 255)}) {
    EXPECT_PARSE(testing::udp_packet(fields(a, kServer), 1, 2), martian_source) << a.host();
    EXPECT_PARSE(testing::tcp_packet(fields(a, kInside), 1, 2, tcp_flag::syn), martian_source) << a.host();
  }
}

TEST(ParseReject, MartianDestination) {
  // RFC 1812 section 5.3.7: nothing is forwarded to 0/8 or 127/8.
  for (const be32 a : {ipv4(0, 0, 0, 0), ipv4(0, 255, 0, 1), ipv4(127, 0, 0, 1), ipv4(127, 1, 2, 3)})
    EXPECT_PARSE(testing::udp_packet(fields(kInside, a), 1, 2), martian_destination) << a.host();
}

// Sets the UDP length of an unfragmented packet without options.
Bytes with_udp_length(Bytes p, std::uint16_t length) {
  p[20 + 4] = static_cast<std::uint8_t>(length >> 8);
  p[20 + 5] = static_cast<std::uint8_t>(length);
  return p;
}

TEST(ParseReject, UdpLengthBelowTheHeader) {
  const Bytes p = testing::udp_packet(fields(), 1, 2, Bytes(16, 0), true);
  EXPECT_PARSE(with_udp_length(p, 0), bad_udp_length);
  EXPECT_PARSE(with_udp_length(p, 7), bad_udp_length);
}

TEST(ParseReject, UdpLengthBeyondTheIpPayload) {
  // RFC 768: the length covers header and data; more than the IP datagram
  // carries would make the receiver read past it.
  const Bytes p = testing::udp_packet(fields(), 1, 2, Bytes(16, 0), true);
  EXPECT_PARSE(with_udp_length(p, 25), bad_udp_length);
  EXPECT_PARSE(with_udp_length(p, 0xffff), bad_udp_length);
  // Ethernet padding after the datagram does not count as UDP data.
  Bytes padded = with_udp_length(p, 40);
  padded.resize(60, 0);
  EXPECT_PARSE(padded, bad_udp_length);
}

TEST(ParseReject, FirstFragmentUdpLengthImpossible) {
  IpFields f = fields();
  f.more_fragments = true;
  // Below the header, and more than any IPv4 datagram can hold after a
  // 20-byte header (65535 - 20 = 65515).
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes{0, 1, 0, 2, 0, 7, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, f), bad_udp_length);
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes{0, 1, 0, 2, 0xff, 0xec, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, f),
               bad_udp_length);
}

TEST(ParseReject, FragmentDataNotAMultipleOfEight) {
  // RFC 791: offsets count 8-octet units, so every fragment but the last
  // carries a multiple of 8 octets.
  IpFields f = fields();
  f.more_fragments = true;
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes{0, 1, 0, 2, 0, 100, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, f),
               bad_fragment_length);
  EXPECT_PARSE(raw_packet(89, Bytes(9, 0), f), bad_fragment_length);
  f.fragment_offset_bytes = 400;
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes(100, 0), f), bad_fragment_length);
}

TEST(ParseReject, EmptyFragment) {
  // A fragment that carries nothing (Linux discards it too).
  IpFields f = fields();
  f.fragment_offset_bytes = 400;
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes{}, f), bad_fragment_length);
  f = fields();
  f.more_fragments = true;
  EXPECT_PARSE(raw_packet(89, Bytes{}, f), bad_fragment_length);
}

TEST(ParseReject, PingOfDeathFragmentBeyond65535) {
  // Offset plus length past the largest datagram: reassembly would
  // overflow (the "ping of death").
  IpFields f = fields();
  f.fragment_offset_bytes = 65512;
  EXPECT_PARSE(raw_packet(ip_proto::icmp, Bytes(4, 0), f), oversized_fragment);
  f.fragment_offset_bytes = 65528;
  EXPECT_PARSE(raw_packet(ip_proto::icmp, Bytes(8, 0), f), oversized_fragment);
  f.more_fragments = true;
  EXPECT_PARSE(raw_packet(ip_proto::icmp, Bytes(8, 0), f), oversized_fragment);
}

TEST(ParseReject, TcpFragmentAtOffsetEightOverlapsTheHeader) {
  // RFC 1858 section 3.2: a TCP fragment at offset 8 rewrites the flags and
  // data offset of the first fragment on reassembly, after the NAT and any
  // filter judged the first one.
  IpFields f = fields();
  f.fragment_offset_bytes = 8;
  EXPECT_PARSE(raw_packet(ip_proto::tcp, Bytes(12, 0), f), tcp_fragment_overlap);
  f.more_fragments = true;
  EXPECT_PARSE(raw_packet(ip_proto::tcp, Bytes(16, 0), f), tcp_fragment_overlap);
  // Other protocols are not concerned: their header is 8 octets at most.
  EXPECT_PARSE(raw_packet(ip_proto::udp, Bytes(16, 0), f), ok);
}

TEST(ParseErrors, EveryErrorHasADistinctNameAndText) {
  std::set<std::string> names, texts;
  for (unsigned i = 0; i < parse_error_count; ++i) {
    const auto e = static_cast<ParseError>(i);
    const std::string name = parse_error_name(e), text = parse_error_text(e);
    EXPECT_NE(name, "unknown");
    EXPECT_NE(text, "unknown");
    names.insert(name);
    texts.insert(text);
  }
  EXPECT_EQ(names.size(), parse_error_count);
  EXPECT_EQ(texts.size(), parse_error_count);
  EXPECT_STREQ(parse_error_name(ParseError::bad_gre), "bad_gre");
  EXPECT_STREQ(parse_error_name(ParseError::count_), "unknown");
}

// --------------------------------------------------------------- bounds

std::vector<Bytes> valid_packets() {
  std::vector<Bytes> v;
  IpFields opt = fields();
  opt.options = {1, 1, 1, 0, 0x94, 4, 0, 0};
  v.push_back(testing::udp_packet(fields(), 1000, 53));
  v.push_back(testing::udp_packet(opt, 1000, 53, Bytes(3, 1), true));
  v.push_back(testing::tcp_packet(fields(), 2000, 80, tcp_flag::syn));
  v.push_back(testing::tcp_packet(opt, 2000, 80, tcp_flag::fin | tcp_flag::ack, Bytes{}));
  v.push_back(testing::icmp_echo(fields(), icmp_type::echo_request, 7, 1));
  v.push_back(testing::icmp_echo(opt, icmp_type::echo_reply, 7, 1, Bytes(1, 0)));
  const Bytes udp = testing::udp_packet(fields(kInside, kServer), 1000, 53);
  const Bytes tcp = testing::tcp_packet(opt, 2000, 80, tcp_flag::syn);
  const Bytes echo = testing::icmp_echo(fields(kInside, kServer), icmp_type::echo_request, 7, 1);
  v.push_back(testing::icmp_error(fields(kServer, kInside), icmp_type::dest_unreachable, 3, udp));
  v.push_back(testing::icmp_error(opt, icmp_type::time_exceeded, 0, tcp, 36));
  v.push_back(testing::icmp_error(fields(kRouter, kInside), icmp_type::time_exceeded, 0, echo));
  v.push_back(testing::esp_packet(fields(), 0x1000, 1));
  v.push_back(testing::gre_packet(fields(), 0, true, 5, true));
  v.push_back(testing::gre_packet(opt, 1, true, 0x00100001, true));
  v.push_back(raw_packet(ip_proto::gre, Bytes{0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 1}));
  v.push_back(raw_packet(ip_proto::gre, Bytes{0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}));
  // Options with pointers (record route, timestamp) and a UDP surplus area.
  IpFields rr = fields();
  rr.options = {7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
  rr.options.resize(28, 0);
  v.push_back(testing::udp_packet(rr, 1000, 53));
  Bytes surplus = testing::udp_packet(fields(), 1000, 53, Bytes(16, 1), true);
  surplus[20 + 5] = 8 + 4;
  v.push_back(surplus);
  for (const Bytes& f : testing::fragment(testing::tcp_packet(fields(), 9, 9, tcp_flag::ack, Bytes(100, 1)), 24))
    v.push_back(f);
  return v;
}

TEST(ParseBounds, ValidPacketsParse) {
  for (const Bytes& p : valid_packets()) EXPECT_EQ(parse(p), ParseError::ok) << testing::checksum_problems(p);
}

// Every prefix of every valid packet, each in its own exactly-sized heap
// buffer: under AddressSanitizer any read past the end is reported. A prefix
// shorter than the total length can never parse.
TEST(ParseBounds, EveryTruncationIsRejectedWithoutOverread) {
  for (const Bytes& p : valid_packets()) {
    for (std::size_t len = 0; len <= p.size(); ++len) {
      const Bytes prefix(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(len));
      ParsedIpv4 r{};
      const ParseError e = parse_ipv4(prefix, r);
      const ParseError e2 = parse_ipv4(prefix, r, ParseOptions{false, false});
      if (len < p.size()) {
        EXPECT_NE(e, ParseError::ok) << "len " << len << " of " << p.size();
        EXPECT_NE(e2, ParseError::ok) << "len " << len << " of " << p.size();
      } else {
        EXPECT_EQ(e, ParseError::ok);
        EXPECT_EQ(e2, ParseError::ok);
      }
      if (len == 0) {
        EXPECT_EQ(e, ParseError::empty);
      }
      if (len > 0 && len < 20) {
        EXPECT_EQ(e, ParseError::truncated_ip_header);
      }
    }
  }
}

// What any accepted packet promises its users (the engine reads at these
// offsets without checking again): every offset and length lies inside the
// packet, and the fragment fields agree with the kind.
void expect_consistent(const ParsedIpv4& r, std::size_t buffer_size, const std::string& where) {
  SCOPED_TRACE(where);
  EXPECT_LE(r.total_length, buffer_size);
  EXPECT_GE(r.ihl_bytes, 20u);
  EXPECT_LE(r.ihl_bytes, 60u);
  EXPECT_LE(r.ihl_bytes, r.total_length);
  EXPECT_EQ(r.kind == L4Kind::later_fragment, !r.first_fragment);
  if (!r.fragmented) {
    EXPECT_TRUE(r.first_fragment);
  }
  if (r.gre_key_offset != 0) {
    EXPECT_EQ(r.kind, L4Kind::gre);
    EXPECT_GE(r.gre_key_offset, r.ihl_bytes + 4u);
    EXPECT_LE(r.gre_key_offset + 4u, r.total_length);
  }
  if (r.kind == L4Kind::icmp_error) {
    const IcmpInner& in = r.inner;
    EXPECT_GE(in.ip_offset, r.ihl_bytes + 8u);  // after the ICMP header
    EXPECT_GE(in.ihl_bytes, 20u);
    EXPECT_EQ(in.l4_offset, in.ip_offset + in.ihl_bytes);
    EXPECT_GE(in.l4_available, 8u);
    EXPECT_LE(in.l4_offset + in.l4_available, r.total_length);
    EXPECT_TRUE(in.kind == L4Kind::tcp || in.kind == L4Kind::udp || in.kind == L4Kind::icmp_query);
  }
}

// Parses `bytes` with and without the checksum checks. The checks only ever
// reject more: what they accept parses without them too, the same way.
ParseError parse_both_ways(const Bytes& bytes, const std::string& where) {
  ParsedIpv4 strict{}, relaxed{};
  const ParseError e = parse_ipv4(bytes, strict);
  const ParseError e_relaxed = parse_ipv4(bytes, relaxed, ParseOptions{false, false});
  if (e == ParseError::ok) {
    EXPECT_EQ(e_relaxed, ParseError::ok) << where;
    EXPECT_EQ(strict.kind, relaxed.kind) << where;
    expect_consistent(strict, bytes.size(), where);
  }
  if (e_relaxed == ParseError::ok) expect_consistent(relaxed, bytes.size(), where);
  return e;
}

// The same with the total length fixed up to the prefix (so the parser goes
// deep into truncated transport and embedded headers), and with every single
// byte of the packet corrupted in turn. Under AddressSanitizer nothing reads
// past the end; whatever parses keeps every offset inside the packet; a
// corrupted byte of the IP header (after the version/IHL byte, which moves
// the header's extent) never passes the header checksum.
TEST(ParseBounds, ConsistentTruncationsAndCorruptionsNeverOverread) {
  for (const Bytes& p : valid_packets()) {
    const std::size_t ihl = (p[0] & 0x0f) * 4u;
    for (std::size_t len = ihl; len <= p.size(); ++len) {
      Bytes prefix(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(len));
      prefix[2] = static_cast<std::uint8_t>(len >> 8);
      prefix[3] = static_cast<std::uint8_t>(len);
      fix_ip_checksum(prefix);
      const ParseError e = parse_both_ways(prefix, "prefix of " + std::to_string(len));
      // The IP header itself is whole and consistent.
      EXPECT_NE(e, ParseError::truncated_ip_header);
      EXPECT_NE(e, ParseError::bad_total_length);
      EXPECT_NE(e, ParseError::bad_ip_checksum);
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
      for (std::uint8_t x : {0x01, 0x0f, 0x10, 0x80, 0xff}) {
        Bytes q = p;
        q[i] ^= x;
        const ParseError e = parse_both_ways(q, "byte " + std::to_string(i) + " ^ " + std::to_string(x));
        if (i >= 1 && i < ihl) {
          EXPECT_NE(e, ParseError::ok) << "header byte " << i << " ^ " << int{x};
        }
      }
    }
  }
}


// ------------------------------------------- through the engine
// Each of these packets was translated before the strict header checks
// (issue 11 point 11); now it is dropped as malformed, counted under its own
// parse error, left byte for byte as it came, and creates no state.

namespace engine_checks {

using nat::Direction;
using nat::Verdict;

const be32 kPublicFirst = ipv4(198, 51, 100, 1);

class StrictHeaders : public ::testing::Test {
 protected:
  void SetUp() override {
    nat::NatConfig c;
    nat::PoolConfig pool;
    pool.name = "cgn";
    pool.subscribers.push_back({ipv4(100, 64, 0, 0), 10});
    pool.public_addresses.push_back({kPublicFirst, ipv4(198, 51, 100, 2)});
    c.pools.push_back(pool);
    c.max_sessions = 1024;
    c.max_subscribers = 64;
    c.random_seed = 7;
    std::vector<std::string> errors;
    engine = nat::Engine::create(c, &errors);
    ASSERT_TRUE(engine) << (errors.empty() ? "" : errors.front());
  }

  // Runs the packet and checks the drop: reason malformed, exactly one count
  // of `error`, the bytes untouched, no new session.
  void expect_dropped(Direction dir, Bytes p, ParseError error) {
    const Bytes before = p;
    const std::size_t sessions = engine->active_sessions();
    const std::uint64_t counted = engine->counters().get(error);
    const nat::Result r = engine->process(dir, p, now_ms);
    EXPECT_EQ(r.verdict, Verdict::drop) << "translated: " << testing::checksum_problems(p);
    EXPECT_EQ(r.reason, stats::DropReason::malformed) << stats::drop_reason_name(r.reason);
    EXPECT_EQ(engine->counters().get(error), counted + 1) << parse_error_name(error);
    EXPECT_EQ(p, before) << "a dropped packet is never rewritten";
    EXPECT_EQ(engine->active_sessions(), sessions);
  }

  std::unique_ptr<nat::Engine> engine;
  std::uint64_t now_ms = 1'000'000;
};

TEST_F(StrictHeaders, UdpLengthBeyondThePayloadIsNotTranslated) {
  // A subscriber's UDP datagram whose length claims 100 bytes more than it
  // carries: a receiver behind the NAT would read past it.
  Bytes p = testing::udp_packet(fields(), 40000, 53, Bytes(16, 1), true);
  p = with_udp_length(p, 8 + 16 + 100);
  expect_dropped(Direction::outbound, p, ParseError::bad_udp_length);
}

TEST_F(StrictHeaders, IpOptionRunningPastTheHeaderIsNotTranslated) {
  expect_dropped(Direction::outbound, testing::udp_packet(with_options({1, 0x94, 8, 0}), 40000, 53),
                 ParseError::bad_ip_options);
  expect_dropped(Direction::outbound, testing::tcp_packet(with_options({0x94, 0, 0, 0}), 40000, 443, tcp_flag::syn),
                 ParseError::bad_ip_options);
}

TEST_F(StrictHeaders, SourceRoutedPacketIsNotTranslated) {
  expect_dropped(Direction::outbound,
                 testing::udp_packet(with_options({131, 7, 4, 192, 0, 2, 99, 0}), 40000, 53),
                 ParseError::source_route);
}

TEST_F(StrictHeaders, MartianSourceAtAMappingIsNotTranslated) {
  // With endpoint-independent filtering any remote may answer a mapping:
  // before the check a packet "from" 127.0.0.1 reached the subscriber.
  Bytes out = testing::udp_packet(fields(), 40000, 53);
  ASSERT_EQ(engine->process(Direction::outbound, out, now_ms).verdict, Verdict::to_outside);
  const be32 pub = testing::ip_src(out);
  const std::uint16_t port = testing::l4_sport(out);
  for (const be32 martian : {ipv4(127, 0, 0, 1), ipv4(0, 0, 0, 0), ipv4(224, 0, 0, 9), ipv4(255, 255, 255, 255)})
    expect_dropped(Direction::inbound, testing::udp_packet(fields(martian, pub), 53, port),
                   ParseError::martian_source);
  // A real remote still gets through.
  Bytes reply = testing::udp_packet(fields(ipv4(192, 0, 2, 7), pub), 53, port);
  EXPECT_EQ(engine->process(Direction::inbound, reply, now_ms).verdict, Verdict::to_inside);
}

TEST_F(StrictHeaders, MartianDestinationIsNotTranslated) {
  expect_dropped(Direction::outbound, testing::udp_packet(fields(kInside, ipv4(127, 0, 0, 1)), 40000, 53),
                 ParseError::martian_destination);
  expect_dropped(Direction::outbound, testing::tcp_packet(fields(kInside, ipv4(0, 1, 2, 3)), 40000, 80, tcp_flag::syn),
                 ParseError::martian_destination);
}

TEST_F(StrictHeaders, OverlappingTcpFragmentIsNotTranslated) {
  // RFC 1858 3.2: the first fragment passes as what it claims to be; the
  // second, at offset 8, would rewrite its data offset and flags on
  // reassembly, after the NAT (and any filter) judged the first.
  IpFields f = fields();
  f.more_fragments = true;
  f.id = 77;
  Bytes first = testing::tcp_packet(f, 40000, 443, tcp_flag::syn, Bytes(4, 0));
  ASSERT_EQ(engine->process(Direction::outbound, first, now_ms).verdict, Verdict::to_outside);
  f.more_fragments = false;
  f.fragment_offset_bytes = 8;
  Bytes overlap = raw_packet(ip_proto::tcp, Bytes(16, 0x02), f);
  expect_dropped(Direction::outbound, overlap, ParseError::tcp_fragment_overlap);
}

TEST_F(StrictHeaders, PingOfDeathFragmentIsNotTranslated) {
  IpFields f = fields(kServer, kPublicFirst);
  f.fragment_offset_bytes = 65528;
  expect_dropped(Direction::inbound, raw_packet(ip_proto::icmp, Bytes(32, 0), f), ParseError::oversized_fragment);
}

}  // namespace engine_checks

}  // namespace
}  // namespace passgate::packet
