// The exception path in a worker (ports[].exception, issue 15): the port's
// kernel interface (gateway_exception.cpp, kernel_interface.hpp) is where a
// routing daemon, sshd and the kernel's own TCP live, so passgate's control
// traffic reaches them while DPDK owns the port.
//
// Theory of operation. The port and its kernel interface share one MAC and
// one address. Each worker owns queue `queue` of the kernel interface as it
// owns that queue of the port, so nothing is shared and nothing locked:
//   port -> kernel  IPv4 to the port's own address that is not an echo
//                   request (answer_echo, worker_l2.cpp), and ARP replies to
//                   the port's address and gratuitous ARP, after the
//                   dataplane learned them (handle_arp): the kernel resolves
//                   its peers from the same replies and never answers ARP
//                   itself. Each passes `allow` (ports[].exception.allow),
//                   then a token bucket per worker and port, loses an inline
//                   802.1Q tag (the kernel interface is untagged), and waits
//                   in a small buffer sent once per loop turn (flush_kernel).
//   kernel -> port  polled once per loop turn (an empty net_tap poll returns
//                   on one compare with the count its SIGIO handler keeps);
//                   only ARP and IPv4
//                   from the port's own address and MAC go out, tagged for
//                   the port's VLAN, with the kernel's own next-hop MAC: the
//                   dataplane does not route them.
// Nothing else ever reaches the kernel: not pool addresses, not the inside's
// packets to the outside port, not another worker's copy of an ARP frame.
#include <rte_arp.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "config/mbuf_budget.hpp"
#include "dataplane/worker.hpp"
#include "packet/frame.hpp"
#include "packet/headers.hpp"

namespace passgate::dataplane {

using packet::eth_len;
using packet::vlan_len;
using stats::PortDrop;

static_assert(ExceptionPath::capacity == config::exception_buffer_mbufs);

bool Worker::take_exception_token(ExceptionPath& x) {
  // Thousandths of a packet, refilled from now_ms: the arithmetic of
  // take_icmp_token, with the port's own rate.
  x.tokens_milli = std::min(x.burst * 1000, x.tokens_milli + (now_ms - x.refilled_ms) * x.rate);
  x.refilled_ms = now_ms;
  if (x.tokens_milli < 1000) return false;
  x.tokens_milli -= 1000;
  return true;
}

void Worker::to_kernel(Side s, rte_mbuf* m, unsigned l2, be32 source) {
  ExceptionPath& x = exception_[index_of(s)];
  if (x.allow.intervals() != 0 && !x.allow.contains(source)) {
    drop(s, m, PortDrop::exception_not_allowed);
    return;
  }
  if (!take_exception_token(x)) {
    drop(s, m, PortDrop::exception_rate_limited);
    return;
  }
  if (l2 == eth_len + vlan_len) {  // an inline tag: the MAC addresses move over it
    auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memmove(frame + vlan_len, frame, 12);
    rte_pktmbuf_adj(m, vlan_len);
  }
  m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
  if (x.count == ExceptionPath::capacity) flush_kernel(s);
  x.mbufs[x.count++] = m;
}

unsigned Worker::flush_kernel(Side s) {
  ExceptionPath& x = exception_[index_of(s)];
  if (x.count == 0) return 0;
  const unsigned count = x.count;
  const std::uint16_t sent =
      rte_eth_tx_burst(*port(s).exception_id, queue, x.mbufs, static_cast<std::uint16_t>(x.count));
  for (unsigned i = sent; i < x.count; ++i) discard(x.mbufs[i]);
  stats::PortCounters& c = counters_of(s);
  c.exception_to_kernel += sent;
  if (sent < x.count) c.add(PortDrop::exception_kernel_full, x.count - sent);
  x.count = 0;
  return count;
}

unsigned Worker::poll_kernel(Side s, rte_mbuf** mbufs, std::uint16_t burst) {
  const std::uint16_t n = rte_eth_rx_burst(*port(s).exception_id, queue, mbufs, burst);
  for (std::uint16_t i = 0; i < n; ++i) from_kernel(s, mbufs[i]);
  return n;
}

// What the kernel may send through the port: ARP and IPv4 as the port
// itself (its address, its MAC), nothing it would forward or make up.
void Worker::from_kernel(Side s, rte_mbuf* m) {
  const PortView& pv = port(s);
  if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
    drop(s, m, PortDrop::multi_segment);
    return;
  }
  auto* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
  const unsigned len = rte_pktmbuf_data_len(m);
  const be32 own = pv.cfg->address;
  bool ours = false;
  if (len >= eth_len + sizeof(rte_arp_hdr) && frame[12] == 0x08 && frame[13] == 0x06) {
    const auto* arp = reinterpret_cast<const rte_arp_hdr*>(frame + eth_len);
    ours = arp->arp_hardware == rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) &&
           arp->arp_protocol == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) && arp->arp_hlen == 6 && arp->arp_plen == 4 &&
           std::memcmp(arp->arp_data.arp_sha.addr_bytes, pv.mac.bytes.data(), 6) == 0 &&
           std::memcmp(&arp->arp_data.arp_sip, &own.raw, 4) == 0;
  } else if (len >= eth_len + sizeof(packet::Ipv4Header) && frame[12] == 0x08 && frame[13] == 0x00) {
    const auto* ip = reinterpret_cast<const packet::Ipv4Header*>(frame + eth_len);
    ours = (frame[eth_len] >> 4) == 4 && ip->src == own;
  }
  if (!ours) {
    drop(s, m, PortDrop::exception_rejected);
    return;
  }
  // The port's MAC as source, whatever MAC the kernel interface took.
  std::memcpy(frame + 6, pv.mac.bytes.data(), 6);
  if (const std::uint16_t vlan = pv.cfg->vlan) {
    // Headroom is RTE_PKTMBUF_HEADROOM in every buffer of the pool: a
    // missing 4 bytes would be a buffer not fit to send.
    auto* tagged = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(m, vlan_len));
    if (!tagged) {
      drop(s, m, PortDrop::exception_rejected);
      return;
    }
    std::memmove(tagged, tagged + vlan_len, 12);
    tagged[12] = 0x81, tagged[13] = 0x00;
    tagged[14] = static_cast<std::uint8_t>(vlan >> 8), tagged[15] = static_cast<std::uint8_t>(vlan);
  }
  counters_of(s).exception_from_kernel++;
  transmit(s, m);
}

}  // namespace passgate::dataplane
