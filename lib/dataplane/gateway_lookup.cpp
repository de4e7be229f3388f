// The operator's look-ups (passgatectl subscriber, public, lookup): each is
// answered by every worker between two bursts (Gateway::on_workers) and
// merged here.
#include <algorithm>

#include "dataplane/gateway.hpp"
#include "dataplane/worker.hpp"

namespace passgate::dataplane {

namespace {
const char* protocol_name(nat::Proto p) { return nat::to_string(p); }
SessionView view_of(const nat::Session& s, std::uint32_t now_s, unsigned worker) {
  return SessionView{protocol_name(s.proto), s.in_addr,       s.out_addr,        s.rem_addr,
                     s.in_port.host(),       s.out_port.host(), s.rem_port.host(), nat::to_string(s.tcp_state),
                     now_s > s.last_seen ? now_s - s.last_seen : 0, worker};
}
}  // namespace

SubscriberView Gateway::subscriber(be32 address, std::size_t session_limit) const {
  std::lock_guard<std::mutex> lock(control_mutex_);
  SubscriberView v{address, be32{0}};
  on_workers([&](Worker& w) {
    const nat::Engine& e = *w.engine;
    if (const nat::PoolConfig* pc = e.subscriber_pool(address)) {
      v.pool = pc->name;
      v.deterministic = pc->mode == nat::PoolMode::deterministic;
      v.port_step = e.port_share().step;
    }
    if (const be32 pub = e.subscriber_public_address(address); pub.raw != 0) v.public_address = pub;
    for (std::uint16_t first : e.subscriber_blocks(address, &v.block_size)) v.block_first_ports.push_back(first);
    const auto now_s = static_cast<std::uint32_t>(w.now_ms / 1000);
    for (const nat::Session& s : e.subscriber_sessions(address, session_limit - std::min(session_limit, v.sessions.size())))
      v.sessions.push_back(view_of(s, now_s, w.queue));
  });
  return v;
}

std::optional<PublicPortView> Gateway::public_port(std::uint8_t protocol, be32 address, std::uint16_t port,
                                                   std::size_t session_limit) const {
  std::lock_guard<std::mutex> lock(control_mutex_);
  nat::Proto proto;
  if (protocol == packet::ip_proto::tcp) proto = nat::Proto::tcp;
  else if (protocol == packet::ip_proto::udp) proto = nat::Proto::udp;
  else if (protocol == packet::ip_proto::icmp) proto = nat::Proto::icmp;
  else return std::nullopt;
  std::optional<PublicPortView> found;
  on_workers([&](Worker& w) {
    const nat::Mapping* m = w.engine->find_mapping_public(proto, address, be16::from_host(port));
    if (!m || found) return;
    found = PublicPortView{protocol_name(m->proto), m->in_addr, m->out_addr, m->in_port.host(), m->out_port.host(),
                           m->is_static != 0, m->sessions, {}};
    const auto now_s = static_cast<std::uint32_t>(w.now_ms / 1000);
    for (const nat::Session& s : w.engine->mapping_sessions(*m, session_limit))
      found->session_list.push_back(view_of(s, now_s, w.queue));
  });
  return found;
}

// The block covering the port, on whichever worker's comb holds it, and
// every mapping of the port (a preserved port or a static mapping has no
// block).
PortLookupView Gateway::lookup_port(be32 address, std::uint16_t port, std::size_t session_limit) const {
  PortLookupView v{address, port, std::nullopt, {}};
  {
    std::lock_guard<std::mutex> lock(control_mutex_);
    on_workers([&](Worker& w) {
      if (v.holder) return;
      if (auto h = w.engine->port_holder(address, port))
        v.holder = PortHolderView{h->subscriber, h->pool, h->deterministic, h->first_port, h->last_port, h->step, w.queue};
    });
  }
  for (const std::uint8_t proto : {packet::ip_proto::tcp, packet::ip_proto::udp, packet::ip_proto::icmp})
    if (auto m = public_port(proto, address, port, session_limit)) v.mappings.push_back(std::move(*m));
  return v;
}

}  // namespace passgate::dataplane
