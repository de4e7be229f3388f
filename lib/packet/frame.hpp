// Ethernet framing as a router port sees it: which frames a port takes and
// what they carry, decided from the bytes alone (no DPDK), so the worker's
// first stage (lib/dataplane/worker_receive.cpp) is a table of cases in
// tests/unit/frame_test.cpp.
//
// A port takes a frame in its own VLAN (802.1Q; a tag the NIC stripped into
// the buffer counts as the frame's own) addressed to its MAC, or broadcast
// ARP (RFC 826), or any unicast MAC when promiscuous. Group-addressed IPv4
// is never taken: a router does not translate broadcasts (RFC 1812 5.3.5).
//
// The checks run in one fixed order, and the first that fails names the
// frame's kind: a frame too short for its Ethernet header, a cut-short tag,
// another VLAN, another MAC, then the ethertype, then an IPv4 packet too
// short for its header. The drop counters rely on that order.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace passgate::packet {

inline constexpr unsigned eth_len = 14;
inline constexpr unsigned vlan_len = 4;
inline constexpr std::uint16_t ethertype_ipv4 = 0x0800;
inline constexpr std::uint16_t ethertype_arp = 0x0806;
inline constexpr std::uint16_t ethertype_vlan = 0x8100;

// What classify_frame needs of a port.
struct FramePort {
  std::uint8_t mac[6];
  std::uint16_t vlan = 0;  // 0: untagged
  bool promiscuous = false;
};

enum class FrameKind : std::uint8_t { ipv4, arp, runt, vlan_mismatch, foreign_mac, not_ipv4_or_arp };

struct FrameInfo {
  FrameKind kind;
  std::uint8_t l2_len;  // Ethernet and 802.1Q bytes before the payload (ipv4, arp)
};

// Whether a frame to `dst` (not the port's own MAC) is for the port.
[[nodiscard]] bool other_destination_is_for_port(const std::uint8_t* dst, std::uint16_t ethertype,
                                                 const FramePort& port);

// stripped_vlan: the VLAN id the NIC took out of the frame, 0 if none.
[[nodiscard]] inline FrameInfo classify_frame(std::span<const std::uint8_t> frame, std::uint16_t stripped_vlan,
                                              const FramePort& port) {
  const std::uint8_t* f = frame.data();
  const std::size_t len = frame.size();
  if (len < eth_len) return {FrameKind::runt, 0};
  std::uint16_t type = static_cast<std::uint16_t>((f[12] << 8) | f[13]);
  unsigned l2 = eth_len;
  std::uint16_t vlan = stripped_vlan;
  if (type == ethertype_vlan) {
    if (len < eth_len + vlan_len) return {FrameKind::runt, 0};
    vlan = static_cast<std::uint16_t>(((f[14] << 8) | f[15]) & 0x0fff);
    type = static_cast<std::uint16_t>((f[16] << 8) | f[17]);
    l2 += vlan_len;
  }
  if (vlan != port.vlan) return {FrameKind::vlan_mismatch, 0};
  if (std::memcmp(f, port.mac, 6) != 0) [[unlikely]]
    if (!other_destination_is_for_port(f, type, port)) return {FrameKind::foreign_mac, 0};
  if (type == ethertype_arp) return {FrameKind::arp, static_cast<std::uint8_t>(l2)};
  if (type != ethertype_ipv4) return {FrameKind::not_ipv4_or_arp, 0};
  if (len < l2 + 20) return {FrameKind::runt, 0};
  return {FrameKind::ipv4, static_cast<std::uint8_t>(l2)};
}

}  // namespace passgate::packet
