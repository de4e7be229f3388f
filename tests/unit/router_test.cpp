// The router's own packets (lib/packet/router.hpp): ICMP errors per RFC 792 /
// RFC 1812 4.3.2 and fragmentation per RFC 791 3.2, checked by parsing and
// full checksum recomputation, and by reassembling the fragments.
#include "packet/router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "packet/headers.hpp"
#include "packet/parse.hpp"
#include "support/packet_builder.hpp"

namespace passgate::testing {
namespace {

using packet::FragmentPlan;

const be32 kSubscriber = ipv4(100, 64, 0, 5), kRemote = ipv4(203, 0, 113, 9), kGateway = ipv4(100, 64, 0, 1);

Bytes payload(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

Bytes set_dont_fragment(Bytes p) {
  p[6] |= 0x40;
  p[10] = p[11] = 0;
  const auto c = packet::internet_checksum(std::span<const std::uint8_t>(p.data(), ihl(p)));
  packet::store(p.data() + 10, c);
  return p;
}

std::vector<Bytes> split(const Bytes& p, std::uint16_t mtu) {
  const FragmentPlan plan = packet::plan_fragments(p, mtu);
  std::vector<Bytes> out;
  for (unsigned i = 0; i < plan.count; ++i) {
    Bytes f(mtu);
    const std::size_t n = packet::write_fragment(p, plan, i, f);
    EXPECT_GT(n, 0u);
    f.resize(n);
    out.push_back(f);
  }
  return out;
}

// Reassembles by offset (RFC 791) and returns header-of-first + data.
Bytes reassemble(const std::vector<Bytes>& frags) {
  std::map<std::size_t, Bytes> pieces;
  Bytes first_header;
  bool saw_last = false;
  for (const Bytes& f : frags) {
    const auto* ip = reinterpret_cast<const packet::Ipv4Header*>(f.data());
    const std::size_t h = ip->header_bytes();
    if (ip->fragment_offset_bytes() == 0) first_header.assign(f.begin(), f.begin() + static_cast<long>(h));
    if (!ip->more_fragments()) saw_last = true;
    pieces[ip->fragment_offset_bytes()] = Bytes(f.begin() + static_cast<long>(h), f.end());
  }
  EXPECT_TRUE(saw_last);
  Bytes data;
  for (const auto& [offset, bytes] : pieces) {
    EXPECT_EQ(offset, data.size()) << "gap or overlap";
    data.insert(data.end(), bytes.begin(), bytes.end());
  }
  Bytes whole = first_header;
  whole.insert(whole.end(), data.begin(), data.end());
  packet::store(whole.data() + 2, be16::from_host(static_cast<std::uint16_t>(whole.size())));
  whole[6] &= 0xc0;  // clear MF and offset
  whole[7] = 0;
  whole[10] = whole[11] = 0;
  packet::store(whole.data() + 10, packet::internet_checksum(std::span<const std::uint8_t>(whole.data(), ihl(whole))));
  return whole;
}

TEST(Fragmentation, Rfc791UdpDatagramSplitsIntoEightByteAlignedPiecesThatReassembleExactly) {
  const Bytes p = udp_packet({kSubscriber, kRemote}, 40000, 53, payload(3000));
  const auto frags = split(p, 1400);
  ASSERT_EQ(frags.size(), 3u);
  for (std::size_t i = 0; i < frags.size(); ++i) {
    EXPECT_LE(frags[i].size(), 1400u);
    EXPECT_EQ(checksum_problems(frags[i]), "") << i;
    const auto* ip = reinterpret_cast<const packet::Ipv4Header*>(frags[i].data());
    EXPECT_EQ(ip->identification.host(), 0x1234);
    EXPECT_EQ(ip->more_fragments(), i + 1 < frags.size());
    if (i + 1 < frags.size()) {
      EXPECT_EQ((frags[i].size() - 20) % 8, 0u);
    }
    packet::ParsedIpv4 parsed;
    EXPECT_EQ(packet::parse_ipv4(frags[i], parsed), packet::ParseError::ok) << i;
  }
  EXPECT_EQ(reassemble(frags), p);
}

TEST(Fragmentation, FitsInOneWhenSmallEnoughAndRefusesDontFragment) {
  const Bytes p = udp_packet({kSubscriber, kRemote}, 40000, 53, payload(1000));
  EXPECT_EQ(packet::plan_fragments(p, 1500).count, 1u);
  EXPECT_EQ(packet::plan_fragments(set_dont_fragment(p), 576).count, 0u);
  EXPECT_EQ(packet::plan_fragments(p, 27).count, 0u) << "fewer than 8 data bytes per fragment";
}

TEST(Fragmentation, Rfc791OnlyCopiedOptionsRepeatInLaterFragments) {
  IpFields f{kSubscriber, kRemote};
  // Record Route (7, not copied, 7 bytes + pad) and a copied option 0x82 (4 bytes).
  f.options = {7, 7, 4, 0, 0, 0, 0, 1, 0x82, 4, 0xaa, 0xbb};
  const Bytes p = udp_packet(f, 1, 2, payload(1200));
  const auto frags = split(p, 600);
  ASSERT_GE(frags.size(), 3u);
  EXPECT_EQ(ihl(frags[0]), 32u);
  for (std::size_t i = 1; i < frags.size(); ++i) {
    ASSERT_EQ(ihl(frags[i]), 24u) << i;
    EXPECT_EQ(frags[i][20], 0x82);
    EXPECT_EQ(checksum_problems(frags[i]), "") << i;
  }
  EXPECT_EQ(reassemble(frags), p);
}

TEST(Fragmentation, Rfc791AFragmentSplitAgainKeepsItsOffsetAndMoreFragmentsFlag) {
  const Bytes p = udp_packet({kSubscriber, kRemote}, 40000, 53, payload(4000));
  const auto first_pass = split(p, 2000);  // 3 fragments
  ASSERT_EQ(first_pass.size(), 3u);
  std::vector<Bytes> second_pass;
  for (const Bytes& f : first_pass)
    for (const Bytes& g : split(f, 576)) second_pass.push_back(g);
  EXPECT_GT(second_pass.size(), 6u);
  // Only the very last piece has More Fragments clear.
  unsigned last = 0;
  for (const Bytes& g : second_pass) last += (g[6] & 0x20) == 0;
  EXPECT_EQ(last, 1u);
  EXPECT_EQ(reassemble(second_pass), p);
}

TEST(IcmpError, Rfc1812TimeExceededQuotesThePacketAndFitsIn576Bytes) {
  const Bytes offending = udp_packet({kSubscriber, kRemote, 1}, 33434, 33434, payload(1200));
  Bytes out(2048);
  const std::size_t n = packet::write_icmp_error(offending, kGateway, packet::icmp_type::time_exceeded,
                                                 packet::icmp_code::ttl_exceeded_in_transit, 0, 7, out);
  ASSERT_EQ(n, 576u);
  out.resize(n);
  EXPECT_EQ(ip_src(out), kGateway);
  EXPECT_EQ(ip_dst(out), kSubscriber);
  EXPECT_EQ(checksum_problems(out), "");
  packet::ParsedIpv4 parsed;
  ASSERT_EQ(packet::parse_ipv4(out, parsed), packet::ParseError::ok);
  EXPECT_EQ(parsed.kind, packet::L4Kind::icmp_error);
  EXPECT_EQ(parsed.icmp_type, packet::icmp_type::time_exceeded);
  EXPECT_TRUE(std::equal(offending.begin(), offending.begin() + 548, out.begin() + 28));
}

TEST(IcmpError, Rfc1191FragmentationNeededCarriesTheNextHopMtu) {
  const Bytes offending = set_dont_fragment(tcp_packet({kRemote, kSubscriber}, 443, 40000, 0x10, payload(1400)));
  Bytes out(600);
  const std::size_t n = packet::write_icmp_error(offending, ipv4(198, 51, 100, 1), packet::icmp_type::dest_unreachable,
                                                 packet::icmp_code::fragmentation_needed, 1280, 7, out);
  ASSERT_GT(n, 28u + 20u + 8u);
  out.resize(n);
  EXPECT_EQ(out[20], 3);
  EXPECT_EQ(out[21], 4);
  EXPECT_EQ(out[26], 1280 >> 8);
  EXPECT_EQ(out[27], 1280 & 0xff);
  EXPECT_EQ(ip_dst(out), kRemote);
  EXPECT_EQ(checksum_problems(out), "");
}

TEST(IcmpError, Rfc1812NeverAboutErrorsLaterFragmentsBroadcastOrMartians) {
  const Bytes udp = udp_packet({kSubscriber, kRemote}, 1, 2);
  EXPECT_TRUE(packet::may_send_icmp_error(udp));
  EXPECT_TRUE(packet::may_send_icmp_error(icmp_echo({kSubscriber, kRemote}, packet::icmp_type::echo_request, 1, 1)));
  EXPECT_FALSE(packet::may_send_icmp_error(icmp_error({kRemote, kSubscriber}, 3, 1, udp)));
  EXPECT_FALSE(packet::may_send_icmp_error(icmp_error({kRemote, kSubscriber}, 11, 0, udp)));
  const Bytes p = udp_packet({kSubscriber, kRemote}, 1, 2, payload(100));
  const auto frags = fragment(p, 48);
  EXPECT_TRUE(packet::may_send_icmp_error(frags.front()));
  EXPECT_FALSE(packet::may_send_icmp_error(frags.back()));
  EXPECT_FALSE(packet::may_send_icmp_error(udp_packet({kSubscriber, ipv4(224, 0, 0, 5)}, 1, 2)));
  EXPECT_FALSE(packet::may_send_icmp_error(udp_packet({kSubscriber, ipv4(255, 255, 255, 255)}, 1, 2)));
  EXPECT_FALSE(packet::may_send_icmp_error(udp_packet({ipv4(0, 0, 0, 0), kRemote}, 68, 67)));
  EXPECT_FALSE(packet::may_send_icmp_error(udp_packet({ipv4(127, 0, 0, 1), kRemote}, 1, 2)));
}

TEST(Martians, Rfc1812Section537SourceAddressClasses) {
  for (const be32 a : {ipv4(0, 1, 2, 3), ipv4(127, 0, 0, 1), ipv4(224, 0, 0, 1), ipv4(239, 1, 1, 1),
                       ipv4(240, 0, 0, 1), ipv4(255, 255, 255, 255)})
    EXPECT_TRUE(packet::is_martian_source(a)) << a.host();
  for (const be32 a : {ipv4(1, 0, 0, 0), ipv4(100, 64, 0, 1), ipv4(126, 255, 255, 255), ipv4(223, 255, 255, 255)})
    EXPECT_FALSE(packet::is_martian_source(a)) << a.host();
  EXPECT_TRUE(packet::is_broadcast_or_multicast(ipv4(224, 0, 0, 251)));
  EXPECT_TRUE(packet::is_broadcast_or_multicast(ipv4(255, 255, 255, 255)));
  EXPECT_FALSE(packet::is_broadcast_or_multicast(ipv4(203, 0, 113, 255)));
}

}  // namespace
}  // namespace passgate::testing
