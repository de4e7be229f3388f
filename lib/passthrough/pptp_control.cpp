// PPTP control messages (RFC 2637) on the TCP 1723 connection: the client's
// Call IDs rewritten towards the server and the server's Peer's Call IDs
// restored towards the client, only on whole messages at the connection's
// message boundaries (a message split across segments is never half
// rewritten). pptp.cpp holds the call and connection state these use.
#include <cstring>

#include "packet/headers.hpp"
#include "passthrough/pptp.hpp"

namespace passgate::passthrough {

using packet::ChecksumDelta;
using packet::Ipv4Header;
using packet::load;
using packet::store;
using table::no_index;

namespace {

constexpr std::uint32_t magic_cookie = 0x1a2b3c4d;
constexpr unsigned header_bytes = 12;  // length, PPTP type, cookie, control type, reserved

enum : std::uint16_t {
  outgoing_call_request = 7,
  outgoing_call_reply = 8,
  incoming_call_reply = 10,
  call_clear_request = 12,
  call_disconnect_notify = 13,
  wan_error_notify = 14,
  set_link_info = 15,
};

// Client -> server messages that carry the client's own Call ID at +12.
bool carries_client_call_id(std::uint16_t type) {
  return type == outgoing_call_request || type == incoming_call_reply || type == call_clear_request ||
         type == call_disconnect_notify;
}
bool opens_call(std::uint16_t type) { return type == outgoing_call_request || type == incoming_call_reply; }

// TCP sequence numbers compare modulo 2^32 (RFC 9293 3.4).
bool seq_after(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) > 0; }

}  // namespace


void PptpTracker::set_field(std::uint8_t* l4, unsigned offset, be16 value, ChecksumDelta& delta) {
  const be16 old = load<be16>(l4 + offset);
  store(l4 + offset, value);
  // The checksum sums 16-bit words from the start of the TCP header; a field
  // at an odd offset straddles two of them, which is the same as swapping
  // its bytes in the sum.
  if (offset & 1u)
    delta.add(be16{packet::byteswap16(old.raw)}, be16{packet::byteswap16(value.raw)});
  else
    delta.add(old, value);
}

void PptpTracker::trim(std::uint8_t* ip, const packet::ParsedIpv4& p, unsigned l4_end) {
  std::uint8_t* l4 = ip + p.ihl_bytes;
  auto* tcp = reinterpret_cast<packet::TcpHeader*>(l4);
  const unsigned old_end = p.total_length - p.ihl_bytes;
  // The cut bytes count as zero padding from now on: take each 16-bit word
  // they touch from its old value to that.
  ChecksumDelta delta;
  for (unsigned w = l4_end & ~1u; w < old_end; w += 2) {
    const std::uint8_t before[2] = {l4[w], w + 1 < old_end ? l4[w + 1] : std::uint8_t{0}};
    const std::uint8_t after[2] = {w < l4_end ? l4[w] : std::uint8_t{0}, 0};
    delta.add(load<be16>(before), load<be16>(after));
  }
  delta.add(be16::from_host(static_cast<std::uint16_t>(old_end)), be16::from_host(static_cast<std::uint16_t>(l4_end)));
  if (tcp->flags & packet::tcp_flag::fin) {  // the FIN's sequence number follows the cut bytes
    const be16 before = load<be16>(l4 + 12);
    tcp->flags = static_cast<std::uint8_t>(tcp->flags & ~packet::tcp_flag::fin);
    delta.add(before, load<be16>(l4 + 12));
  }
  tcp->checksum = delta.apply(tcp->checksum);
  std::memset(l4 + l4_end, 0, old_end - l4_end);
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  const be16 total = be16::from_host(static_cast<std::uint16_t>(p.ihl_bytes + l4_end));
  h->checksum = ChecksumDelta().add(h->total_length, total).apply(h->checksum);
  h->total_length = total;
}

PptpTracker::ControlResult PptpTracker::control_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 in_addr,
                                                         be32 out_addr, be32 server, std::uint32_t control,
                                                         std::uint32_t subscriber, std::uint32_t session_room,
                                                         std::uint64_t now_ms) {
  ControlResult r;
  std::uint8_t* l4 = ip + p.ihl_bytes;
  auto* tcp = reinterpret_cast<packet::TcpHeader*>(l4);
  const unsigned payload_off = tcp->header_bytes();
  const unsigned l4_end = p.total_length - p.ihl_bytes;
  if (payload_off > l4_end) {
    r.outcome = Outcome::drop_split_message;
    return r;
  }
  // The SYN takes one sequence number: data starts after it.
  const std::uint32_t seq = tcp->seq.host() + ((p.tcp_flags & packet::tcp_flag::syn) ? 1u : 0u);
  const unsigned length = l4_end - payload_off;
  std::uint32_t c = find_control(control);

  if (!cfg_.enabled) {
    // Hands off. Only follow the stream, so that the checks pick up where the
    // client is if a reload enables PPTP again.
    if (c != no_index && length != 0) {
      Control& k = controls_[c];
      const std::uint32_t end = seq + length;
      if (k.boundary_count == 0 || seq_after(end, boundary_at(k, k.boundary_count - 1u))) reset_boundaries(k, end);
    }
    return r;
  }
  if (c == no_index) {
    r.outcome = open_control(control, in_addr, subscriber, c);
    if (r.outcome != Outcome::forward) return r;
  }
  Control& k = controls_[c];
  // The stream starts where its first segment (the SYN) says, once: a later
  // SYN or a forged answer from outside must not move the framing.
  if (k.boundary_count == 0) reset_boundaries(k, seq);
  if (length == 0) return r;  // the SYN, ACKs, FIN, RST

  // 1. Framing. The segment must start on a known message boundary and meet
  // every known boundary after it: then the NAT and the server read the
  // same messages, whichever copy of a byte the server keeps.
  unsigned at = k.boundary_count;
  for (unsigned i = 0; i < k.boundary_count; ++i)
    if (boundary_at(k, i) == seq) {
      at = i;
      break;
    }
  if (at == k.boundary_count) {
    r.outcome = Outcome::drop_split_message;
    return r;
  }
  const std::uint32_t known = boundary_at(k, k.boundary_count - 1u) - seq;  // bytes already framed
  unsigned next_known = at + 1;
  std::uint32_t fresh[max_boundaries];  // the last boundaries beyond the known ones
  unsigned fresh_count = 0;
  unsigned end = payload_off;  // end of the last whole message
  while (end < l4_end) {
    const unsigned left = l4_end - end;
    if (left < header_bytes) break;
    const unsigned size = load<be16>(l4 + end).host();
    const std::uint16_t type = load<be16>(l4 + end + 8).host();
    if (size < header_bytes || load<be16>(l4 + end + 2).host() != 1 ||
        load<packet::be32>(l4 + end + 4).host() != magic_cookie || (carries_client_call_id(type) && size < 14)) {
      r.outcome = Outcome::drop_split_message;  // not PPTP control: nothing to frame by
      return r;
    }
    if (size > left) break;
    end += size;
    const std::uint32_t d = end - payload_off;
    if (d <= known) {
      if (next_known >= k.boundary_count || boundary_at(k, next_known) - seq != d) {
        r.outcome = Outcome::drop_split_message;  // framed otherwise than before
        return r;
      }
      ++next_known;
    } else {
      if (next_known != k.boundary_count) {
        r.outcome = Outcome::drop_split_message;  // jumped over a known boundary
        return r;
      }
      fresh[fresh_count++ % max_boundaries] = seq + d;
    }
  }
  if (end == payload_off) {
    counters_.add(stats::NatCounter::pptp_messages_split);
    r.outcome = Outcome::drop_split_message;
    return r;
  }

  // 2. Calls the messages open, before anything is changed: a refused call
  // drops the segment with nothing else of it applied (TCP resends it).
  const std::uint32_t now_s = static_cast<std::uint32_t>(now_ms / 1000);
  for (unsigned off = payload_off; off < end; off += load<be16>(l4 + off).host()) {
    if (!opens_call(load<be16>(l4 + off + 8).host())) continue;
    const be16 id = load<be16>(l4 + off + 12);
    if (find_call(in_addr, server, c, id) != no_index) continue;
    std::uint32_t call = no_index;
    if (hosts_[k.host].calls >= cfg_.max_calls_per_subscriber) r.outcome = Outcome::drop_call_limit;
    else if (r.calls_opened >= session_room) r.outcome = Outcome::drop_session_limit;
    else r.outcome = create_call(c, in_addr, out_addr, server, id, now_s, call);
    if (r.outcome != Outcome::forward) {
      counters_.add(stats::NatCounter::pptp_calls_refused);
      return r;
    }
    ++r.calls_opened;
  }

  // 3. Translation, and calls the messages end.
  ChecksumDelta delta;
  for (unsigned off = payload_off; off < end; off += load<be16>(l4 + off).host()) {
    const std::uint16_t type = load<be16>(l4 + off + 8).host();
    if (!carries_client_call_id(type)) continue;
    const be16 id = load<be16>(l4 + off + 12);
    std::uint32_t call = find_call(in_addr, server, c, id);
    if (call == no_index && opens_call(type)) {
      // Its call was ended by an earlier message of this segment. Opening it
      // again takes the place just freed; only an exhausted ID space fails.
      r.outcome = create_call(c, in_addr, out_addr, server, id, now_s, call);
      if (r.outcome != Outcome::forward) {
        counters_.add(stats::NatCounter::pptp_calls_refused);
        return r;
      }
      ++r.calls_opened;
    }
    if (call == no_index) {
      // Clearing a call the NAT does not know (idle past its timeout, or
      // never seen): the client's own ID could be another client's
      // translated one at the server, so Call ID 0, which no translated call
      // uses, goes instead.
      set_field(l4, off + 12, be16{0}, delta);
      continue;
    }
    calls_[call].last_seen_s = now_s;
    set_field(l4, off + 12, calls_[call].public_id, delta);
    counters_.add(stats::NatCounter::pptp_call_ids_translated);
    if (type == call_clear_request || type == call_disconnect_notify) {
      free_call(call);
      counters_.add(stats::NatCounter::pptp_calls_cleared);
      ++r.calls_closed;
    }
  }
  tcp->checksum = delta.apply(tcp->checksum);

  // 4. A last message cut short goes with the next segment, whole.
  if (end < l4_end) {
    trim(ip, p, end);
    counters_.add(stats::NatCounter::pptp_messages_split);
    counters_.add(stats::NatCounter::pptp_segments_trimmed);
  }
  for (unsigned i = fresh_count > max_boundaries ? fresh_count - max_boundaries : 0; i < fresh_count; ++i)
    push_boundary(k, fresh[i % max_boundaries]);
  return r;
}

void PptpTracker::control_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr, be32 server,
                                  std::uint32_t control, std::uint64_t now_ms) {
  if (!cfg_.enabled) return;
  const std::uint32_t c = find_control(control);
  if (c == no_index || controls_[c].calls == 0) return;
  std::uint8_t* l4 = ip + p.ihl_bytes;
  auto* tcp = reinterpret_cast<packet::TcpHeader*>(l4);
  const unsigned l4_end = p.total_length - p.ihl_bytes;
  ChecksumDelta delta;
  // Whole messages from the start of the segment; a server's message split
  // across segments is forwarded as it is (only that server's call suffers).
  for (unsigned off = tcp->header_bytes(); off + header_bytes <= l4_end;) {
    const unsigned size = load<be16>(l4 + off).host();
    if (size < header_bytes || load<be16>(l4 + off + 2).host() != 1 ||
        load<packet::be32>(l4 + off + 4).host() != magic_cookie)
      break;  // not PPTP control, or out of step
    if (off + size > l4_end) {
      counters_.add(stats::NatCounter::pptp_messages_split);
      break;
    }
    const std::uint16_t type = load<be16>(l4 + off + 8).host();
    unsigned field = 0;
    if (type == outgoing_call_reply) field = 14;
    else if (type == wan_error_notify || type == set_link_info) field = 12;
    if (field != 0 && size >= field + 2) {
      const std::uint32_t call = find_by_public_id(out_addr, server, load<be16>(l4 + off + field));
      if (call != no_index && calls_[call].control == c) {
        calls_[call].last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
        set_field(l4, off + field, calls_[call].client_id, delta);
        counters_.add(stats::NatCounter::pptp_call_ids_restored);
      }
    }
    off += size;
  }
  tcp->checksum = delta.apply(tcp->checksum);
}

}  // namespace passgate::passthrough
