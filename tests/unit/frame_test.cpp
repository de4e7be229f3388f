// packet::classify_frame: which frames a port takes, and the drop reason of
// the others, case by case in the order the checks run (lib/packet/frame.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "packet/frame.hpp"

namespace passgate::packet {
namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t port_mac[6] = {0x02, 0, 0, 0, 0x10, 0x01};
constexpr std::uint8_t other_mac[6] = {0x02, 0, 0, 0, 0x99, 0x99};
constexpr std::uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr std::uint8_t multicast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x05};

// `total` bytes: Ethernet to `dst` with `ethertype` (inline tag when vlan
// != 0), the rest zero.
Bytes frame(const std::uint8_t* dst, std::uint16_t ethertype, std::uint16_t vlan, std::size_t total) {
  Bytes b(std::max<std::size_t>(total, 18), 0);
  std::copy(dst, dst + 6, b.begin());
  b[6] = 0x02, b[10] = 0x20, b[11] = 0x02;
  std::size_t at = 12;
  if (vlan) {
    b[12] = 0x81, b[13] = 0x00, b[14] = static_cast<std::uint8_t>(vlan >> 8), b[15] = static_cast<std::uint8_t>(vlan);
    at = 16;
  }
  b[at] = static_cast<std::uint8_t>(ethertype >> 8), b[at + 1] = static_cast<std::uint8_t>(ethertype);
  b.resize(total);  // shorter: cut off, as a runt
  return b;
}

struct Case {
  const char* name;
  Bytes bytes;
  std::uint16_t stripped_vlan;
  std::uint16_t port_vlan;
  bool promiscuous;
  FrameKind kind;
  unsigned l2_len;
};

TEST(ClassifyFrame, EveryCase) {
  const Case cases[] = {
      {"untagged IPv4", frame(port_mac, ethertype_ipv4, 0, 34), 0, 0, false, FrameKind::ipv4, 14},
      {"untagged ARP", frame(port_mac, ethertype_arp, 0, 42), 0, 0, false, FrameKind::arp, 14},
      {"inline tag, our VLAN", frame(port_mac, ethertype_ipv4, 10, 38), 0, 10, false, FrameKind::ipv4, 18},
      {"inline tag, another VLAN", frame(port_mac, ethertype_ipv4, 11, 38), 0, 10, false, FrameKind::vlan_mismatch, 0},
      {"untagged on a tagged port", frame(port_mac, ethertype_ipv4, 0, 34), 0, 10, false, FrameKind::vlan_mismatch, 0},
      {"tagged on an untagged port", frame(port_mac, ethertype_ipv4, 10, 38), 0, 0, false, FrameKind::vlan_mismatch, 0},
      {"stripped tag, our VLAN", frame(port_mac, ethertype_ipv4, 0, 34), 10, 10, false, FrameKind::ipv4, 14},
      {"stripped tag, another VLAN", frame(port_mac, ethertype_ipv4, 0, 34), 11, 10, false, FrameKind::vlan_mismatch, 0},
      {"inline tag wins over a stripped one", frame(port_mac, ethertype_ipv4, 10, 38), 11, 10, false, FrameKind::ipv4, 18},
      {"13 bytes", frame(port_mac, ethertype_ipv4, 0, 13), 0, 0, false, FrameKind::runt, 0},
      {"tag cut short (17 bytes)", frame(port_mac, 0, 10, 17), 0, 10, false, FrameKind::runt, 0},
      {"IPv4 header cut short (33 bytes)", frame(port_mac, ethertype_ipv4, 0, 33), 0, 0, false, FrameKind::runt, 0},
      {"tagged IPv4 header cut short (37 bytes)", frame(port_mac, ethertype_ipv4, 10, 37), 0, 10, false, FrameKind::runt, 0},
      {"short ARP is the ARP stage's to judge", frame(port_mac, ethertype_arp, 0, 20), 0, 0, false, FrameKind::arp, 14},
      {"another unicast MAC", frame(other_mac, ethertype_ipv4, 0, 34), 0, 0, false, FrameKind::foreign_mac, 0},
      {"another unicast MAC, promiscuous", frame(other_mac, ethertype_ipv4, 0, 34), 0, 0, true, FrameKind::ipv4, 14},
      {"broadcast ARP", frame(broadcast, ethertype_arp, 0, 42), 0, 0, false, FrameKind::arp, 14},
      {"broadcast IPv4", frame(broadcast, ethertype_ipv4, 0, 34), 0, 0, false, FrameKind::foreign_mac, 0},
      {"broadcast IPv4, promiscuous", frame(broadcast, ethertype_ipv4, 0, 34), 0, 0, true, FrameKind::foreign_mac, 0},
      {"multicast IPv4", frame(multicast, ethertype_ipv4, 0, 34), 0, 0, false, FrameKind::foreign_mac, 0},
      {"multicast ARP", frame(multicast, ethertype_arp, 0, 42), 0, 0, false, FrameKind::foreign_mac, 0},
      {"IPv6", frame(port_mac, 0x86dd, 0, 54), 0, 0, false, FrameKind::not_ipv4_or_arp, 0},
      {"broadcast IPv6", frame(broadcast, 0x86dd, 0, 54), 0, 0, false, FrameKind::foreign_mac, 0},
      // The order: VLAN before MAC, MAC before ethertype, ethertype before length.
      {"another VLAN and another MAC", frame(other_mac, ethertype_ipv4, 11, 38), 0, 10, false, FrameKind::vlan_mismatch, 0},
      {"another MAC and IPv6", frame(other_mac, 0x86dd, 0, 54), 0, 0, false, FrameKind::foreign_mac, 0},
      {"IPv6 too short for IPv4", frame(port_mac, 0x86dd, 0, 20), 0, 0, false, FrameKind::not_ipv4_or_arp, 0},
      {"another VLAN, cut short", frame(port_mac, ethertype_ipv4, 11, 20), 0, 10, false, FrameKind::vlan_mismatch, 0},
  };
  for (const Case& c : cases) {
    FramePort port{{}, c.port_vlan, c.promiscuous};
    std::copy(port_mac, port_mac + 6, port.mac);
    const FrameInfo info = classify_frame(c.bytes, c.stripped_vlan, port);
    EXPECT_EQ(info.kind, c.kind) << c.name;
    if (c.kind == FrameKind::ipv4 || c.kind == FrameKind::arp) {
      EXPECT_EQ(info.l2_len, c.l2_len) << c.name;
    }
  }
}

}  // namespace
}  // namespace passgate::packet
