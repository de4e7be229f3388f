// Which worker owns a packet, from its bytes alone, in a few nanoseconds:
// the software twin of the NIC's RSS (rss_ownership.hpp) plus the rules for
// what RSS cannot steer. A worker that receives a packet it does not own
// hands it to the owner (lib/dataplane), so the result is always correct;
// with RSS programmed as RssSteering says, handoffs are only the cases below.
//
//   inside -> outside   the subscriber's worker (source address), except VPN
//                       tunnels and their control (ESP, GRE, TCP to 1723):
//                       the remote server's worker (worker_of_server of the
//                       destination), where that server's ESP learning,
//                       PPTP calls and GRE tunnels live (they have no ports
//                       to spread them by); and static mappings: the owner
//                       of their public port;
//   outside -> inside   TCP/UDP: the owner of the destination port's comb
//                       (PPTP control replies too: the server's worker took
//                       the connection's port from its own comb); ICMP
//                       queries: of the identifier's; ICMP errors: of the
//                       quoted packet's source port (ours), or for quoted
//                       ESP/GRE the quoted destination's (the server's)
//                       worker; ESP, GRE: the server's (source address)
//                       worker, which RSS cannot know (it hashes the
//                       destination only): a handoff from the public
//                       address's port-less worker; fragments, the first
//                       included: the address's port-less RSS worker, the
//                       rendezvous that sends each to the worker the first
//                       fragment names (fragment_owners.hpp).
// Only ESP, GRE and TCP to 1723 pay the server hash; other packets nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "packet/headers.hpp"
#include "steering/rss_ownership.hpp"

namespace passgate::steering {

struct DispatchRules {
  const RssSteering* rss = nullptr;
};

// Static mappings (port forwards): their inbound packets reach the owner of
// the public port's comb, so their outbound packets must go there too, not
// to the inside host's worker, or each direction would be tracked apart.
// Sorted by (protocol, inside address, inside port); part of the policy.
class StaticEndpoints {
 public:
  void add(std::uint8_t proto, be32 inside, std::uint16_t inside_port, be32 public_addr, std::uint16_t public_port) {
    entries_.push_back({key(proto, inside, inside_port), public_addr, public_port});
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  // The public endpoint of the static mapping holding this inside endpoint.
  [[nodiscard]] bool find(std::uint8_t proto, be32 inside, std::uint16_t port, be32& pub, std::uint16_t& pub_port) const {
    const std::uint64_t k = key(proto, inside, port);
    const auto it = std::lower_bound(entries_.begin(), entries_.end(), k,
                                     [](const Entry& e, std::uint64_t v) { return e.key < v; });
    if (it == entries_.end() || it->key != k) return false;
    pub = it->public_addr;
    pub_port = it->public_port;
    return true;
  }

 private:
  struct Entry {
    std::uint64_t key;
    be32 public_addr;
    std::uint16_t public_port;
  };
  static std::uint64_t key(std::uint8_t proto, be32 a, std::uint16_t port) {
    return (std::uint64_t{proto} << 48) | (std::uint64_t{a.host()} << 16) | port;
  }
  std::vector<Entry> entries_;
};

namespace detail {
inline std::uint16_t load16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
inline be32 load_addr(const std::uint8_t* p) {
  be32 a;
  __builtin_memcpy(&a.raw, p, 4);
  return a;
}
constexpr std::uint8_t proto_icmp = 1, proto_tcp = 6, proto_udp = 17, proto_gre = 47, proto_esp = 50;
constexpr std::uint16_t pptp_port = 1723;
}  // namespace detail

// `ip` is the packet from its IPv4 header. Malformed or truncated packets
// stay with the worker that has them (`self`): its engine drops and counts.
inline unsigned owner_outbound(const DispatchRules& r, std::span<const std::uint8_t> ip, unsigned self,
                               const StaticEndpoints* statics = nullptr) {
  using namespace detail;
  if (ip.size() < 20) return self;
  const unsigned ihl = (ip[0] & 0x0f) * 4u;
  const std::uint8_t proto = ip[9];
  // VPN by the server; every outbound fragment carries it.
  if (proto == proto_esp || proto == proto_gre) return r.rss->worker_of_server(load_addr(&ip[16]));
  const bool ports = (proto == proto_tcp || proto == proto_udp) && ip.size() >= ihl + 4 && (load16(&ip[6]) & 0x1fff) == 0;
  if (ports && proto == proto_tcp && load16(&ip[ihl + 2]) == pptp_port)
    return r.rss->worker_of_server(load_addr(&ip[16]));
  if (ports && statics && !statics->empty()) {
    be32 pub;
    std::uint16_t pub_port;
    if (statics->find(proto, load_addr(&ip[12]), load16(&ip[ihl]), pub, pub_port))
      return r.rss->worker_of_outside(pub, pub_port);
  }
  return r.rss->worker_of_subscriber(load_addr(&ip[12]));
}

// The owner by the transport header, the fragment flags not looked at: for
// an unfragmented packet, and for a first fragment at its rendezvous worker.
inline unsigned owner_inbound_by_transport(const DispatchRules& r, std::span<const std::uint8_t> ip, unsigned self) {
  using namespace detail;
  if (ip.size() < 20) return self;
  const unsigned ihl = (ip[0] & 0x0f) * 4u;
  if (ihl < 20 || ip.size() < ihl) return self;
  const std::uint8_t proto = ip[9];
  const be32 dst = load_addr(&ip[16]);
  // VPN by the server (the source), fragments too: a first fragment at its
  // rendezvous names the server's worker for the whole datagram.
  if (proto == proto_esp || proto == proto_gre) return r.rss->worker_of_server(load_addr(&ip[12]));
  if ((load16(&ip[6]) & 0x1fff) != 0) return r.rss->worker_of_outside_portless(dst);  // no transport header
  const std::uint8_t* l4 = &ip[ihl];
  const std::size_t l4_len = ip.size() - ihl;
  if (proto == proto_tcp || proto == proto_udp) {
    if (l4_len < 4) return self;
    const std::uint16_t sport = load16(l4), dport = load16(l4 + 2);
    // Replies of PPTP control connections come from port 1723 to a port the
    // server's worker took from its own comb: the comb rule already finds it.
    (void)sport;
    return r.rss->worker_of_outside(dst, dport);
  }
  if (proto == proto_icmp) {
    if (l4_len < 8) return self;
    const std::uint8_t type = l4[0];
    if (type == 0 || type == 8 || type == 13 || type == 14)  // echo, timestamp: the identifier
      return r.rss->worker_of_outside(dst, load16(l4 + 4));
    // An error quotes a packet we sent: its source is our public address and
    // port; for ESP and GRE, its destination is the server.
    if (l4_len < 8 + 20) return self;
    const std::uint8_t* inner = l4 + 8;
    const unsigned inner_ihl = (inner[0] & 0x0f) * 4u;
    if (inner_ihl < 20 || l4_len < 8 + inner_ihl + 8) return self;
    const be32 inner_src = load_addr(&inner[12]);
    const std::uint8_t inner_proto = inner[9];
    const std::uint8_t* inner_l4 = inner + inner_ihl;
    if (inner_proto == proto_tcp || inner_proto == proto_udp) return r.rss->worker_of_outside(inner_src, load16(inner_l4));
    if (inner_proto == proto_icmp) return r.rss->worker_of_outside(inner_src, load16(inner_l4 + 4));
    if (inner_proto == proto_esp || inner_proto == proto_gre) return r.rss->worker_of_server(load_addr(&inner[16]));
    return self;
  }
  return self;
}

// The worker that takes an inbound packet first. Fragments (MF set or an
// offset) all meet at the destination's port-less worker, the first one
// too: only it can say where the later ones belong.
inline unsigned owner_inbound(const DispatchRules& r, std::span<const std::uint8_t> ip, unsigned self) {
  if (ip.size() >= 20 && ((ip[6] << 8 | ip[7]) & 0x3fff) != 0) {
    be32 dst;
    __builtin_memcpy(&dst.raw, &ip[16], 4);
    return r.rss->worker_of_outside_portless(dst);
  }
  return owner_inbound_by_transport(r, ip, self);
}

}  // namespace passgate::steering
