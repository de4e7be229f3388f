#include "inside.hpp"

#include "wire.hpp"

#include <cstring>

namespace pgen {

void InsideSide::build(rte_mbuf* m, std::uint64_t f, std::uint16_t trial, Phase phase, std::uint64_t now) {
  const FlowTuple t = model->tuple(f);
  const unsigned l4_len = l4_header_len(t.proto);
  const unsigned min_len = eth_len + ipv4_len + l4_len + stamp_len;
  const unsigned len = std::max(frame_len, min_len);
  auto* frame = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(len)));
  if (!frame) return;  // cannot happen: frame sizes are checked against the buffer size at start
  // Headers and stamp are written below; only the padding needs zeros,
  // which keeps the checksums to the header bytes.
  std::memset(frame + min_len, 0, len - min_len);
  std::memcpy(frame, &port->peer_mac, 6);
  std::memcpy(frame + 6, &port->mac, 6);
  store_be16(frame + 12, RTE_ETHER_TYPE_IPV4);
  std::uint8_t* ip = frame + eth_len;
  const std::uint16_t ip_total = static_cast<std::uint16_t>(len - eth_len);
  ip[0] = 0x45;
  ip[1] = 0;
  store_be16(ip + 2, ip_total);
  store_be16(ip + 4, static_cast<std::uint16_t>(f));
  store_be16(ip + 6, 0);
  ip[8] = 64;
  ip[9] = ip_proto(t.proto);
  store_be16(ip + 10, 0);
  store_be32(ip + 12, t.src);
  store_be32(ip + 16, t.dst);
  store_be16(ip + 10, fold_complement(ones_sum(ip, ipv4_len)));

  std::uint8_t* l4 = ip + ipv4_len;
  std::uint8_t* stamp = l4 + l4_len;
  store_be32(stamp, stamp_magic);
  store_be16(stamp + 4, trial);
  store_be16(stamp + 6, static_cast<std::uint16_t>(f >> 32));  // high bits of the flow number
  std::memcpy(stamp + 8, &now, 8);
  const std::uint16_t l4_total = static_cast<std::uint16_t>(ip_total - ipv4_len);
  const std::uint32_t flow_low = static_cast<std::uint32_t>(f);
  switch (t.proto) {
    case Proto::udp:
    case Proto::natt:
      store_be16(l4, t.sport);
      store_be16(l4 + 2, t.dport);
      store_be16(l4 + 4, l4_total);
      store_be16(l4 + 6, 0);
      break;
    case Proto::tcp:
      store_be16(l4, t.sport);
      store_be16(l4 + 2, t.dport);
      store_be32(l4 + 4, flow_low);  // sequence number: the flow, for the reader of a capture
      store_be32(l4 + 8, 0);
      l4[12] = 5 << 4;
      // Warm-up and new-connection packets open the session (SYN); the
      // measured ones are the established flow's (ACK).
      l4[13] = phase == Phase::measure ? tcp_ack : tcp_syn;
      store_be16(l4 + 14, 65535);
      store_be16(l4 + 16, 0);
      store_be16(l4 + 18, 0);
      break;
    case Proto::icmp:
      l4[0] = 8;  // echo request
      l4[1] = 0;
      store_be16(l4 + 2, 0);
      store_be16(l4 + 4, t.sport);
      store_be16(l4 + 6, static_cast<std::uint16_t>(f));
      break;
    case Proto::esp:
      store_be32(l4, t.spi);
      store_be32(l4 + 4, 1);
      break;
    case Proto::gre:
      store_be16(l4, 0);
      store_be16(l4 + 2, RTE_ETHER_TYPE_IPV4);
      break;
  }
  if (t.proto == Proto::udp || t.proto == Proto::natt || t.proto == Proto::tcp) {
    const unsigned csum_off = t.proto == Proto::tcp ? 16 : 6;
    std::uint32_t sum = pseudo_header_sum(t.src, t.dst, ip[9], l4_total);
    sum = ones_sum(l4, l4_len + stamp_len, sum);
    std::uint16_t c = fold_complement(sum);
    if (t.proto != Proto::tcp && c == 0) c = 0xffff;
    store_be16(l4 + csum_off, c);
  } else if (t.proto == Proto::icmp) {
    store_be16(l4 + 2, fold_complement(ones_sum(l4, l4_len + stamp_len)));
  }
}

void InsideSide::receive_answer(rte_mbuf* m, std::uint64_t now, std::uint16_t trial, bool warmup,
                                std::uint16_t queue) {
  const std::uint8_t* frame = rte_pktmbuf_mtod(m, const std::uint8_t*);
  const unsigned len = rte_pktmbuf_data_len(m);
  if (len < eth_len + ipv4_len || load_be16(frame + 12) != RTE_ETHER_TYPE_IPV4) {
    ++inbound_rx.foreign;
    return;
  }
  const std::uint8_t* ip = frame + eth_len;
  const unsigned ihl = (ip[0] & 0x0f) * 4u;
  Proto proto;
  if (!proto_of_ip(ip[9], proto)) {
    ++inbound_rx.foreign;
    return;
  }
  const std::uint8_t* l4 = ip + ihl;
  const unsigned l4_len = l4_header_len(proto);
  if (len < eth_len + ihl + l4_len + stamp_len || load_be32(l4 + l4_len) != stamp_magic) {
    ++inbound_rx.foreign;
    return;
  }
  const std::uint8_t* stamp = l4 + l4_len;
  if (load_be16(stamp + 4) != trial) {
    ++inbound_rx.stale;
    return;
  }
  std::uint64_t sent_tsc;
  std::memcpy(&sent_tsc, stamp + 8, 8);
  ++inbound_rx.received;
  inbound_rx.latency.add((now - sent_tsc) * 1000000000ull / hz());
  // Recover the flow number from the answer: it must come back to one of
  // our subscribers, and to the flow's own port, identifier or SPI.
  const std::uint32_t dst = load_be32(ip + 16);
  const std::uint32_t server = load_be32(ip + 12);
  bool match = dst - model->subscriber_base < model->subscribers;
  std::uint64_t f = UINT64_MAX;  // unknown: counted, but not traced to one flow
  const std::uint64_t sub = dst - model->subscriber_base;
  // While every flow has a server of its own, the server names the flow.
  const bool server_names_flow = model->flows() <= model->servers;
  if (match) {
    switch (proto) {
      case Proto::udp:
      case Proto::tcp:
      case Proto::natt:
        if (proto == Proto::udp && load_be16(l4) == natt_port && load_be16(l4 + 2) == natt_port) {
          if (server_names_flow) f = server - model->server_base;
        } else {
          f = std::uint64_t{static_cast<std::uint16_t>(load_be16(l4 + 2) - 1024)} * model->subscribers + sub;
        }
        break;
      case Proto::icmp:
        f = std::uint64_t{static_cast<std::uint16_t>(load_be16(l4 + 4) - 1024)} * model->subscribers + sub;
        break;
      case Proto::esp: {
        const std::uint32_t spi = load_be32(l4) ^ esp_reply_flip;
        f = spi - 0x01000000u;
        match = (spi & 0xff000000u) == 0x01000000u && f % model->subscribers == sub;
        break;
      }
      case Proto::gre:
        if (server_names_flow) f = server - model->server_base;
        break;
    }
    if (f != UINT64_MAX && f < model->flows() && f % model->subscribers != sub) match = false;
  }
  if (!match) {
    ++inbound_rx.mismatched;
    return;
  }
  if (port->tx_queues > 1) subscriber_queue[sub] = static_cast<std::uint8_t>(queue % port->tx_queues);
  if (warmup && f != UINT64_MAX && f < answered_bits.size() * 64) answered_bits[f / 64] |= 1ull << (f % 64);
}

void InsideSide::poll(bool warmup) {
  for (unsigned q = 0; q < port->rx_queues; ++q) {
    rte_mbuf* rx[burst_size];
    const unsigned n = rte_eth_rx_burst(port->id, static_cast<std::uint16_t>(q), rx, burst_size);
    if (n == 0) continue;
    port->rx_per_queue[q % Port::max_queues] += n;
    const std::uint64_t now = rte_rdtsc();
    const std::uint16_t trial = state->trial.load(std::memory_order_relaxed);
    for (unsigned i = 0; i < n; ++i) {
      if (handle_arp(*port, rx[i])) continue;
      receive_answer(rx[i], now, trial, warmup, static_cast<std::uint16_t>(q));
      rte_pktmbuf_free(rx[i]);
    }
  }
}

}  // namespace pgen
