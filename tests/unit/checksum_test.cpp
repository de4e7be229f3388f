// Internet checksum (RFC 1071) and its incremental update (RFC 1624), checked
// against an independent big-endian reference sum and against packets rebuilt
// from scratch by tests/support/packet_builder (full recomputation).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "packet/byte_order.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "support/packet_builder.hpp"

namespace passgate::packet {
namespace {

using testing::Bytes;
using testing::IpFields;

// Plain RFC 1071 sum over big-endian 16-bit words, written independently of
// checksum.hpp: the value as a host number, folded, never complemented.
std::uint16_t reference_sum(const std::uint8_t* data, std::size_t len, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < len; i += 2) sum += static_cast<std::uint32_t>((data[i] << 8) | data[i + 1]);
  if (len & 1) sum += static_cast<std::uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

IpFields fields(be32 src, be32 dst) {
  IpFields f;
  f.src = src;
  f.dst = dst;
  return f;
}

be32 random_address(std::mt19937& rng) { return be32::from_host(static_cast<std::uint32_t>(rng())); }
std::uint16_t random_port(std::mt19937& rng) { return static_cast<std::uint16_t>(1 + rng() % 65535); }
Bytes random_payload(std::mt19937& rng, std::size_t max_len) {
  Bytes b(rng() % (max_len + 1));
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

be16 get_be16(const Bytes& p, std::size_t off) { return load<be16>(&p[off]); }
void put_be16(Bytes& p, std::size_t off, be16 v) { store(&p[off], v); }

// ------------------------------------------------------------ byte order

TEST(ByteOrder, Be16Be32HoldWireBytes) {
  const be16 a = be16::from_host(0x1234);
  const auto* ab = reinterpret_cast<const std::uint8_t*>(&a.raw);
  EXPECT_EQ(ab[0], 0x12);
  EXPECT_EQ(ab[1], 0x34);
  EXPECT_EQ(a.host(), 0x1234);
  const be32 b = ipv4(192, 0, 2, 1);
  const auto* bb = reinterpret_cast<const std::uint8_t*>(&b.raw);
  EXPECT_EQ(bb[0], 192);
  EXPECT_EQ(bb[1], 0);
  EXPECT_EQ(bb[2], 2);
  EXPECT_EQ(bb[3], 1);
  EXPECT_EQ(b.host(), 0xc0000201u);
  static_assert(byteswap32(0x01020304u) == 0x04030201u);
  static_assert(byteswap16(0x0102) == 0x0201);
}

TEST(ByteOrder, UnalignedLoadStoreRoundTrip) {
  std::uint8_t buf[11] = {};
  store(buf + 1, be32::from_host(0xdeadbeef));
  store(buf + 7, be16::from_host(0xcafe));
  EXPECT_EQ(buf[1], 0xde);
  EXPECT_EQ(buf[4], 0xef);
  EXPECT_EQ(buf[7], 0xca);
  EXPECT_EQ(load<be32>(buf + 1).host(), 0xdeadbeefu);
  EXPECT_EQ(load<be16>(buf + 7).host(), 0xcafe);
}

// -------------------------------------------------------------- RFC 1071

// RFC 1071 section 3, "Numerical Examples": the bytes 00 01 f2 03 f4 f5 f6 f7
// sum (with end-around carry) to ddf2, so the checksum is ~ddf2 = 220d.
TEST(Rfc1071, NumericalExampleFromSection3) {
  const std::uint8_t bytes[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  const std::uint16_t folded = fold(ones_sum(bytes));
  EXPECT_EQ(be16{folded}.host(), 0xddf2);
  EXPECT_EQ(internet_checksum(bytes).host(), 0x220d);
  // Byte-order independence (RFC 1071 section 2(B)): the sum of the swapped
  // words is the swapped sum.
  EXPECT_EQ(folded, 0xf2dd);
}

TEST(Rfc1071, OddLengthIsPaddedWithZero) {
  const std::uint8_t odd[] = {0x12, 0x34, 0x56};
  const std::uint8_t padded[] = {0x12, 0x34, 0x56, 0x00};
  EXPECT_EQ(internet_checksum(odd), internet_checksum(padded));
  EXPECT_EQ(internet_checksum(odd).host(), static_cast<std::uint16_t>(~(0x1234 + 0x5600)));
}

TEST(Rfc1071, EmptyAndAllZero) {
  EXPECT_EQ(internet_checksum(std::span<const std::uint8_t>{}).host(), 0xffff);
  const std::uint8_t zeros[6] = {};
  EXPECT_EQ(internet_checksum(zeros).host(), 0xffff);
}

TEST(Rfc1071, MatchesReferenceSumOnRandomBuffers) {
  std::mt19937 rng(1071);
  for (int iter = 0; iter < 5000; ++iter) {
    const Bytes b = random_payload(rng, 200);
    const std::uint32_t initial_host = rng() & 0xffffff;
    // ones_sum takes its initial value in memory order: use a swapped word.
    const std::uint64_t initial_raw = byteswap16(static_cast<std::uint16_t>(initial_host & 0xffff)) +
                                      std::uint64_t{byteswap16(static_cast<std::uint16_t>(initial_host >> 16))};
    const std::uint16_t want = reference_sum(b.data(), b.size(), initial_host);
    EXPECT_EQ(be16{fold(ones_sum(b, initial_raw))}.host(), want) << "len " << b.size();
    EXPECT_EQ(internet_checksum(b, initial_raw).host(), static_cast<std::uint16_t>(~want));
  }
}

TEST(Rfc1071, InsertedChecksumVerifies) {
  std::mt19937 rng(1);
  for (int iter = 0; iter < 1000; ++iter) {
    Bytes b = random_payload(rng, 100);
    b.resize(std::max<std::size_t>(b.size(), 4));
    b[2] = b[3] = 0;
    put_be16(b, 2, internet_checksum(b));
    EXPECT_EQ(fold(ones_sum(b)), 0xffff);
    EXPECT_EQ(internet_checksum(b).raw, 0);
  }
}

// RFC 768 / RFC 9293 pseudo-header: source, destination, zero + protocol, length.
TEST(Rfc768, PseudoHeaderSumMatchesReference) {
  std::mt19937 rng(768);
  for (int iter = 0; iter < 1000; ++iter) {
    const be32 src = random_address(rng), dst = random_address(rng);
    const std::uint8_t proto = static_cast<std::uint8_t>(rng());
    const std::uint16_t len = static_cast<std::uint16_t>(rng());
    std::uint8_t pseudo[12];
    store(pseudo, src);
    store(pseudo + 4, dst);
    pseudo[8] = 0;
    pseudo[9] = proto;
    store(pseudo + 10, be16::from_host(len));
    EXPECT_EQ(be16{fold(pseudo_header_sum(src, dst, proto, len))}.host(), reference_sum(pseudo, 12));
  }
}

TEST(Rfc768, UdpChecksumOfBuiltPacketVerifiesWithLibrarySum) {
  const Bytes p = testing::udp_packet(fields(ipv4(10, 0, 0, 1), ipv4(192, 0, 2, 7)), 1234, 53, Bytes(13, 0x77));
  const std::span<const std::uint8_t> l4(p.data() + 20, p.size() - 20);
  EXPECT_EQ(fold(ones_sum(l4, pseudo_header_sum(ipv4(10, 0, 0, 1), ipv4(192, 0, 2, 7), ip_proto::udp,
                                                 static_cast<std::uint16_t>(l4.size())))),
            0xffff);
}

// -------------------------------------------------------------- RFC 1624

// RFC 1624 section 4 (the example): HC = dd2f, a field m = 5555 becomes
// m' = 3285. Eqn. 3 gives HC' = 0000 (eqn. 2 would give the wrong ffff).
TEST(Rfc1624, Section4ExampleGivesZeroNotFfff) {
  ChecksumDelta d;
  d.add(be16::from_host(0x5555), be16::from_host(0x3285));
  EXPECT_EQ(d.apply(be16::from_host(0xdd2f)).host(), 0x0000);
  // As a UDP checksum (RFC 768), a computed zero goes out as ffff.
  EXPECT_EQ(d.apply_udp(be16::from_host(0xdd2f)).host(), 0xffff);
}

TEST(Rfc1624, EmptyDeltaLeavesChecksumAlone) {
  const ChecksumDelta none;
  for (std::uint32_t c = 0; c < 0xffff; c += 0x101) EXPECT_EQ(none.apply(be16{static_cast<std::uint16_t>(c)}).raw, c);
  ChecksumDelta same;
  same.add(be16::from_host(0x1234), be16::from_host(0x1234)).add(ipv4(1, 2, 3, 4), ipv4(1, 2, 3, 4));
  for (std::uint32_t c = 0; c < 0xffff; c += 0x101) EXPECT_EQ(same.apply(be16{static_cast<std::uint16_t>(c)}).raw, c);
}

enum class L4 { udp, tcp, icmp };

Bytes build(L4 kind, be32 src, be32 dst, std::uint16_t sport, std::uint16_t dport, const Bytes& payload) {
  switch (kind) {
    case L4::udp: return testing::udp_packet(fields(src, dst), sport, dport, payload);
    case L4::tcp: return testing::tcp_packet(fields(src, dst), sport, dport, tcp_flag::ack, payload, 77, 88);
    case L4::icmp: return testing::icmp_echo(fields(src, dst), icmp_type::echo_request, sport, 9, payload);
  }
  return {};
}
std::size_t checksum_offset(L4 kind) { return kind == L4::udp ? 6 : kind == L4::tcp ? 16 : 2; }
std::size_t sport_offset(L4 kind) { return kind == L4::icmp ? 4 : 0; }

// RFC 1624: rewrite a 32-bit field (source address, covered by the IPv4
// header and by the TCP/UDP pseudo-header) and a 16-bit field (source port or
// ICMP identifier) of many random packets with one delta each, and compare
// byte for byte with the packet built from scratch with the new values.
TEST(Rfc1624, Incremental16And32BitUpdateEqualsFullRecomputation) {
  std::mt19937 rng(1624);
  int compared = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const L4 kind = static_cast<L4>(iter % 3);
    const be32 src = random_address(rng), dst = random_address(rng), new_src = random_address(rng);
    const std::uint16_t sport = random_port(rng), dport = random_port(rng), new_sport = random_port(rng);
    const Bytes payload = random_payload(rng, 64);
    Bytes p = build(kind, src, dst, sport, dport, payload);
    const Bytes want = build(kind, new_src, dst, new_sport, dport, payload);
    ASSERT_EQ(testing::checksum_problems(p), "");
    ASSERT_EQ(testing::checksum_problems(want), "");

    ChecksumDelta ip_delta;
    ip_delta.add(src, new_src);  // 32-bit field
    ChecksumDelta l4_delta;
    if (kind != L4::icmp) l4_delta = ip_delta;  // pseudo-header
    l4_delta.add(be16::from_host(sport), be16::from_host(new_sport));  // 16-bit field

    store(&p[12], new_src);
    put_be16(p, 10, ip_delta.apply(get_be16(p, 10)));
    store(&p[20 + sport_offset(kind)], be16::from_host(new_sport));
    const std::size_t c = 20 + checksum_offset(kind);
    put_be16(p, c, kind == L4::udp ? l4_delta.apply_udp(get_be16(p, c)) : l4_delta.apply(get_be16(p, c)));

    EXPECT_EQ(testing::checksum_problems(p), "") << "iteration " << iter;
    EXPECT_EQ(p, want) << "iteration " << iter;
    ++compared;
  }
  EXPECT_EQ(compared, 3000);
}

// The same with the 32-bit add() against two 16-bit adds, and deltas summed
// with add(ChecksumDelta): all are one's complement sums, so they must agree.
TEST(Rfc1624, DeltaCompositionIsTheSameSum) {
  std::mt19937 rng(16241);
  for (int iter = 0; iter < 5000; ++iter) {
    const be32 a = random_address(rng), b = random_address(rng);
    const be16 c = be16{static_cast<std::uint16_t>(rng())}, d = be16{static_cast<std::uint16_t>(rng())};
    ChecksumDelta whole;
    whole.add(a, b).add(c, d);
    ChecksumDelta halves;
    halves.add(be16{static_cast<std::uint16_t>(a.raw >> 16)}, be16{static_cast<std::uint16_t>(b.raw >> 16)});
    halves.add(be16{static_cast<std::uint16_t>(a.raw)}, be16{static_cast<std::uint16_t>(b.raw)});
    ChecksumDelta port;
    port.add(c, d);
    halves.add(port);
    const be16 hc{static_cast<std::uint16_t>(rng() % 0xffff)};  // any checksum but ffff (-0)
    EXPECT_EQ(whole.apply(hc), halves.apply(hc));
    EXPECT_EQ(fold(std::uint64_t{whole.folded()}) % 0xffff, fold(std::uint64_t{halves.folded()}) % 0xffff);
  }
}

// Recompute a random 20-byte header's checksum directly after a random
// rewrite of its 16- and 32-bit fields: RFC 1624 eqn. 3 gives exactly the
// value a full recomputation gives (no ffff/0000 ambiguity for real headers).
TEST(Rfc1624, RandomHeaderFieldRewritesMatchRecomputation) {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 20000; ++iter) {
    std::uint8_t h[20];
    for (auto& x : h) x = static_cast<std::uint8_t>(rng());
    h[0] = 0x45;
    store(h + 10, be16{0});
    store(h + 10, internet_checksum(h));
    ChecksumDelta d;
    for (int k = static_cast<int>(rng() % 4); k >= 0; --k) {
      if (rng() & 1) {
        const std::size_t off = 12 + 4 * (rng() % 2);
        const be32 from = load<be32>(h + off), to = random_address(rng);
        store(h + off, to);
        d.add(from, to);
      } else {
        std::size_t off = 2 * (rng() % 10);
        if (off == 10) off = 8;  // not the checksum field itself
        const be16 from = load<be16>(h + off), to{static_cast<std::uint16_t>(rng())};
        store(h + off, to);
        d.add(from, to);
      }
    }
    const be16 incremental = d.apply(load<be16>(h + 10));
    store(h + 10, be16{0});
    const be16 full = internet_checksum(h);
    EXPECT_EQ(incremental, full) << "iteration " << iter;
    EXPECT_EQ(static_cast<std::uint16_t>(~reference_sum(h, 20)), full.host());
  }
}

TEST(Rfc1624, InverseUndoesTheDelta) {
  std::mt19937 rng(4);
  for (int iter = 0; iter < 20000; ++iter) {
    ChecksumDelta d;
    for (int k = static_cast<int>(rng() % 3); k >= 0; --k) d.add(random_address(rng), random_address(rng));
    if (rng() & 1) d.add(be16{static_cast<std::uint16_t>(rng())}, be16{static_cast<std::uint16_t>(rng())});
    // A checksum field a full computation can produce: anything but ffff.
    const be16 hc{static_cast<std::uint16_t>(rng() % 0xffff)};
    EXPECT_EQ(d.inverse().apply(d.apply(hc)), hc);
    EXPECT_EQ(d.apply(d.inverse().apply(hc)), hc);
    EXPECT_EQ(d.inverse().inverse().folded(), d.folded());
    ChecksumDelta zero = d;
    zero.add(d.inverse());
    EXPECT_EQ(zero.apply(hc), hc);
  }
}

TEST(Rfc1624, InverseRestoresRewrittenPacket) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 500; ++iter) {
    const L4 kind = static_cast<L4>(iter % 3);
    const be32 src = random_address(rng), dst = random_address(rng), new_dst = random_address(rng);
    const std::uint16_t sport = random_port(rng), dport = random_port(rng);
    const Bytes original = build(kind, src, dst, sport, dport, random_payload(rng, 40));
    Bytes p = original;
    ChecksumDelta ip_delta;
    ip_delta.add(dst, new_dst);
    const ChecksumDelta l4_delta = kind == L4::icmp ? ChecksumDelta{} : ip_delta;
    const std::size_t c = 20 + checksum_offset(kind);
    auto rewrite = [&](be32 to, ChecksumDelta ipd, ChecksumDelta l4d) {
      store(&p[16], to);
      put_be16(p, 10, ipd.apply(get_be16(p, 10)));
      put_be16(p, c, kind == L4::udp ? l4d.apply_udp(get_be16(p, c)) : l4d.apply(get_be16(p, c)));
    };
    rewrite(new_dst, ip_delta, l4_delta);
    EXPECT_EQ(testing::checksum_problems(p), "");
    rewrite(dst, ip_delta.inverse(), l4_delta.inverse());
    EXPECT_EQ(testing::checksum_problems(p), "");
    EXPECT_EQ(p, original) << "iteration " << iter;
  }
}

// ------------------------------------------------------- RFC 768 (UDP)

TEST(Rfc768, ApplyUdpKeepsZeroChecksumZero) {
  std::mt19937 rng(6);
  for (int iter = 0; iter < 1000; ++iter) {
    ChecksumDelta d;
    d.add(random_address(rng), random_address(rng)).add(be16{static_cast<std::uint16_t>(rng())}, be16{0});
    EXPECT_EQ(d.apply_udp(be16{0}).raw, 0);
  }
  // And through a whole packet built without a UDP checksum.
  Bytes p = testing::udp_packet(fields(ipv4(10, 1, 1, 1), ipv4(8, 8, 8, 8)), 4000, 53, Bytes(8, 1), true);
  ASSERT_EQ(get_be16(p, 26).raw, 0);
  ChecksumDelta d;
  d.add(ipv4(10, 1, 1, 1), ipv4(198, 51, 100, 1)).add(be16::from_host(4000), be16::from_host(1024));
  put_be16(p, 26, d.apply_udp(get_be16(p, 26)));
  EXPECT_EQ(get_be16(p, 26).raw, 0);
}

TEST(Rfc768, ApplyUdpNeverProducesZeroButFfff) {
  // A delta equal to the checksum cancels it: plain apply gives 0000.
  const ChecksumDelta d(0x1234);
  EXPECT_EQ(d.apply(be16{0x1234}).raw, 0x0000);
  EXPECT_EQ(d.apply_udp(be16{0x1234}).raw, 0xffff);
  std::mt19937 rng(7);
  int zeros_seen = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    const ChecksumDelta r(static_cast<std::uint16_t>(rng()));
    const be16 hc{static_cast<std::uint16_t>(1 + rng() % 0xffff)};
    const be16 plain = r.apply(hc), udp = r.apply_udp(hc);
    EXPECT_NE(udp.raw, 0);
    if (plain.raw == 0) {
      ++zeros_seen;
      EXPECT_EQ(udp.raw, 0xffff);
    } else {
      EXPECT_EQ(udp, plain);
    }
  }
  // Every (delta, checksum) pair landing on zero was turned into ffff.
  for (std::uint32_t c = 1; c <= 0xffff; c += 7) {
    const be16 hc{static_cast<std::uint16_t>(c)};
    const ChecksumDelta cancel(static_cast<std::uint16_t>(c));  // ~hc + hc = ffff
    EXPECT_EQ(cancel.apply_udp(hc).raw, 0xffff);
  }
  EXPECT_GT(zeros_seen, 0);  // the fixed seed does hit the corner
}

// A UDP packet whose real checksum computes to zero is sent with ffff
// (RFC 768); rewriting it and back keeps a verifying checksum.
TEST(Rfc768, PacketWithComputedZeroChecksumSurvivesRewrite) {
  // Search for a payload whose UDP checksum computes to zero (sent as ffff).
  Bytes p;
  for (std::uint32_t x = 0;; ++x) {
    Bytes payload = {static_cast<std::uint8_t>(x >> 8), static_cast<std::uint8_t>(x), 0, 0};
    p = testing::udp_packet(fields(ipv4(10, 0, 0, 9), ipv4(203, 0, 113, 5)), 5000, 6000, payload);
    if (get_be16(p, 26).raw == 0xffff) break;
    ASSERT_LT(x, 0x10000u);
  }
  ChecksumDelta ip;
  ip.add(ipv4(10, 0, 0, 9), ipv4(198, 51, 100, 2));
  ChecksumDelta d = ip;
  d.add(be16::from_host(5000), be16::from_host(1500));
  store(&p[12], ipv4(198, 51, 100, 2));
  put_be16(p, 10, ip.apply(get_be16(p, 10)));
  store(&p[20], be16::from_host(1500));
  put_be16(p, 26, d.apply_udp(get_be16(p, 26)));
  EXPECT_NE(get_be16(p, 26).raw, 0);
  EXPECT_EQ(testing::checksum_problems(p), "");
}

}  // namespace
}  // namespace passgate::packet
