// packet/address_text: one table of accepted and refused spellings per
// reader. The refused rows include what the older readers took: sscanf's
// "%u.%u.%u.%u" (the control core's look-ups until issue 13) read leading
// zeros, a '+' and spaces; inet_aton reads "010" as octal. Every reader here
// refuses them, so `passgatectl subscriber 010.0.0.1` and an IPFIX collector
// "192.168.001.1:4739" are refused like the same text in the file.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "packet/address_text.hpp"

namespace passgate::packet {
namespace {

using text::parse_endpoint;
using text::parse_ipv4;
using text::parse_mac;
using text::parse_port;
using text::parse_prefix;
using text::parse_uint;

template <typename T>
struct Row {
  std::string_view text;
  std::optional<T> expected;  // nullopt: refused
};

template <typename T, typename Parse>
void check(std::initializer_list<Row<T>> rows, Parse parse) {
  for (const Row<T>& row : rows) {
    SCOPED_TRACE("'" + std::string(row.text) + "'");
    const std::optional<T> got = parse(row.text);
    ASSERT_EQ(got.has_value(), row.expected.has_value());
    if (got) EXPECT_TRUE(*got == *row.expected);
  }
}

constexpr std::nullopt_t refused = std::nullopt;

TEST(AddressText, Uint) {
  check<std::uint64_t>({{"0", 0},
                        {"7", 7},
                        {"007", 7},  // a count, not an address: leading zeros are plain decimal
                        {"18446744073709551615", 18446744073709551615u},
                        {"18446744073709551616", refused},
                        {"", refused},
                        {"-1", refused},
                        {"+1", refused},
                        {" 1", refused},
                        {"1 ", refused},
                        {"0x10", refused},
                        {"1e3", refused},
                        {"1_000", refused},
                        {"1,000", refused}},
                       parse_uint);
}

TEST(AddressText, Ipv4) {
  check<be32>({{"0.0.0.0", ipv4(0, 0, 0, 0)},
               {"192.0.2.1", ipv4(192, 0, 2, 1)},
               {"255.255.255.255", ipv4(255, 255, 255, 255)},
               {"10.0.0.10", ipv4(10, 0, 0, 10)},
               {"010.0.0.1", refused},  // octal to inet_aton, decimal to sscanf: refused
               {"192.168.001.1", refused},
               {"10.0.0.00", refused},
               {"256.0.0.1", refused},
               {"1.2.3", refused},
               {"1.2.3.4.5", refused},
               {"1..2.3", refused},
               {"1.2.3.", refused},
               {".1.2.3", refused},
               {"", refused},
               {"+1.2.3.4", refused},
               {" 1.2.3.4", refused},
               {"1.2.3.4 ", refused},
               {"1.2.3.-4", refused},
               {"1.2.3.4x", refused},
               {"1.2.3.4/24", refused},
               {"0x7f.0.0.1", refused},
               {"2130706433", refused},
               {"1000.2.3.4", refused},
               {"localhost", refused},
               {"::1", refused}},
              parse_ipv4);
}

TEST(AddressText, Prefix) {
  check<Ipv4Prefix>({{"100.64.0.0/10", Ipv4Prefix{ipv4(100, 64, 0, 0), 10}},
                     {"0.0.0.0/0", Ipv4Prefix{ipv4(0, 0, 0, 0), 0}},
                     {"192.0.2.1/32", Ipv4Prefix{ipv4(192, 0, 2, 1), 32}},
                     {"100.64.0.1/24", Ipv4Prefix{ipv4(100, 64, 0, 1), 24}},  // host bits: the caller's to judge
                     {"10.0.0.0/08", Ipv4Prefix{ipv4(10, 0, 0, 0), 8}},
                     {"10.0.0.0/33", refused},
                     {"10.0.0.0/100", refused},
                     {"10.0.0.0/", refused},
                     {"10.0.0.0", refused},
                     {"/8", refused},
                     {"10.0.0.0/-8", refused},
                     {"10.0.0.0/8 ", refused},
                     {"010.0.0.0/8", refused},
                     {"10.0.0.0/8/8", refused}},
                    parse_prefix);
}

TEST(AddressText, Mac) {
  check<MacAddress>({{"02:00:00:00:00:0a", MacAddress{{0x02, 0, 0, 0, 0, 0x0a}}},
                     {"02:00:00:AB:cd:Ef", MacAddress{{0x02, 0, 0, 0xab, 0xcd, 0xef}}},
                     {"ff:ff:ff:ff:ff:ff", MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}},
                     {"02-00-00-00-00-0a", refused},
                     {"02:00:00:00:00", refused},
                     {"02:00:00:00:00:0a:0b", refused},
                     {"2:0:0:0:0:a", refused},
                     {"02:00:00:00:00:0g", refused},
                     {"0200.0000.000a", refused},
                     {"", refused}},
                    parse_mac);
}

TEST(AddressText, Port) {
  check<std::uint16_t>({{"1", 1},
                        {"80", 80},
                        {"65535", 65535},
                        {"04739", 4739},
                        {"0", refused},
                        {"65536", refused},
                        {"000080", refused},  // six characters
                        {"", refused},
                        {"-1", refused},
                        {"80x", refused},
                        {"8 0", refused}},
                       parse_port);
}

TEST(AddressText, Endpoint) {
  check<Ipv4Endpoint>({{"192.0.2.10:4739", Ipv4Endpoint{ipv4(192, 0, 2, 10), 4739}},
                       {"0.0.0.0:1", Ipv4Endpoint{ipv4(0, 0, 0, 0), 1}},
                       {"192.168.001.1:4739", refused},  // inet_pton refused it as well
                       {"192.0.2.10:0", refused},
                       {"192.0.2.10:65536", refused},
                       {"192.0.2.10:", refused},
                       {":4739", refused},
                       {"4739", refused},
                       {"192.0.2.10", refused},
                       {"collector:4739", refused},
                       {"[::1]:4739", refused},
                       {"192.0.2.10:4739 ", refused},
                       {"192.0.2.10::4739", refused},
                       {"192.0.2.10:47:39", refused}},
                      parse_endpoint);
}

TEST(AddressText, ToString) {
  EXPECT_EQ(to_string(ipv4(192, 0, 2, 1)), "192.0.2.1");
  EXPECT_EQ(to_string(ipv4(0, 0, 0, 0)), "0.0.0.0");
  EXPECT_EQ(to_string(ipv4(255, 255, 255, 255)), "255.255.255.255");
  EXPECT_EQ(to_string(Ipv4Prefix{ipv4(100, 64, 0, 1), 24}), "100.64.0.0/24") << "the network, not the host";
  EXPECT_EQ(to_string(Ipv4Prefix{ipv4(10, 1, 2, 3), 0}), "0.0.0.0/0");
  EXPECT_EQ(to_string(AddressRange{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 13)}), "198.51.100.10-198.51.100.13");
  EXPECT_EQ(to_string(AddressRange{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 10)}), "198.51.100.10");
  EXPECT_EQ(to_string(Ipv4Endpoint{ipv4(192, 0, 2, 10), 4739}), "192.0.2.10:4739");
  EXPECT_EQ(to_string(MacAddress{{0x02, 0x00, 0x00, 0xab, 0x0c, 0x10}}), "02:00:00:ab:0c:10");
}

// Every text form reads back to the value it came from.
TEST(AddressText, RoundTrip) {
  for (std::uint32_t host : {0u, 1u, 0x0a000001u, 0xc0000201u, 0x7fffffffu, 0xfffffffeu, 0xffffffffu}) {
    const be32 a = be32::from_host(host);
    EXPECT_EQ(parse_ipv4(to_string(a)), std::optional<be32>(a)) << host;
    const Ipv4Endpoint e{a, 65535};
    EXPECT_EQ(parse_endpoint(to_string(e)), std::optional<Ipv4Endpoint>(e)) << host;
  }
  const MacAddress mac{{0x02, 0x1f, 0xa0, 0x00, 0xff, 0x09}};
  EXPECT_EQ(parse_mac(to_string(mac)), std::optional<MacAddress>(mac));
  const Ipv4Prefix p{ipv4(100, 64, 0, 0), 10};
  EXPECT_EQ(parse_prefix(to_string(p)), std::optional<Ipv4Prefix>(p));
}

// One table serves the configuration's refusals and the router's martian
// test (packet::is_martian_source): the blocks it names, and their bounds.
// The packet path's two-compare test and the configuration's table name the
// same blocks, at both ends of every first octet.
TEST(AddressText, FastReservedTestAgreesWithTheTable) {
  for (std::uint32_t octet = 0; octet < 256; ++octet)
    for (const std::uint32_t host : {octet << 24, octet << 24 | 0x00ffffffu})
      EXPECT_EQ(is_reserved_address(be32::from_host(host)), reserved_in(host, host) != nullptr) << "octet " << octet;
}

TEST(AddressText, ReservedBlocks) {
  EXPECT_STREQ(reserved_in(0x7f000001u, 0x7f000001u)->what, "127.0.0.0/8 (loopback, RFC 1122)");
  EXPECT_EQ(reserved_in(0x01000000u, 0x7effffffu), nullptr);
  EXPECT_NE(reserved_in(0x7e000000u, 0x7f000000u), nullptr) << "a range touching a block";
  EXPECT_EQ(reserved_in(0x80000000u, 0xdfffffffu), nullptr);
  EXPECT_STREQ(reserved_in(0xdfffffffu, 0xe0000000u)->what, "224.0.0.0/4 (multicast, RFC 5771)");
  EXPECT_NE(reserved_in(0xffffffffu, 0xffffffffu), nullptr);
  EXPECT_TRUE(is_reserved_address(ipv4(0, 1, 2, 3)));
  EXPECT_FALSE(is_reserved_address(ipv4(1, 0, 0, 0)));
  EXPECT_FALSE(is_reserved_address(ipv4(223, 255, 255, 255)));
  EXPECT_TRUE(is_reserved_address(ipv4(240, 0, 0, 1)));
}

}  // namespace
}  // namespace passgate::packet
