#include "passthrough/pptp.hpp"

#include <cstring>

#include "packet/headers.hpp"

namespace passgate::passthrough {

using table::no_index;
using packet::ChecksumDelta;
using packet::Ipv4Header;
using packet::load;
using packet::store;

namespace {

constexpr std::uint64_t tag_client_id = 8ull << 40, tag_public_id = 9ull << 40, tag_client = 10ull << 40,
                        tag_host = 11ull << 40, tag_control = 12ull << 40;
// Idle deadlines further out are filed at the horizon and re-filed when
// reached, so the wheel's size does not follow call_idle_timeout.
constexpr std::uint32_t wheel_horizon_s = 4000;

void fill_free_list(std::vector<std::uint32_t>& list, std::uint32_t n) {
  list.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) list[i] = n - 1 - i;
}

}  // namespace

PptpTracker::PptpTracker(const PptpConfig& cfg, const table::FlowHasher& hasher, stats::NatCounters& counters)
    : cfg_(cfg),
      hasher_(hasher),
      counters_(counters),
      by_client_id_(cfg.max_calls),
      by_public_id_(cfg.max_calls),
      wheel_(cfg.max_calls, wheel_horizon_s),
      client_table_(cfg.max_calls),
      host_table_(cfg.max_calls),
      control_table_(cfg.max_calls) {
  // A client, a host and a control connection each exist only for calls or
  // for a control connection, so max_calls bounds every table.
  calls_.resize(cfg.max_calls, Call{});
  fill_free_list(free_calls_, cfg.max_calls);
  clients_.resize(cfg.max_calls, Client{});
  fill_free_list(free_clients_, cfg.max_calls);
  hosts_.resize(cfg.max_calls, Host{});
  fill_free_list(free_hosts_, cfg.max_calls);
  controls_.resize(cfg.max_calls, Control{});
  fill_free_list(free_controls_, cfg.max_calls);
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
std::uint64_t PptpTracker::key_host(be32 in_addr) const { return hasher_(in_addr.raw, tag_host); }
std::uint64_t PptpTracker::key_control(std::uint32_t session) const { return hasher_(session, tag_control); }

// A Call ID is the client's within its control connection (RFC 2637 1.3):
// messages of one connection never reach another connection's calls.
std::uint32_t PptpTracker::find_call(be32 in_addr, be32 server, std::uint32_t control, be16 id) const {
  return by_client_id_.find(key_client_id(in_addr, server, id), [&](std::uint32_t i) {
    const Call& c = calls_[i];
    return c.live && c.control == control && c.client_id == id && c.in_addr == in_addr && c.server == server;
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
std::uint32_t PptpTracker::find_host(be32 in_addr) const {
  return host_table_.find(key_host(in_addr), [&](std::uint32_t i) { return hosts_[i].live && hosts_[i].in_addr == in_addr; });
}
std::uint32_t PptpTracker::find_control(std::uint32_t session) const {
  return control_table_.find(key_control(session),
                             [&](std::uint32_t i) { return controls_[i].live && controls_[i].session == session; });
}

// ------------------------------------------------------ control connections

PptpTracker::Outcome PptpTracker::open_control(std::uint32_t session, be32 in_addr, std::uint32_t subscriber,
                                               std::uint32_t& out) {
  std::uint32_t h = find_host(in_addr);
  if (h != no_index && hosts_[h].controls >= cfg_.max_calls_per_subscriber) return Outcome::drop_call_limit;
  if (free_controls_.empty()) return Outcome::drop_table_full;
  const bool new_host = h == no_index;
  if (new_host) {
    if (free_hosts_.empty()) return Outcome::drop_table_full;
    h = free_hosts_.back();
    if (!host_table_.insert(key_host(in_addr), h)) return Outcome::drop_table_full;
    free_hosts_.pop_back();
    hosts_[h] = Host{in_addr, 0, 0, true};
  }
  const std::uint32_t c = free_controls_.back();
  if (!control_table_.insert(key_control(session), c)) {
    if (new_host) {
      host_table_.erase(key_host(in_addr), h);
      hosts_[h].live = false;
      free_hosts_.push_back(h);
    }
    return Outcome::drop_table_full;
  }
  free_controls_.pop_back();
  Control& k = controls_[c];
  k = Control{};
  k.session = session;
  k.host = h;
  k.subscriber = subscriber;
  k.first_call = no_index;
  k.live = true;
  ++hosts_[h].controls;
  ++control_count_;
  out = c;
  return Outcome::forward;
}

// The control connection's calls are gone already.
void PptpTracker::close_control(std::uint32_t c) {
  Control& k = controls_[c];
  control_table_.erase(key_control(k.session), c);
  Host& h = hosts_[k.host];
  if (--h.controls == 0) {
    host_table_.erase(key_host(h.in_addr), k.host);
    h.live = false;
    free_hosts_.push_back(k.host);
  }
  k.live = false;
  free_controls_.push_back(c);
  --control_count_;
}

void PptpTracker::reset_boundaries(Control& c, std::uint32_t seq) {
  c.boundary_first = 0;
  c.boundary_count = 1;
  c.boundary[0] = seq;
}

void PptpTracker::push_boundary(Control& c, std::uint32_t seq) {
  if (c.boundary_count < max_boundaries) {
    c.boundary[(c.boundary_first + c.boundary_count) % max_boundaries] = seq;
    ++c.boundary_count;
    return;
  }
  c.boundary[c.boundary_first] = seq;  // the oldest makes room
  c.boundary_first = static_cast<std::uint8_t>((c.boundary_first + 1) % max_boundaries);
}

// ------------------------------------------------------------------ calls

PptpTracker::Outcome PptpTracker::create_call(std::uint32_t control, be32 in_addr, be32 out_addr, be32 server,
                                              be16 client_id, std::uint32_t now_s, std::uint32_t& out) {
  Control& k = controls_[control];
  Host& host = hosts_[k.host];
  if (host.calls >= cfg_.max_calls_per_subscriber) return Outcome::drop_call_limit;
  if (free_calls_.empty()) return Outcome::drop_table_full;
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
  if (public_id.raw == 0) return Outcome::drop_table_full;
  std::uint32_t client = find_client(in_addr, server);
  const bool new_client = client == no_index;
  if (new_client) {
    if (free_clients_.empty()) return Outcome::drop_table_full;
    client = free_clients_.back();
    if (!client_table_.insert(key_client(in_addr, server), client)) return Outcome::drop_table_full;
    free_clients_.pop_back();
    clients_[client] = Client{in_addr, server, 0, now_s, true};
  }
  const std::uint32_t i = free_calls_.back();
  const bool indexed = by_client_id_.insert(key_client_id(in_addr, server, client_id), i);
  if (!indexed || !by_public_id_.insert(key_public_id(out_addr, server, public_id), i)) {
    if (indexed) by_client_id_.erase(key_client_id(in_addr, server, client_id), i);
    if (new_client) {
      client_table_.erase(key_client(in_addr, server), client);
      clients_[client].live = false;
      free_clients_.push_back(client);
    }
    return Outcome::drop_table_full;
  }
  free_calls_.pop_back();
  calls_[i] = Call{in_addr, out_addr, server, client_id, public_id, control, client, k.subscriber,
                   k.first_call, no_index, now_s, true};
  if (k.first_call != no_index) calls_[k.first_call].prev = i;
  k.first_call = i;
  ++k.calls;
  ++host.calls;
  ++clients_[client].calls;
  wheel_.schedule(i, now_s + cfg_.call_idle_timeout);
  ++call_count_;
  counters_.add(stats::NatCounter::pptp_calls_created);
  out = i;
  return Outcome::forward;
}

void PptpTracker::free_call(std::uint32_t i) {
  Call& c = calls_[i];
  if (!c.live) return;
  by_client_id_.erase(key_client_id(c.in_addr, c.server, c.client_id), i);
  by_public_id_.erase(key_public_id(c.out_addr, c.server, c.public_id), i);
  wheel_.cancel(i);
  Client& client = clients_[c.client];
  if (--client.calls == 0) {
    client_table_.erase(key_client(client.in_addr, client.server), c.client);
    client.live = false;
    free_clients_.push_back(c.client);
  }
  Control& k = controls_[c.control];
  if (c.prev != no_index) calls_[c.prev].next = c.next;
  else k.first_call = c.next;
  if (c.next != no_index) calls_[c.next].prev = c.prev;
  --k.calls;
  --hosts_[k.host].calls;
  c.live = false;
  free_calls_.push_back(i);
  --call_count_;
}

// ------------------------------------------------------------------- GRE

PptpTracker::Outcome PptpTracker::gre_outbound(std::uint8_t* ip, const packet::ParsedIpv4& p, be32 out_addr,
                                               std::uint64_t now_ms) {
  if (!cfg_.enabled) {
    return Outcome::drop_disabled;
  }
  const std::uint32_t client = find_client(p.src, p.dst);
  if (client == no_index) {
    return Outcome::drop_unknown_call;
  }
  clients_[client].last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->checksum = ChecksumDelta().add(h->src, out_addr).apply(h->checksum);
  h->src = out_addr;
  counters_.add(stats::NatCounter::pptp_gre_translated_outbound);
  return Outcome::forward;
}

PptpTracker::Outcome PptpTracker::gre_inbound(std::uint8_t* ip, const packet::ParsedIpv4& p, std::uint64_t now_ms) {
  if (!cfg_.enabled) {
    return Outcome::drop_disabled;
  }
  // Enhanced GRE key: payload length (16 bits), then the Call ID.
  std::uint8_t* key = ip + p.gre_key_offset;
  const std::uint32_t call = find_by_public_id(p.dst, p.src, load<be16>(key + 2));
  if (call == no_index) {
    return Outcome::drop_unknown_call;
  }
  Call& c = calls_[call];
  c.last_seen_s = static_cast<std::uint32_t>(now_ms / 1000);
  store(key + 2, c.client_id);  // GRE v1 has no checksum (RFC 2637 4.1)
  auto* h = reinterpret_cast<Ipv4Header*>(ip);
  h->checksum = ChecksumDelta().add(h->dst, c.in_addr).apply(h->checksum);
  h->dst = c.in_addr;
  counters_.add(stats::NatCounter::pptp_gre_translated_inbound);
  return Outcome::forward;
}

// ------------------------------------------------------------ invariants

namespace {
std::string free_list_problem(const std::vector<std::uint32_t>& list, std::size_t capacity, const char* what,
                              std::vector<std::uint8_t>& is_free) {
  is_free.assign(capacity, false);
  for (std::uint32_t i : list) {
    if (i >= capacity) return std::string(what) + " free list holds " + std::to_string(i) + " beyond capacity";
    if (is_free[i]) return std::string(what) + " free list holds " + std::to_string(i) + " twice";
    is_free[i] = true;
  }
  return {};
}
}  // namespace

std::string PptpTracker::check_invariants() const {
  std::vector<std::uint8_t> is_free_call, is_free_client, is_free_host, is_free_control;
  for (const std::string& why : {free_list_problem(free_calls_, calls_.size(), "call", is_free_call),
                                 free_list_problem(free_clients_, clients_.size(), "client", is_free_client),
                                 free_list_problem(free_hosts_, hosts_.size(), "host", is_free_host),
                                 free_list_problem(free_controls_, controls_.size(), "control", is_free_control)})
    if (!why.empty()) return why;
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::vector<std::uint32_t> client_calls(clients_.size(), 0), host_calls(hosts_.size(), 0),
      host_controls(hosts_.size(), 0), control_calls(controls_.size(), 0);
  std::uint32_t live_calls = 0, live_clients = 0, live_hosts = 0, live_controls = 0;
  for (std::uint32_t i = 0; i < calls_.size(); ++i) {
    const Call& c = calls_[i];
    if (c.live == is_free_call[i]) return "call " + n(i) + " is live and free, or neither";
    if (!c.live) continue;
    ++live_calls;
    if (c.control >= controls_.size() || !controls_[c.control].live)
      return "call " + n(i) + " belongs to a control connection that is not live";
    if (c.client >= clients_.size() || !clients_[c.client].live || clients_[c.client].in_addr != c.in_addr ||
        clients_[c.client].server != c.server)
      return "call " + n(i) + " refers to another client";
    if (c.subscriber != controls_[c.control].subscriber)
      return "call " + n(i) + " counts against another subscriber than its control connection";
    if (find_call(c.in_addr, c.server, c.control, c.client_id) != i ||
        find_by_public_id(c.out_addr, c.server, c.public_id) != i)
      return "call " + n(i) + " not found by both of its IDs";
    ++client_calls[c.client];
    ++control_calls[c.control];
    ++host_calls[controls_[c.control].host];
  }
  for (std::uint32_t i = 0; i < clients_.size(); ++i) {
    if (clients_[i].live == is_free_client[i]) return "client " + n(i) + " is live and free, or neither";
    if (!clients_[i].live) continue;
    ++live_clients;
    if (clients_[i].calls != client_calls[i] || client_calls[i] == 0)
      return "client " + n(i) + " counts " + n(clients_[i].calls) + " calls, " + n(client_calls[i]) + " refer to it";
    if (find_client(clients_[i].in_addr, clients_[i].server) != i) return "client " + n(i) + " not found";
  }
  for (std::uint32_t i = 0; i < controls_.size(); ++i) {
    const Control& k = controls_[i];
    if (k.live == is_free_control[i]) return "control " + n(i) + " is live and free, or neither";
    if (!k.live) continue;
    ++live_controls;
    if (k.host >= hosts_.size() || !hosts_[k.host].live) return "control " + n(i) + " has no live host";
    ++host_controls[k.host];
    if (find_control(k.session) != i) return "control " + n(i) + " not found by its session";
    if (k.boundary_count > max_boundaries || k.boundary_first >= max_boundaries)
      return "control " + n(i) + " has a broken boundary ring";
    std::uint32_t listed = 0, prev = no_index;
    for (std::uint32_t call = k.first_call; call != no_index; call = calls_[call].next) {
      if (call >= calls_.size() || !calls_[call].live || calls_[call].control != i || calls_[call].prev != prev ||
          ++listed > k.calls)
        return "control " + n(i) + "'s call list is broken at call " + n(call);
      prev = call;
    }
    if (listed != k.calls || k.calls != control_calls[i])
      return "control " + n(i) + " counts " + n(k.calls) + " calls, lists " + n(listed) + ", " + n(control_calls[i]) +
             " refer to it";
  }
  for (std::uint32_t i = 0; i < hosts_.size(); ++i) {
    const Host& h = hosts_[i];
    if (h.live == is_free_host[i]) return "host " + n(i) + " is live and free, or neither";
    if (!h.live) continue;
    ++live_hosts;
    if (h.calls != host_calls[i] || h.controls != host_controls[i] || h.controls == 0)
      return "host " + n(i) + " counts " + n(h.calls) + " calls and " + n(h.controls) + " controls, has " +
             n(host_calls[i]) + " and " + n(host_controls[i]);
    if (find_host(h.in_addr) != i) return "host " + n(i) + " not found";
  }
  if (live_calls != call_count_) return "call count " + n(call_count_) + " != " + n(live_calls) + " live calls";
  if (live_controls != control_count_)
    return "control count " + n(control_count_) + " != " + n(live_controls) + " live controls";
  if (by_client_id_.size() != live_calls || by_public_id_.size() != live_calls || client_table_.size() != live_clients ||
      host_table_.size() != live_hosts || control_table_.size() != live_controls)
    return "an index holds another number of entries than there are records";
  return {};
}

}  // namespace passgate::passthrough
