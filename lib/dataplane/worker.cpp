#include "dataplane/worker.hpp"

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ring.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "packet/checksum.hpp"
#include "packet/frame.hpp"
#include "packet/headers.hpp"
#include "packet/router.hpp"

namespace passgate::dataplane {

using packet::ChecksumDelta;
using packet::eth_len;
using packet::vlan_len;
using packet::Ipv4Header;
using stats::PortDrop;

Worker::Worker(const config::GatewayConfig& c, std::vector<PortView> p, rte_mempool* mp, std::uint16_t q,
               std::unique_ptr<nat::Engine> e)
    : cfg(c), ports(std::move(p)), pool(mp), queue(q), engine(std::move(e)) {
  counters.resize(ports.size());
  tx.resize(ports.size());
  for (const PortView& port : ports) {
    packet::FramePort fp{{}, port.cfg->vlan, port.cfg->promiscuous};
    std::memcpy(fp.mac, port.mac.bytes.data(), 6);
    frame_ports_.push_back(fp);
    packet::RouteTable routes(port.cfg->address, port.cfg->prefix_length, port.cfg->gateway);
    for (const config::Route& r : port.cfg->routes) routes.add_route(r.prefix.address, r.prefix.length, r.via);
    routes_.push_back(std::move(routes));
    auto table = std::make_unique<NeighbourTable>(cfg.dataplane.neighbour);
    for (const auto& n : port.cfg->neighbours) table->add_static(n.address, n.mac);
    neighbours.push_back(std::move(table));
  }
}

void Worker::run(const std::atomic<bool>* stop) {
  const std::uint64_t hz = rte_get_tsc_hz();
  const std::uint64_t start = rte_rdtsc();
  const std::uint64_t tick = hz / 1000;  // timers once a millisecond
  std::uint64_t next_tick = start;
  const unsigned burst = cfg.dataplane.burst;
  rte_mbuf* mbufs[nat::Engine::max_burst];
  // The engine's clock starts at 1 s so that "0" never means "now".
  now_ms = 1000;
  start_unix_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (qsbr) {
    rte_rcu_qsbr_thread_register(qsbr, reader_id);
    rte_rcu_qsbr_thread_online(qsbr, reader_id);
  }
  running.store(true, std::memory_order_release);
  while (!stop->load(std::memory_order_relaxed)) {
    // Top of the loop: no packet and no policy reference is in flight.
    if (const Policy* p = published->load(std::memory_order_acquire); p != policy) adopt(p);
    if (call_.load(std::memory_order_relaxed)) serve_control_call();
    for (unsigned p = 0; p < ports.size(); ++p) {
      if (queue >= rx_queues[p]) continue;  // fewer queues than workers: others hand packets over
      const std::uint16_t n = rte_eth_rx_burst(ports[p].id, queue, mbufs, static_cast<std::uint16_t>(burst));
      if (n) receive(p, mbufs, n);
    }
    if (rules) {
      receive_handoffs();
      flush_handoffs();
    }
    for (unsigned p = 0; p < ports.size(); ++p) flush(p);
    const std::uint64_t tsc = rte_rdtsc();
    if (tsc >= next_tick) {
      next_tick = tsc + tick;
      now_ms = 1000 + (tsc - start) * 1000 / hz;
      timers();
    }
    if (qsbr) rte_rcu_qsbr_quiescent(qsbr, reader_id);
  }
  for (unsigned p = 0; p < ports.size(); ++p) flush(p);
  running.store(false, std::memory_order_release);
  serve_control_call();  // one posted while stopping must not wait for its timeout
  if (qsbr) {
    rte_rcu_qsbr_thread_offline(qsbr, reader_id);
    rte_rcu_qsbr_thread_unregister(qsbr, reader_id);
  }
}

// A reload: the engine takes the new NAT policy between two bursts, so every
// packet is translated entirely under one policy or the other. The work was
// done on the control core (the plan); applying it is O(what changed).
void Worker::adopt(const Policy* next) {
  if (policy) {
    nat::ReloadPlan* plan = nullptr;
    for (const auto& p : next->plans)
      if (p && p->engine() == engine.get()) plan = p.get();
    last_reconfigure = plan ? engine->apply(*plan) : nat::ReconfigureResult{};
    // Without a plan that fits (none is made that does not), the slow way.
    if (!last_reconfigure.applied || !plan) last_reconfigure = engine->reconfigure(next->nat);
  }
  policy = next;
  applied_generation.store(next->generation, std::memory_order_release);
}

void Worker::serve_control_call() {
  ControlCall* c = call_.exchange(nullptr, std::memory_order_acquire);
  if (!c) return;
  c->run(*this);
  c->done.store(true, std::memory_order_release);
}

bool Worker::call_on_worker(ControlCall& c, unsigned timeout_ms) {
  if (!running.load(std::memory_order_acquire)) {
    c.run(*this);
    c.done = true;
    return true;
  }
  ControlCall* expected = nullptr;
  if (!call_.compare_exchange_strong(expected, &c, std::memory_order_release)) return false;  // one at a time
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!c.done.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline || !running.load(std::memory_order_acquire)) {
      ControlCall* mine = &c;
      if (call_.compare_exchange_strong(mine, nullptr)) return false;  // never taken: safe to give up
      // Taken: the worker is running it right now; it finishes quickly.
      while (!c.done.load(std::memory_order_acquire)) std::this_thread::yield();
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

bool Worker::answers_arp_for(unsigned port, be32 a) const {
  return a == ports[port].cfg->address || (!ports[port].inside && engine->is_public_address(a));
}

void Worker::timers() {
  engine->expire(now_ms, 1024);
  release_fragments();
  for (unsigned p = 0; p < ports.size(); ++p) {
    neighbours[p]->tick(
        now_ms, [&](be32 target) { send_arp_request(p, target); },
        [&](rte_mbuf* m) {
          counters[p].add(PortDrop::neighbour_failed);
          rte_pktmbuf_free(m);
        });
  }
}

// Handed-over mbufs carry what the first worker learned: the port in
// m->port, the L2 length in m->l2_len, and in m->packet_type whether it is
// an IPv4 packet to translate or a copy of an ARP frame to learn from.
namespace {
constexpr std::uint32_t handed_ipv4 = RTE_PTYPE_L3_IPV4;
constexpr std::uint32_t handed_arp_copy = RTE_PTYPE_L2_ETHER_ARP;
}  // namespace

void Worker::hand_to(unsigned worker, unsigned port, rte_mbuf* m, unsigned l2) {
  m->port = ports[port].id;
  m->l2_len = static_cast<std::uint8_t>(l2);
  HandoffBuffer& b = handoff[worker];
  b.mbufs[b.count++] = m;
  counters[port].handoff_out++;
  if (b.count == HandoffBuffer::capacity) flush_handoffs();
}

void Worker::flush_handoffs() {
  for (unsigned w = 0; w < handoff.size(); ++w) {
    HandoffBuffer& b = handoff[w];
    if (b.count == 0) continue;
    const unsigned sent = rte_ring_enqueue_burst(rings[w], reinterpret_cast<void* const*>(b.mbufs), b.count, nullptr);
    for (unsigned i = sent; i < b.count; ++i) {
      for (unsigned p = 0; p < ports.size(); ++p)
        if (ports[p].id == b.mbufs[i]->port) counters[p].add(PortDrop::handoff_ring_full);
      rte_pktmbuf_free(b.mbufs[i]);
    }
    b.count = 0;
  }
}

void Worker::receive_handoffs() {
  rte_mbuf* in[nat::Engine::max_burst];
  const unsigned n = rte_ring_sc_dequeue_burst(rings[index], reinterpret_cast<void**>(in), nat::Engine::max_burst, nullptr);
  if (n == 0) return;
  // Keep each port's packets in their order.
  for (unsigned p = 0; p < ports.size(); ++p) {
    rte_mbuf* mine[nat::Engine::max_burst];
    unsigned k = 0;
    for (unsigned i = 0; i < n; ++i)
      if (in[i]->port == ports[p].id) mine[k++] = in[i];
    if (k) receive(p, mine, k, true);
  }
}

// ARP reaches one worker (RSS does not hash it); every worker keeps its own
// neighbour table, so the others learn from a copy.
void Worker::copy_arp_to_others(unsigned port, rte_mbuf* m, unsigned l2) {
  for (unsigned w = 0; w < handoff.size(); ++w) {
    if (w == index) continue;
    rte_mbuf* copy = rte_pktmbuf_copy(m, pool, 0, UINT32_MAX);
    if (!copy) {
      counters[port].add(PortDrop::no_mbuf);
      continue;
    }
    copy->packet_type = handed_arp_copy;
    hand_to(w, port, copy, l2);
    counters[port].handoff_out--;  // copies are not packets handed over
  }
}

void Worker::receive(unsigned port, rte_mbuf** mbufs, unsigned n, bool handed) {
  stats::PortCounters& c = counters[port];
  const PortView& pv = ports[port];
  nat::PacketRef refs[nat::Engine::max_burst];
  rte_mbuf* nat_mbufs[nat::Engine::max_burst];
  std::uint8_t l2_lens[nat::Engine::max_burst];
  unsigned nat_count = 0;
  // Inbound packets that cannot go on (TTL, or Don't Fragment and too large
  // for the inside): the ICMP error, prepared from the packet as it
  // arrived, is sent only if the engine would deliver it (RFC 1812 4.3.2:
  // toward a host reaching a port forward or a mapping, not a port scan).
  std::uint8_t stuck[nat::Engine::max_burst];
  rte_mbuf* stuck_error[nat::Engine::max_burst];
  std::uint8_t stuck_type[nat::Engine::max_burst];
  unsigned stuck_count = 0;
  const auto note_if_stuck = [&](rte_mbuf* m, unsigned l2) {
    if (pv.inside) return;
    const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2);
    const unsigned total = ip->total_length.host();
    const std::uint16_t mtu = ports[0].cfg->mtu;
    const bool ttl = ip->ttl <= 1;
    if (!ttl && (total <= mtu || !(ip->flags_fragment.host() & 0x4000))) return;
    const std::span<const std::uint8_t> packet(rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2),
                                               std::min<unsigned>(total, rte_pktmbuf_data_len(m) - l2));
    const std::uint8_t type = ttl ? packet::icmp_type::time_exceeded : packet::icmp_type::dest_unreachable;
    stuck[stuck_count] = static_cast<std::uint8_t>(nat_count);
    stuck_type[stuck_count] = type;
    stuck_error[stuck_count++] =
        make_icmp_error(port, packet, type,
                        ttl ? packet::icmp_code::ttl_exceeded_in_transit : packet::icmp_code::fragmentation_needed,
                        ttl ? 0 : mtu);
  };

  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = mbufs[i];
    if (handed) {
      const unsigned l2 = m->l2_len;
      if (m->packet_type == handed_arp_copy) {
        handle_arp(port, m, l2, true);
        continue;
      }
      c.handoff_in++;
      note_if_stuck(m, l2);
      refs[nat_count] = {std::span<std::uint8_t>(rte_pktmbuf_mtod_offset(m, std::uint8_t*, l2),
                                                 rte_pktmbuf_data_len(m) - l2),
                         {}};
      nat_mbufs[nat_count] = m;
      l2_lens[nat_count] = static_cast<std::uint8_t>(l2);
      ++nat_count;
      continue;
    }
    c.rx_packets++;
    c.rx_bytes += rte_pktmbuf_pkt_len(m);
    if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
      c.add(PortDrop::multi_segment);
      rte_pktmbuf_free(m);
      continue;
    }
    const std::uint8_t* frame = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const unsigned len = rte_pktmbuf_data_len(m);
    // A PMD may strip the tag into the mbuf (af_packet does, as the kernel
    // hands it over in auxiliary data); otherwise it is inline.
    const std::uint16_t stripped = (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) ? (m->vlan_tci & 0x0fff) : 0;
    const packet::FrameInfo info =
        packet::classify_frame(std::span<const std::uint8_t>(frame, len), stripped, frame_ports_[port]);
    const unsigned l2 = info.l2_len;
    if (info.kind == packet::FrameKind::arp) {
      if (rules) copy_arp_to_others(port, m, l2);
      handle_arp(port, m, l2);
      continue;
    }
    if (info.kind != packet::FrameKind::ipv4) [[unlikely]] {
      c.add(frame_drop(info.kind));
      rte_pktmbuf_free(m);
      continue;
    }
    if (!ip_addresses_acceptable(port, m, l2)) continue;
    const auto* ip = reinterpret_cast<const Ipv4Header*>(frame + l2);
    if (cfg.dataplane.forward_only) {  // the I/O ceiling: route, never translate
      forward(pv.inside ? 1 : 0, m, l2);
      continue;
    }
    // Subscriber addresses only ever come from the inside (anti-spoofing),
    // and the inside subnet is never routed back through the NAT.
    if (pv.inside ? pv.cfg->subnet().contains(ip->dst) : policy->subscribers.contains(ip->src)) {
      c.add(PortDrop::wrong_side);
      rte_pktmbuf_free(m);
      continue;
    }
    // TTL and MTU toward the internet are known before translation, and the
    // ICMP error must quote the packet as the subscriber sent it.
    if (pv.inside && !fits_next_hop_or_answer(port, m, l2)) continue;
    const std::span<std::uint8_t> bytes(rte_pktmbuf_mtod_offset(m, std::uint8_t*, l2), len - l2);
    if (rules) {
      const unsigned owner = pv.inside ? steering::owner_outbound(*rules, bytes, index, &policy->static_endpoints)
                                       : steering::owner_inbound(*rules, bytes, index);
      if (owner != index) {
        m->packet_type = handed_ipv4;
        hand_to(owner, port, m, l2);
        continue;
      }
    }
    note_if_stuck(m, l2);
    refs[nat_count] = {bytes, {}};
    nat_mbufs[nat_count] = m;
    l2_lens[nat_count] = static_cast<std::uint8_t>(l2);
    ++nat_count;
  }
  if (nat_count == 0) return;

  engine->process_burst(pv.inside ? nat::Direction::outbound : nat::Direction::inbound,
                        std::span<nat::PacketRef>(refs, nat_count), now_ms);
  for (unsigned k = 0; k < stuck_count; ++k) {
    const unsigned i = stuck[k];
    if (refs[i].result.verdict != nat::Verdict::to_inside) {
      unmake_icmp_error(stuck_error[k]);
      continue;
    }
    counters[0].add(stuck_type[k] == packet::icmp_type::time_exceeded ? PortDrop::ttl_exceeded : PortDrop::mtu_exceeded);
    rte_pktmbuf_free(nat_mbufs[i]);
    nat_mbufs[i] = nullptr;
    send_icmp_error(port, stuck_error[k], stuck_type[k]);
  }
  for (unsigned i = 0; i < nat_count; ++i) {
    if (!nat_mbufs[i]) continue;  // answered above
    switch (refs[i].result.verdict) {
      case nat::Verdict::to_outside: forward(1, nat_mbufs[i], l2_lens[i]); break;
      case nat::Verdict::to_inside: forward(0, nat_mbufs[i], l2_lens[i]); break;
      case nat::Verdict::held: rte_pktmbuf_free(nat_mbufs[i]); break;  // the engine kept a copy
      case nat::Verdict::to_outside_hairpin: {
        // Source translated; the destination's mapping is another worker's:
        // it arrives there as an inbound packet on the outside port.
        const unsigned owner = steering::owner_inbound(*rules, refs[i].bytes, index);
        if (owner == index) {
          c.add(PortDrop::nat);
          rte_pktmbuf_free(nat_mbufs[i]);
        } else {
          nat_mbufs[i]->packet_type = handed_ipv4;
          hand_to(owner, 1, nat_mbufs[i], l2_lens[i]);
        }
        break;
      }
      case nat::Verdict::drop:
        c.add(PortDrop::nat);
        rte_pktmbuf_free(nat_mbufs[i]);
        break;
    }
  }
  if (engine->has_released()) release_fragments();
}

// Routes a translated packet out of `egress`: TTL (RFC 1812 5.3.1), MTU
// (fragmenting when allowed, RFC 1812 5.2.6), then route(). Packets that
// fail here without an ICMP error were checked before translation when an
// error was due (fits_next_hop_or_answer, the stuck list of receive()):
// what remains is hairpinned traffic and released fragments.
void Worker::forward(unsigned egress, rte_mbuf* m, unsigned l2_in) {
  stats::PortCounters& c = counters[egress];
  auto* ip = rte_pktmbuf_mtod_offset(m, Ipv4Header*, l2_in);
  if (ip->ttl <= 1) {
    c.add(PortDrop::ttl_exceeded);
    rte_pktmbuf_free(m);
    return;
  }
  // TTL shares a 16-bit word with the protocol: update the checksum for it.
  const packet::be16 before = packet::load<packet::be16>(&ip->ttl);
  --ip->ttl;
  ip->checksum = ChecksumDelta().add(before, packet::load<packet::be16>(&ip->ttl)).apply(ip->checksum);
  const unsigned total = ip->total_length.host();
  if (total > ports[egress].cfg->mtu) [[unlikely]] {
    fragment_and_route(egress, m, l2_in);
    return;
  }
  route(egress, m, l2_in, total);
}

// Next hop, Ethernet framing for the egress port, then the neighbour's MAC
// or the ARP queue.
void Worker::route(unsigned egress, rte_mbuf* m, unsigned l2_in, unsigned total) {
  stats::PortCounters& c = counters[egress];
  const auto* ip = rte_pktmbuf_mtod_offset(m, const Ipv4Header*, l2_in);
  const std::optional<be32> next = routes_[egress].next_hop(ip->dst);
  if (!next) {
    c.add(PortDrop::no_route);
    rte_pktmbuf_free(m);
    return;
  }
  const be32 hop = *next;
  // Frame it for the egress port: drop Ethernet padding, fit the header.
  const unsigned l2_out = eth_len + (ports[egress].cfg->vlan ? vlan_len : 0);
  if (rte_pktmbuf_data_len(m) > l2_in + total) rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - l2_in - total);
  if (l2_out < l2_in) rte_pktmbuf_adj(m, static_cast<std::uint16_t>(l2_in - l2_out));
  else if (l2_out > l2_in && !rte_pktmbuf_prepend(m, static_cast<std::uint16_t>(l2_out - l2_in))) {
    c.add(PortDrop::no_mbuf);
    rte_pktmbuf_free(m);
    return;
  }
  if (const MacAddress* mac = neighbours[egress]->lookup(hop, now_ms)) {
    send_l2(egress, m, *mac);
    return;
  }
  switch (neighbours[egress]->enqueue(hop, m, now_ms)) {
    case NeighbourTable::QueueResult::queued: break;
    case NeighbourTable::QueueResult::queued_send_request: send_arp_request(egress, hop); break;
    case NeighbourTable::QueueResult::full:
    case NeighbourTable::QueueResult::held_full:
      c.add(PortDrop::neighbour_queue_full);
      rte_pktmbuf_free(m);
      break;
    case NeighbourTable::QueueResult::table_full:
      c.add(PortDrop::neighbour_table_full);
      rte_pktmbuf_free(m);
      break;
  }
}

// Writes the Ethernet (and 802.1Q) header of a frame whose L2 room is
// already the egress size, and queues it for transmission.
void Worker::send_l2(unsigned egress, rte_mbuf* m, const MacAddress& dst) {
  auto* eth = rte_pktmbuf_mtod(m, std::uint8_t*);
  std::memcpy(eth, dst.bytes.data(), 6);
  std::memcpy(eth + 6, ports[egress].mac.bytes.data(), 6);
  const std::uint16_t vlan = ports[egress].cfg->vlan;
  if (vlan) {
    eth[12] = 0x81, eth[13] = 0x00;
    eth[14] = static_cast<std::uint8_t>(vlan >> 8), eth[15] = static_cast<std::uint8_t>(vlan);
    eth[16] = 0x08, eth[17] = 0x00;
  } else {
    eth[12] = 0x08, eth[13] = 0x00;
  }
  transmit(egress, m);
}

void Worker::transmit(unsigned port, rte_mbuf* m) {
  TxBuffer& b = tx[port];
  if (b.count == TxBuffer::capacity) flush(port);
  b.mbufs[b.count++] = m;
}

void Worker::flush(unsigned port) {
  TxBuffer& b = tx[port];
  if (b.count == 0) return;
  std::uint64_t bytes = 0;
  for (unsigned i = 0; i < b.count; ++i) bytes += rte_pktmbuf_pkt_len(b.mbufs[i]);
  const std::uint16_t sent = rte_eth_tx_burst(ports[port].id, queue, b.mbufs, static_cast<std::uint16_t>(b.count));
  for (unsigned i = sent; i < b.count; ++i) {
    bytes -= rte_pktmbuf_pkt_len(b.mbufs[i]);
    rte_pktmbuf_free(b.mbufs[i]);
  }
  counters[port].tx_packets += sent;
  counters[port].tx_bytes += bytes;
  if (sent < b.count) counters[port].add(PortDrop::tx_full, b.count - sent);
  b.count = 0;
}

// Out-of-order fragments the engine held are released as plain bytes once
// their first fragment has gone: give each a buffer and route it.
void Worker::release_fragments() {
  engine->drain_released([&](std::span<std::uint8_t> bytes, nat::Verdict v) {
    const unsigned egress = v == nat::Verdict::to_outside ? 1 : 0;
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) {
      counters[egress].add(PortDrop::no_mbuf);
      return;
    }
    auto* data = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(eth_len + bytes.size())));
    if (!data) {
      counters[egress].add(PortDrop::no_mbuf);
      rte_pktmbuf_free(m);
      return;
    }
    std::memcpy(data + eth_len, bytes.data(), bytes.size());
    forward(egress, m, eth_len);
  });
}

void Worker::release_buffers() {
  for (unsigned p = 0; p < tx.size(); ++p) {
    for (unsigned i = 0; i < tx[p].count; ++i) rte_pktmbuf_free(tx[p].mbufs[i]);
    tx[p].count = 0;
  }
  neighbours.clear();  // frees queued packets
}

}  // namespace passgate::dataplane
