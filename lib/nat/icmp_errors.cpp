// ICMP errors that quote a translated packet (RFC 5508 REQ-3..5, RFC 4787
// REQ-13): the outer address and the quoted header are translated together,
// with every checksum they touch.
#include "nat/engine_internal.hpp"

namespace passgate::nat {

// RFC 5508 section 3: an error arriving from outside quotes a packet we
// sent (source = our public address and port). Restore the outer
// destination and the embedded source, and every checksum on the way. The
// session is not refreshed (RFC 5508 REQ-?; RFC 7857 section 2.3).
Result Engine::Impl::icmp_error_inbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
  const packet::IcmpInner& in = p.inner;
  Proto proto;
  if (!proto_of(in.kind, proto) || in.src != p.dst) return drop(DropReason::icmp_error_no_session);
  const be16 rem_port = proto == Proto::icmp ? be16{0} : in.dst_port;
  const std::uint32_t i = find_out2in(e, hash_in(e, proto, in.src, in.src_port, in.dst, rem_port), proto, in.src,
                                      in.src_port, in.dst, rem_port);
  if (i == no_index) return drop(DropReason::icmp_error_no_session);
  const Session& s = e.sessions_[i];
  rewrite_icmp_error(ip, p, s.out_addr, s.in_addr, in.ip_offset + 12, in.l4_offset + l4_src_port_offset(proto),
                     s.in_port, ChecksumDelta(s.ip_delta).inverse(), ChecksumDelta(s.l4_delta).inverse(), proto,
                     /*outer_src=*/false);
  e.counters_.add(NatCounter::icmp_errors_translated);
  return {Verdict::to_inside, DropReason::none};
}

// An error sent by an inside host about a packet it received from outside:
// the embedded packet's destination is the inside endpoint; give it (and
// the outer source) the public address and port.
Result Engine::Impl::icmp_error_outbound(Engine& e, std::uint8_t* ip, const ParsedIpv4& p) {
  const packet::IcmpInner& in = p.inner;
  Proto proto;
  if (!proto_of(in.kind, proto)) return drop(DropReason::icmp_error_no_session);
  // Issue 11.5: only the inside host a session belongs to may report an
  // error about it; otherwise one subscriber could forge errors (port
  // unreachable, fragmentation needed) into another's connections.
  if (in.dst != p.src) return drop(DropReason::icmp_error_not_sender);
  const be16 rem_port = proto == Proto::icmp ? be16{0} : in.src_port;
  const std::uint32_t i = find_in2out(e, hash_in(e, proto, in.dst, in.dst_port, in.src, rem_port), proto, in.dst,
                                      in.dst_port, in.src, rem_port);
  if (i == no_index) return drop(DropReason::icmp_error_no_session);
  const Session& s = e.sessions_[i];
  rewrite_icmp_error(ip, p, s.in_addr, s.out_addr, in.ip_offset + 16, in.l4_offset + l4_dst_port_offset(proto),
                     s.out_port, ChecksumDelta(s.ip_delta), ChecksumDelta(s.l4_delta), proto, /*outer_src=*/true);
  e.counters_.add(NatCounter::icmp_errors_translated);
  return {Verdict::to_outside, DropReason::none};
}

// Rewrites one address of the outer header (destination inbound, source
// outbound) and the matching address and port of the embedded packet.
void Engine::Impl::rewrite_icmp_error(std::uint8_t* ip, const ParsedIpv4& p, be32 from, be32 to, unsigned inner_addr_off,
  unsigned inner_port_off, be16 new_port, ChecksumDelta inner_ip_delta,
  ChecksumDelta inner_l4_delta, Proto proto, bool outer_src) {
  auto* outer = reinterpret_cast<Ipv4Header*>(ip);
  const packet::IcmpInner& in = p.inner;
  ChecksumDelta icmp;  // everything changed inside the ICMP message

  store(ip + inner_addr_off, to);
  icmp.add(from, to);
  std::uint8_t* inner_csum = ip + in.ip_offset + 10;
  const be16 old_inner_csum = load<be16>(inner_csum);
  const be16 new_inner_csum = inner_ip_delta.apply(old_inner_csum);
  store(inner_csum, new_inner_csum);
  icmp.add(old_inner_csum, new_inner_csum);

  const be16 old_port = load<be16>(ip + inner_port_off);
  store(ip + inner_port_off, new_port);
  icmp.add(old_port, new_port);

  // The embedded transport checksum is updated only where it was quoted.
  const unsigned csum_off = l4_checksum_offset(proto);
  if (in.l4_available >= csum_off + 2) {
    std::uint8_t* l4_csum = ip + in.l4_offset + csum_off;
    const be16 old_l4 = load<be16>(l4_csum);
    const be16 new_l4 = proto == Proto::udp ? inner_l4_delta.apply_udp(old_l4) : inner_l4_delta.apply(old_l4);
    store(l4_csum, new_l4);
    icmp.add(old_l4, new_l4);
  }
  auto* icmp_hdr = reinterpret_cast<IcmpHeader*>(ip + p.ihl_bytes);
  icmp_hdr->checksum = icmp.apply(icmp_hdr->checksum);

  ChecksumDelta outer_delta;
  if (outer_src) {
    outer_delta.add(outer->src, to);
    outer->src = to;
  } else {
    outer_delta.add(outer->dst, to);
    outer->dst = to;
  }
  outer->checksum = outer_delta.apply(outer->checksum);
}

}  // namespace passgate::nat
