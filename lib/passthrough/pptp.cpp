#include "passthrough/pptp.hpp"

#include "packet/headers.hpp"

namespace passgate::passthrough {

using nat::no_index;
using packet::ChecksumDelta;
using packet::Ipv4Header;
using packet::load;
using packet::store;

namespace {

constexpr std::uint32_t magic_cookie = 0x1a2b3c4d;
constexpr unsigned header_bytes = 12;  // length, PPTP type, cookie, control type, reserved
constexpr std::uint64_t tag_client_id = 8ull << 40, tag_public_id = 9ull << 40, tag_client = 10ull << 40;

enum : std::uint16_t {
  outgoing_call_request = 7,
  outgoing_call_reply = 8,
  incoming_call_reply = 10,
  call_clear_request = 12,
  call_disconnect_notify = 13,
  wan_error_notify = 14,
  set_link_info = 15,
};

}  // namespace

PptpTracker::PptpTracker(const nat::PptpConfig& cfg, const nat::FlowHasher& hasher)
    : cfg_(cfg),
      hasher_(hasher),
      by_client_id_(cfg.max_calls),
      by_public_id_(cfg.max_calls),
      client_table_(cfg.max_calls) {
  calls_.resize(cfg.max_calls, Call{});
  free_calls_.resize(cfg.max_calls);
  for (std::uint32_t i = 0; i < cfg.max_calls; ++i) free_calls_[i] = cfg.max_calls - 1 - i;
  clients_.resize(cfg.max_calls, Client{});
  free_clients_.resize(cfg.max_calls);
  for (std::uint32_t i = 0; i < cfg.max_calls; ++i) free_clients_[i] = cfg.max_calls - 1 - i;
  rng_ ^= hasher.k2;
}

std::uint64_t PptpTracker::key_client_id(be32 in_addr, be32 server, be16 id) const {
  return hasher_((std::uint64_t{in_addr.raw} << 32) | server.raw, id.raw | tag_client_id);
}
std::uint64_t PptpTracker::key_public_id(be32 out_addr, be32 server, be16 id) const {
  return hasher_((std::uint64_t{out_addr.raw} << 32) | server.raw, id.raw | tag_public_id);
}
std::uint64_t PptpTracker::key_client(be32 in_addr, be32 server) const {
  return hasher_((std::uint64_t{in_addr.raw} << 32) | server.raw, tag_client);
}

std::uint32_t PptpTracker::find_by_client_id(be32 in_addr, be32 server, be16 id) const {
  return by_client_id_.find(key_client_id(in_addr, server, id), [&](std::uint32_t i) {
    const Call& c = calls_[i];
    return c.live && c.in_addr == in_addr && c.server == server && c.client_id == id;
  });
}
std::uint32_t PptpTracker::find_by_public_id(be32 out_addr, be32 server, be16 id) const {
  return by_public_id_.find(key_public_id(out_addr, server, id), [&](std::uint32_t i) {
    const Call& c = calls_[i];
    return c.live && c.out_addr == out_addr && c.server == server && c.public_id == id;
  });
}
std::uint32_t PptpTracker::find_client(be32 in_addr, be32 server) const {
  return client_table_.find(key_client(in_addr, server), [&](std::uint32_t i) {
    const Client& c = clients_[i];
    return c.live && c.in_addr == in_addr && c.server == server;
  });
}

std::uint32_t PptpTracker::create_call(be32 in_addr, be32 out_addr, be32 server, be16 client_id,
                                       std::uint32_t control, std::uint32_t now_s) {
  if (free_calls_.empty()) return no_index;
  // A translated Call ID nobody else uses towards this server from this
  // public address; random so it says nothing about the inside (RFC 6056's
  // reasoning applies to call IDs as to ports). 0 is avoided.
  be16 public_id{0};
  for (int attempt = 0; attempt < 64; ++attempt) {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    const be16 candidate = be16::from_host(static_cast<std::uint16_t>(rng_ | 1u));
    if (find_by_public_id(out_addr, server, candidate) == no_index) {
      public_id = candidate;
      break;
    }
  }
  if (public_id.raw == 0) return no_index;
  std::uint32_t client = find_client(in_addr, server);
  if (client == no_index) {
    if (free_clients_.empty()) return no_index;
    client = free_clients_.back();
    if (!client_table_.insert(key_client(in_addr, server), client)) return no_index;
    free_clients_.pop_back();
    clients_[client] = Client{in_addr, server, 0, now_s, true};
  }
  const std::uint32_t i = free_calls_.back();
  if (!by_client_id_.insert(key_client_id(in_addr, server, client_id), i)) return no_index;
  if (!by_public_id_.insert(key_public_id(out_addr, server, public_id), i)) {
    by_client_id_.erase(key_client_id(in_addr, server, client_id), i);
    return no_index;
  }
  free_calls_.pop_back();
  calls_[i] = Call{in_addr, out_addr, server, client_id, public_id, control, now_s, true};
  ++clients_[client].calls;
  ++call_count_;
  ++counters_.calls_created;
  return i;
}

void PptpTracker::free_call(std::uint32_t i) {
  Call& c = calls_[i];
  if (!c.live) return;
  by_client_id_.erase(key_client_id(c.in_addr, c.server, c.client_id), i);
  by_public_id_.erase(key_public_id(c.out_addr, c.server, c.public_id), i);
  const std::uint32_t client = find_client(c.in_addr, c.server);
  if (client != no_index && --clients_[client].calls == 0) {
    client_table_.erase(key_client(c.in_addr, c.server), client);
    clients_[client].live = false;
    free_clients_.push_back(client);
  }
  c.live = false;
  free_calls_.push_back(i);
  --call_count_;
}

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

namespace {
// Walks the PPTP control messages wholly inside this segment.
template <typename Fn>
void for_each_message(std::uint8_t* l4, unsigned payload_off, unsigned segment_end, std::uint64_t& partial, Fn&& fn) {
  unsigned off = payload_off;
  while (off + header_bytes <= segment_end) {
    const unsigned length = load<be16>(l4 + off).host();
    if (length < header_bytes || load<be16>(l4 + off + 2).host() != 1 ||
        load<packet::be32>(l4 + off + 4).host() != magic_cookie)
      return;  // not PPTP control, or out of step: leave it alone
    if (off + length > segment_end) {
      ++partial;  // split across segments: see the README's limits
      return;
    }
    fn(off, load<be16>(l4 + off + 8).host(), length);
    off += length;
  }
}

// Hands each whole control message of the segment to fn(l4, offset, type,
// length, delta) and folds what fn changed into the TCP checksum.
template <typename Fn>
void rewrite_messages(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t& partial, Fn&& fn) {
  std::uint8_t* l4 = ip + p.ihl_bytes;
  auto* tcp = reinterpret_cast<packet::TcpHeader*>(l4);
  ChecksumDelta delta;
  for_each_message(l4, tcp->header_bytes(), p.total_length - p.ihl_bytes, partial,
                   [&](unsigned off, std::uint16_t type, unsigned length) { fn(l4, off, type, length, delta); });
  tcp->checksum = delta.apply(tcp->checksum);
}
}  // namespace

void PptpTracker::control_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 in_addr, be32 out_addr,
                                   be32 server, std::uint32_t control, std::uint64_t now_ms) {
  if (!cfg_.enabled) return;
  rewrite_messages(ip, p, counters_.messages_partial,
                   [&](std::uint8_t* l4, unsigned off, std::uint16_t type, unsigned length, ChecksumDelta& delta) {
    if (length < 14) return;
    if (type != outgoing_call_request && type != incoming_call_reply && type != call_clear_request &&
        type != call_disconnect_notify)
      return;
    const be16 client_id = load<be16>(l4 + off + 12);
    std::uint32_t call = find_by_client_id(in_addr, server, client_id);
    if (call == no_index && (type == outgoing_call_request || type == incoming_call_reply))
      call = create_call(in_addr, out_addr, server, client_id, control, static_cast<std::uint32_t>(now_ms / 1000));
    if (call == no_index) {
      // Forwarded untranslated (dropping a control segment would only make
      // TCP resend it); the call's GRE will find no call and be counted.
      if (type == outgoing_call_request || type == incoming_call_reply) ++counters_.calls_refused;
      return;
    }
    calls_[call].last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
    set_field(l4, off + 12, calls_[call].public_id, delta);
    ++counters_.call_ids_translated;
    if (type == call_clear_request || type == call_disconnect_notify) {
      free_call(call);
      ++counters_.calls_cleared;
    }
  });
}

void PptpTracker::control_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr, be32 server,
                                  std::uint64_t now_ms) {
  if (!cfg_.enabled) return;
  rewrite_messages(ip, p, counters_.messages_partial,
                   [&](std::uint8_t* l4, unsigned off, std::uint16_t type, unsigned length, ChecksumDelta& delta) {
    unsigned field = 0;
    if (type == outgoing_call_reply) field = 14;
    else if (type == wan_error_notify || type == set_link_info) field = 12;
    else return;
    if (length < field + 2) return;
    const std::uint32_t call = find_by_public_id(out_addr, server, load<be16>(l4 + off + field));
    if (call == no_index) return;
    calls_[call].last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
    set_field(l4, off + field, calls_[call].client_id, delta);
    ++counters_.call_ids_restored;
  });
}

void PptpTracker::control_closed(std::uint32_t control) {
  if (call_count_ == 0) return;
  for (std::uint32_t i = 0; i < calls_.size(); ++i)
    if (calls_[i].live && calls_[i].control == control) {
      free_call(i);
      ++counters_.calls_cleared;
    }
}

PptpTracker::Outcome PptpTracker::gre_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr,
                                               std::uint64_t now_ms) {
  if (!cfg_.enabled) {
    ++counters_.drop_disabled;
    return Outcome::drop_disabled;
  }
  const std::uint32_t client = find_client(p.src, p.dst);
  if (client == no_index) {
    ++counters_.drop_unknown_call;
    return Outcome::drop_unknown_call;
  }
  clients_[client].last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->checksum = ChecksumDelta().add(h->src, out_addr).apply(h->checksum);
  h->src = out_addr;
  ++counters_.gre_out;
  return Outcome::forward;
}

PptpTracker::Outcome PptpTracker::gre_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms) {
  if (!cfg_.enabled) {
    ++counters_.drop_disabled;
    return Outcome::drop_disabled;
  }
  // Enhanced GRE key: payload length (16 bits), then the Call ID.
  std::uint8_t* key = ip + p.gre_key_offset;
  const std::uint32_t call = find_by_public_id(p.dst, p.src, load<be16>(key + 2));
  if (call == no_index) {
    ++counters_.drop_unknown_call;
    return Outcome::drop_unknown_call;
  }
  Call& c = calls_[call];
  c.last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
  store(key + 2, c.client_id);  // GRE v1 has no checksum (RFC 2637 4.1)
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->checksum = ChecksumDelta().add(h->dst, c.in_addr).apply(h->checksum);
  h->dst = c.in_addr;
  ++counters_.gre_in;
  return Outcome::forward;
}

// Calls normally end by message or with their control connection; this is
// the safety net for peers that vanish. Once a second is plenty.
void PptpTracker::expire(std::uint64_t now_ms) {
  const std::uint32_t now_s = static_cast<std::uint32_t>(now_ms / 1000);
  if (call_count_ == 0 || now_s == last_scan_s_) return;
  last_scan_s_ = now_s;
  for (std::uint32_t i = 0; i < calls_.size(); ++i) {
    const Call& c = calls_[i];
    if (!c.live) continue;
    std::uint32_t seen = c.last_seen_s;
    const std::uint32_t client = find_client(c.in_addr, c.server);
    if (client != no_index && clients_[client].last_seen_s > seen) seen = clients_[client].last_seen_s;
    if (seen + cfg_.call_idle_timeout <= now_s) {
      free_call(i);
      ++counters_.calls_expired;
    }
  }
}

}  // namespace passgate::passthrough
