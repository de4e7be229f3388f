#include "packet/frame.hpp"

namespace passgate::packet {

bool other_destination_is_for_port(const std::uint8_t* dst, std::uint16_t ethertype, const FramePort& port) {
  static constexpr std::uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const bool group = (dst[0] & 1u) != 0;  // broadcast or multicast
  if (group) return ethertype == ethertype_arp && std::memcmp(dst, broadcast, 6) == 0;
  return port.promiscuous;
}

}  // namespace passgate::packet
