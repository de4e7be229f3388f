// The kernel side of a port's exception path (ports[].exception): the
// Linux interface that DPDK's net_tap creates in passgate's network
// namespace, prepared before the tap starts so that nothing leaks while its
// link comes up. Plain Linux (ioctl and /proc/sys), no DPDK.
//
// What it sets, and why:
//   - IPv6 off on the interface: no link-local address, router solicitations
//     or MLD reports for the dataplane to reject;
//   - arp_ignore=8: the kernel never answers ARP; the dataplane answers every
//     request for the port's addresses, so the wire sees one reply, not two;
//   - arp_announce=2: the kernel's own requests name the port's address as
//     sender, the only sender the dataplane lets out (worker_exception.cpp);
//   - arp_notify=1: the kernel announces the address (gratuitous ARP) when
//     the link comes up. Besides telling the neighbours, that first frame is
//     what makes polling the tap cheap: net_tap (DPDK 22.11) skips the read
//     only once its SIGIO count is non-zero, and until the kernel has sent
//     something every empty poll is a readv() (measured here: about 250 ns
//     an empty poll before the first frame, 5 ns after; a ring port 4-6 ns);
//   - the port's address and prefix, so the kernel owns the connected subnet
//     and its sockets (BGP, BFD, SSH) can bind to the port's address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "packet/byte_order.hpp"

namespace passgate::dataplane {

// Empty on success, else what failed (for the start-up error).
std::string prepare_kernel_interface(const std::string& name, packet::be32 address, std::uint8_t prefix_length);

// A data port's own kernel netdev (the `iface=` of net_af_packet or
// net_pcap, in the same namespace): once a kernel interface holds the
// port's address, the kernel would also take that address's traffic on the
// netdev DPDK reads from, answering ARP beside the dataplane (two replies per
// request, seen in exception_e2e) and taking packets twice. arp_ignore=8
// stops the first, rp_filter=1 (strict: the route back is the kernel
// interface) the second, IPv6 off the noise. A PCI port has no such netdev.
std::string quiet_data_interface(const std::string& name);

// The interface's IFF_UP and IFF_RUNNING, or nullopt when it cannot be read
// (gone, or not in this namespace): what a port's link state is for devices
// that cannot report it (net_af_packet forces its link up).
struct LinkFlags {
  bool up = false, running = false;
};
std::optional<LinkFlags> kernel_link_flags(const std::string& name);

}  // namespace passgate::dataplane
