#include "outside.hpp"

#include "wire.hpp"

#include <rte_cycles.h>

#include <cstring>

namespace pgen {

bool OutsideSide::answer(rte_mbuf* m, std::uint64_t now, std::uint16_t trial) {
  std::uint8_t* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
  const unsigned len = rte_pktmbuf_data_len(m);
  if (len < eth_len + ipv4_len || load_be16(frame + 12) != RTE_ETHER_TYPE_IPV4) return false;
  std::uint8_t* ip = frame + eth_len;
  const unsigned ihl = (ip[0] & 0x0f) * 4u;
  Proto proto;
  if (!proto_of_ip(ip[9], proto)) return false;
  std::uint8_t* l4 = ip + ihl;
  const unsigned l4_len = l4_header_len(proto);
  if (len < eth_len + ihl + l4_len + stamp_len) return false;
  std::uint8_t* stamp = l4 + l4_len;
  if (load_be32(stamp) != stamp_magic) return false;
  if (load_be16(stamp + 4) != trial) {
    ++outbound_rx.stale;
    rte_pktmbuf_free(m);
    return true;
  }
  std::uint64_t sent_tsc;
  std::memcpy(&sent_tsc, stamp + 8, 8);
  ++outbound_rx.received;
  outbound_rx.latency.add((now - sent_tsc) * 1000000000ull / hz);
  const std::uint32_t src = load_be32(ip + 12);
  if (src - model->subscriber_base < model->subscribers) ++outbound_rx.untranslated;
  else publics.add(src);
  if (!reply) {
    rte_pktmbuf_free(m);
    return true;
  }

  // IPv4: swap addresses (the checksum sum is unchanged by a swap), fresh
  // TTL, header checksum recomputed over its 20 bytes.
  std::uint8_t tmp[4];
  std::memcpy(tmp, ip + 12, 4);
  std::memcpy(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, tmp, 4);
  ip[8] = 64;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, fold_complement(ones_sum(ip, ihl)));

  std::uint8_t new_stamp_tsc[8];
  std::memcpy(new_stamp_tsc, &now, 8);
  switch (proto) {
    case Proto::udp:
    case Proto::natt:
    case Proto::tcp: {
      std::memcpy(tmp, l4, 2);
      std::memcpy(l4, l4 + 2, 2);
      std::memcpy(l4 + 2, tmp, 2);
      std::uint8_t* csum = l4 + (proto == Proto::tcp ? 16 : 6);
      if (proto == Proto::tcp) {
        // A SYN is answered with SYN|ACK: the DUT needs both SYNs to
        // consider the session established (RFC 7857 section 3).
        std::uint8_t old_word[2] = {l4[12], l4[13]};
        l4[13] = (l4[13] & tcp_syn) ? (tcp_syn | tcp_ack) : tcp_ack;
        checksum_replace(csum, old_word, l4 + 12, 2, false);
      }
      if (proto == Proto::tcp || load_be16(csum) != 0)
        checksum_replace(csum, stamp + 8, new_stamp_tsc, 8, proto != Proto::tcp);
      break;
    }
    case Proto::icmp: {
      const std::uint8_t old_word[2] = {l4[0], l4[1]};
      l4[0] = 0;  // echo reply (RFC 792)
      checksum_replace(l4 + 2, old_word, l4, 2, false);
      checksum_replace(l4 + 2, stamp + 8, new_stamp_tsc, 8, false);
      break;
    }
    case Proto::esp: store_be32(l4, load_be32(l4) ^ esp_reply_flip); break;
    case Proto::gre: break;
  }
  std::memcpy(stamp + 8, new_stamp_tsc, 8);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  eth->dst_addr = port->peer_mac;
  eth->src_addr = port->mac;
  return true;
}

void OutsideSide::poll_queue(std::uint16_t queue) {
  rte_mbuf* rx[burst_size];
  const unsigned n = rte_eth_rx_burst(port->id, queue, rx, burst_size);
  if (n == 0) return;
  port->rx_per_queue[queue % Port::max_queues] += n;
  const std::uint64_t now = rte_rdtsc();
  const std::uint16_t trial = state->trial.load(std::memory_order_relaxed);
  rte_mbuf* answers[burst_size];
  unsigned count = 0;
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = rx[i];
    if (handle_arp(*port, m)) continue;
    const std::uint64_t before = outbound_rx.received;
    if (!answer(m, now, trial)) {
      ++outbound_rx.foreign;
      rte_pktmbuf_free(m);
      continue;
    }
    if (reply && outbound_rx.received != before) answers[count++] = m;
  }
  if (count) {
    const unsigned sent = transmit(port->id, answers, count, static_cast<std::uint16_t>(queue % port->tx_queues));
    inbound_tx.sent += count;
    inbound_tx.tx_refused += count - sent;
  }
}

void OutsideSide::serve_snapshot() {
  const int req = state->snapshot_request.load(std::memory_order_acquire);
  if (req == state->snapshot_done.load(std::memory_order_relaxed)) return;
  snapshot_out = outbound_rx;
  snapshot_in = inbound_tx;
  outbound_rx = DirectionCounters{};
  inbound_tx = DirectionCounters{};
  state->snapshot_done.store(req, std::memory_order_release);
}

int outside_lcore_main(void* arg) {
  auto* side = static_cast<OutsideSide*>(arg);
  while (!side->state->stop_outside_lcore.load(std::memory_order_relaxed)) {
    side->poll();
    side->serve_snapshot();
  }
  return 0;
}

}  // namespace pgen
