// Ethernet framing constants shared by the worker's stages.
#pragma once

#include <cstdint>

namespace passgate::dataplane {

inline constexpr unsigned eth_len = 14;
inline constexpr unsigned vlan_len = 4;
inline constexpr std::uint16_t ethertype_ipv4 = 0x0800;
inline constexpr std::uint16_t ethertype_arp = 0x0806;
inline constexpr std::uint16_t ethertype_vlan = 0x8100;

}  // namespace passgate::dataplane
