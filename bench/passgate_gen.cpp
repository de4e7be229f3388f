// passgate-gen: a DPDK packet generator and sink for benchmarking a NAT44
// gateway (passgate, or any other DUT) with two ports: the "inside" port
// plays N subscribers with M flows each, the "outside" port plays the
// internet: it receives the translated packets, counts them, and answers
// each one to the public address and port the DUT chose, so both directions
// carry load and the answers must be translated back.
//
// Theory of operation
// - A flow is a number f in [0, N*M). Its addresses, ports, SPI and protocol
//   are computed from f (FlowModel), so 16M flows need no per-flow table;
//   the only per-flow state is one bit during warm-up.
// - Every generated packet carries a 16-byte stamp after its L4 header:
//   magic, trial number, flow number and the TSC at transmission. The
//   receiver recognises its own packets by the magic, discards stragglers of
//   an earlier trial by the trial number, checks the flow's translation and
//   takes the one-way latency from the TSC (both ports are in this process,
//   so they share one clock).
// - The outside answers in place: addresses and ports swapped, TCP SYN
//   answered by SYN|ACK (so the DUT sees the handshake it needs to call a
//   session established), ICMP echo by echo reply, ESP with the server's SPI
//   (a fixed function of the client's). Checksums are patched per RFC 1624,
//   and the stamp gets a fresh TSC so the return path has its own latency.
// - Warm-up (as FD.io CSIT does for stateful NAT): every flow is sent once
//   at a modest rate, missing answers are retried, and only then does the
//   measurement start, so trials see established sessions only.
// - RFC 2544 section 26.1 throughput: a binary search over the offered rate
//   of trials of fixed length; each trial is followed by a drain period in
//   which stragglers are still received (RFC 2544 section 23 waits 2 s) and
//   a settle period before the next (section 23 asks for at least 5 s; both
//   are options so that a full run fits a small machine). Two rates are
//   searched together: the non-drop rate (zero loss, section 26.1) and the
//   partial-drop rate (loss at most --pdr-loss, 0.5% by default), as
//   CSIT's MLRsearch reports them.
// - Connection rate (--mode cps): every packet is a flow never used before,
//   so each one makes the DUT create a mapping and a session.
//
// The output is one JSON document (stdout or --json FILE); bench/run_perf.py
// turns runs into tables and plots.
#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_version.h>

#include <arpa/inet.h>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace {

// ---------------------------------------------------------------- helpers

std::atomic<bool> interrupted{false};
void on_signal(int) { interrupted = true; }

// Host-order IPv4 addresses throughout; converted when written to a header.
std::optional<std::uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}
std::string ipv4_text(std::uint32_t host_order) {
  return fmt::format("{}.{}.{}.{}", host_order >> 24, (host_order >> 16) & 0xff, (host_order >> 8) & 0xff,
                     host_order & 0xff);
}

void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void store_be32(std::uint8_t* p, std::uint32_t v) {
  store_be16(p, static_cast<std::uint16_t>(v >> 16));
  store_be16(p + 2, static_cast<std::uint16_t>(v));
}
std::uint16_t load_be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{load_be16(p)} << 16) | load_be16(p + 2);
}

// RFC 1071 one's complement sum over big-endian 16-bit words. The generator
// keeps its own implementation on purpose: checking the DUT's checksums
// with the DUT's code would prove nothing.
std::uint32_t ones_sum(const std::uint8_t* p, std::size_t len, std::uint32_t sum = 0) {
  for (; len >= 2; p += 2, len -= 2) sum += load_be16(p);
  if (len) sum += static_cast<std::uint32_t>(p[0] << 8);
  return sum;
}
std::uint16_t fold_complement(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}
std::uint32_t pseudo_header_sum(std::uint32_t src, std::uint32_t dst, std::uint8_t proto, std::uint16_t length) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + length;
}
// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for every changed 16-bit word.
void checksum_replace(std::uint8_t* checksum_field, const std::uint8_t* old_bytes, const std::uint8_t* new_bytes,
                      std::size_t len, bool udp) {
  std::uint32_t sum = static_cast<std::uint16_t>(~load_be16(checksum_field));
  for (std::size_t i = 0; i + 1 < len; i += 2) {
    sum += static_cast<std::uint16_t>(~load_be16(old_bytes + i));
    sum += load_be16(new_bytes + i);
  }
  std::uint16_t result = fold_complement(sum);
  if (udp && result == 0) result = 0xffff;  // RFC 768: 0 means "no checksum"
  store_be16(checksum_field, result);
}

// ---------------------------------------------------------------- traffic model

enum class Proto : std::uint8_t { udp, tcp, icmp, esp, gre, natt };
constexpr std::array<const char*, 6> proto_names{"udp", "tcp", "icmp", "esp", "gre", "natt"};

constexpr std::uint8_t ip_proto_icmp = 1, ip_proto_tcp = 6, ip_proto_udp = 17, ip_proto_gre = 47, ip_proto_esp = 50;
constexpr std::uint8_t tcp_syn = 0x02, tcp_ack = 0x10;
constexpr unsigned eth_len = 14, ipv4_len = 20, stamp_len = 16;
constexpr std::uint32_t stamp_magic = 0x50474e31;  // "PGN1"
// The server's ESP SPI is the client's with the top bit flipped: the outside
// can answer any SA without state, and the inside can check the answer.
constexpr std::uint32_t esp_reply_flip = 0x80000000u;
constexpr std::uint16_t natt_port = 4500;  // RFC 3948

unsigned l4_header_len(Proto p) {
  switch (p) {
    case Proto::udp:
    case Proto::natt:
    case Proto::icmp:
    case Proto::esp: return 8;  // UDP, ICMP echo, ESP SPI + sequence
    case Proto::tcp: return 20;
    case Proto::gre: return 4;  // RFC 2784 without checksum
  }
  return 8;
}
std::uint8_t ip_proto(Proto p) {
  switch (p) {
    case Proto::udp:
    case Proto::natt: return ip_proto_udp;
    case Proto::tcp: return ip_proto_tcp;
    case Proto::icmp: return ip_proto_icmp;
    case Proto::esp: return ip_proto_esp;
    case Proto::gre: return ip_proto_gre;
  }
  return ip_proto_udp;
}

struct FlowTuple {
  std::uint32_t src, dst;  // host order
  std::uint16_t sport, dport;  // ICMP: sport is the echo identifier
  std::uint32_t spi;
  Proto proto;
};

// N subscribers x M flows. Subscribers are interleaved (flow f belongs to
// subscriber f mod N), so consecutive packets come from different
// subscribers and spread over the DUT's tables as real traffic does.
struct FlowModel {
  std::uint32_t subscribers = 1000;
  std::uint64_t flows_per_subscriber = 1;
  std::uint32_t subscriber_base = 0;  // first subscriber address, host order
  std::uint32_t servers = 65536;
  std::uint32_t server_base = 0;
  std::uint16_t udp_port = 5001, tcp_port = 80;
  std::array<Proto, 100> mix{};  // protocol per percent

  [[nodiscard]] std::uint64_t flows() const { return std::uint64_t{subscribers} * flows_per_subscriber; }

  [[nodiscard]] Proto proto_of(std::uint64_t f) const {
    // A multiplicative hash spreads the mix evenly over flows and
    // subscribers, whatever N and M are.
    return mix[(f * 0x9E3779B97F4A7C15ull >> 32) % 100];
  }

  [[nodiscard]] FlowTuple tuple(std::uint64_t f) const {
    FlowTuple t{};
    const std::uint64_t sub = f % subscribers;
    const std::uint64_t j = f / subscribers;
    t.proto = proto_of(f);
    t.src = subscriber_base + static_cast<std::uint32_t>(sub);
    // Source ports 1024..65023; beyond 64000 flows per subscriber the server
    // moves on, so (source, port, destination) stays unique for any f.
    t.sport = static_cast<std::uint16_t>(1024 + j % 64000);
    t.dst = server_base + static_cast<std::uint32_t>((f + j / 64000) % servers);
    switch (t.proto) {
      case Proto::udp: t.dport = udp_port; break;
      case Proto::tcp: t.dport = tcp_port; break;
      case Proto::icmp: t.dport = 0; break;
      case Proto::natt: t.sport = t.dport = natt_port; break;
      case Proto::esp:
      case Proto::gre:
        // No ports: the DUT tells tunnels apart by (inside address, server),
        // so every such flow gets a server of its own while there are enough.
        t.dst = server_base + static_cast<std::uint32_t>(f % servers);
        break;
    }
    t.spi = 0x01000000u + static_cast<std::uint32_t>(f & 0x00ffffffu);
    return t;
  }
};

bool parse_mix(const std::string& text, std::array<Proto, 100>& mix, std::string& error) {
  std::vector<std::pair<Proto, unsigned>> parts;
  unsigned total = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const std::size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    unsigned weight = 100;
    if (colon != std::string::npos) {
      try {
        weight = static_cast<unsigned>(std::stoul(item.substr(colon + 1)));
      } catch (...) {
        error = fmt::format("bad weight in '{}'", item);
        return false;
      }
    }
    auto it = std::find_if(proto_names.begin(), proto_names.end(), [&](const char* n) { return name == n; });
    if (it == proto_names.end()) {
      error = fmt::format("unknown protocol '{}' (udp, tcp, icmp, esp, gre, natt)", name);
      return false;
    }
    parts.emplace_back(static_cast<Proto>(it - proto_names.begin()), weight);
    total += weight;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (total == 0) {
    error = "the protocol mix has no weight";
    return false;
  }
  // Weights are shares of the total, rounded to whole percent.
  unsigned slot = 0;
  unsigned acc = 0;
  for (const auto& [proto, weight] : parts) {
    acc += weight;
    const unsigned end = (acc * 100 + total / 2) / total;
    for (; slot < end && slot < 100; ++slot) mix[slot] = proto;
  }
  for (; slot < 100; ++slot) mix[slot] = parts.back().first;
  return true;
}

// ---------------------------------------------------------------- statistics

// Latency in 100 ns steps up to 1 ms, then 10 us steps up to 101 ms, then
// one overflow bucket: fine where memif and af_packet latencies lie, and
// fixed-size so that recording is one increment.
struct LatencyHistogram {
  static constexpr unsigned fine = 10000, coarse = 10000;
  std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(fine + coarse + 1);
  std::uint64_t count = 0, sum_ns = 0, max_ns = 0, min_ns = UINT64_MAX;

  void add(std::uint64_t ns) {
    unsigned b;
    if (ns < 100ull * fine) b = static_cast<unsigned>(ns / 100);
    else if (ns < 100ull * fine + 10000ull * coarse) b = fine + static_cast<unsigned>((ns - 100ull * fine) / 10000);
    else b = fine + coarse;
    ++buckets[b];
    ++count;
    sum_ns += ns;
    max_ns = std::max(max_ns, ns);
    min_ns = std::min(min_ns, ns);
  }
  void merge(const LatencyHistogram& o) {
    for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum_ns += o.sum_ns;
    max_ns = std::max(max_ns, o.max_ns);
    min_ns = std::min(min_ns, o.min_ns);
  }
  // Upper edge of the bucket holding the q-quantile.
  [[nodiscard]] double percentile_us(double q) const {
    if (count == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
    std::uint64_t seen = 0;
    for (unsigned b = 0; b < buckets.size(); ++b) {
      seen += buckets[b];
      if (seen >= rank && seen > 0) {
        if (b < fine) return (b + 1) * 0.1;
        if (b < fine + coarse) return 100.0 * fine / 1000.0 + (b - fine + 1) * 10.0;
        return static_cast<double>(max_ns) / 1000.0;
      }
    }
    return static_cast<double>(max_ns) / 1000.0;
  }
};

// What one port saw or did during one trial.
struct DirectionCounters {
  // Offered to the DUT. A frame the port refuses (its ring is full) counts
  // as offered and lost: on memif a full ring is the DUT's receive ring
  // not being drained, exactly what a NIC's receive drop is on hardware,
  // where the wire never pushes back (RFC 2544 section 26.1 counts frames
  // sent, not frames the DUT was ready for).
  std::uint64_t sent = 0;
  std::uint64_t tx_refused = 0;    // part of `sent`: refused by the port's full ring
  std::uint64_t received = 0;      // our packets of this trial, arrived at the far port
  std::uint64_t stale = 0;         // ours, but from an earlier trial (stragglers)
  std::uint64_t foreign = 0;       // not ours: ARP aside, anything else the port received
  std::uint64_t untranslated = 0;  // (outbound) arrived with a subscriber source address
  std::uint64_t mismatched = 0;    // (inbound) answer did not come back to the flow's own address/port
  LatencyHistogram latency;

  void merge(const DirectionCounters& o) {
    sent += o.sent;
    tx_refused += o.tx_refused;
    received += o.received;
    stale += o.stale;
    foreign += o.foreign;
    untranslated += o.untranslated;
    mismatched += o.mismatched;
    latency.merge(o.latency);
  }
};

// Distinct public source addresses seen on the outside (the first few kept,
// to show in the report that translation happened).
struct PublicAddresses {
  static constexpr unsigned keep = 8;
  std::array<std::uint32_t, keep> seen{};
  unsigned count = 0;
  bool more = false;
  void add(std::uint32_t a) {
    for (unsigned i = 0; i < count; ++i)
      if (seen[i] == a) return;
    if (count < keep) seen[count++] = a;
    else more = true;
  }
};

// ---------------------------------------------------------------- ports

struct Port {
  std::string device;
  std::uint16_t id = 0;
  rte_ether_addr mac{};
  rte_ether_addr peer_mac{};
  bool peer_known = false;
  std::uint32_t ip = 0, peer_ip = 0;  // ours and the DUT's next hop on this link
  std::uint64_t arp_answered = 0, arp_sent = 0;
  // Queues: with a multi-worker DUT each of its workers transmits on a queue
  // of its own (our receive queue of the same number), and each of its
  // receive queues (our transmit queues) is read by one worker.
  static constexpr unsigned max_queues = 16;
  unsigned rx_queues = 1, tx_queues = 1;
  std::array<std::uint64_t, max_queues> rx_per_queue{};  // whole run, ours and foreign
};

std::string device_name(const std::string& device) { return device.substr(0, device.find(',')); }
bool is_vdev(const std::string& device) { return device.rfind("net_", 0) == 0; }

bool setup_port(Port& port, rte_mempool* pool, std::string& error) {
  if (rte_eth_dev_get_port_by_name(device_name(port.device).c_str(), &port.id) != 0) {
    error = fmt::format("device {} not found", port.device);
    return false;
  }
  rte_eth_conf conf{};
  if (int rc = rte_eth_dev_configure(port.id, static_cast<std::uint16_t>(port.rx_queues),
                                     static_cast<std::uint16_t>(port.tx_queues), &conf);
      rc != 0) {
    error = fmt::format("{}: configure: {}", port.device, rte_strerror(-rc));
    return false;
  }
  std::uint16_t rxd = 1024, txd = 1024;
  rte_eth_dev_adjust_nb_rx_tx_desc(port.id, &rxd, &txd);
  const int socket = std::max(0, rte_eth_dev_socket_id(port.id));
  for (std::uint16_t q = 0; q < port.rx_queues; ++q)
    if (int rc = rte_eth_rx_queue_setup(port.id, q, rxd, static_cast<unsigned>(socket), nullptr, pool); rc != 0) {
      error = fmt::format("{}: rx queue {}: {}", port.device, q, rte_strerror(-rc));
      return false;
    }
  for (std::uint16_t q = 0; q < port.tx_queues; ++q)
    if (int rc = rte_eth_tx_queue_setup(port.id, q, txd, static_cast<unsigned>(socket), nullptr); rc != 0) {
      error = fmt::format("{}: tx queue {}: {}", port.device, q, rte_strerror(-rc));
      return false;
    }
  if (int rc = rte_eth_dev_start(port.id); rc != 0) {
    error = fmt::format("{}: start: {}", port.device, rte_strerror(-rc));
    return false;
  }
  rte_eth_promiscuous_enable(port.id);
  rte_eth_macaddr_get(port.id, &port.mac);
  return true;
}

// Sends what fits; what the PMD refuses is freed and counted, never retried
// (a retry would shift the offered load in time).
unsigned transmit(std::uint16_t port, rte_mbuf** mbufs, unsigned n, std::uint16_t queue = 0) {
  const unsigned sent = rte_eth_tx_burst(port, queue, mbufs, static_cast<std::uint16_t>(n));
  if (sent < n) rte_pktmbuf_free_bulk(mbufs + sent, n - sent);
  return sent;
}

// RFC 826 on our side of each link: answer requests for our address, learn
// the DUT's MAC from its replies (and requests), ask for it at start.
void send_arp_request(Port& port, rte_mempool* pool) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (!m) return;
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
  std::memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
  eth->src_addr = port.mac;
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
  arp->arp_data.arp_sha = port.mac;
  arp->arp_data.arp_sip = rte_cpu_to_be_32(port.ip);
  std::memset(&arp->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
  arp->arp_data.arp_tip = rte_cpu_to_be_32(port.peer_ip);
  port.arp_sent += transmit(port.id, &m, 1);
}

// Returns true when the frame was ARP (consumed: answered or freed).
bool handle_arp(Port& port, rte_mbuf* m) {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) return false;
  if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
    rte_pktmbuf_free(m);
    return true;
  }
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  const std::uint32_t sender = rte_be_to_cpu_32(arp->arp_data.arp_sip);
  const std::uint32_t target = rte_be_to_cpu_32(arp->arp_data.arp_tip);
  if (sender == port.peer_ip) {
    port.peer_mac = arp->arp_data.arp_sha;
    port.peer_known = true;
  }
  if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) && target == port.ip) {
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = arp->arp_data.arp_sha;
    arp->arp_data.arp_tip = arp->arp_data.arp_sip;
    arp->arp_data.arp_sha = port.mac;
    arp->arp_data.arp_sip = rte_cpu_to_be_32(port.ip);
    eth->dst_addr = eth->src_addr;
    eth->src_addr = port.mac;
    port.arp_answered += transmit(port.id, &m, 1);
    return true;
  }
  rte_pktmbuf_free(m);
  return true;
}

// ---------------------------------------------------------------- shared run state

constexpr unsigned burst_size = 32;
constexpr unsigned max_backlog = 512;

enum class Phase : std::uint8_t { warmup, measure, cps };

struct RunState {
  std::atomic<std::uint16_t> trial{0};  // stamped into packets; receivers count only the current one
  std::atomic<Phase> phase{Phase::warmup};
  std::atomic<bool> stop_outside_lcore{false};
  // Two-lcore mode: the main lcore asks the outside lcore for its counters
  // (and a reset) through this handshake instead of reading them racily.
  std::atomic<int> snapshot_request{0};
  std::atomic<int> snapshot_done{0};
};

// ---------------------------------------------------------------- outside (the internet)

struct OutsideSide {
  Port* port = nullptr;
  rte_mempool* pool = nullptr;
  const FlowModel* model = nullptr;
  RunState* state = nullptr;
  bool reply = true;
  std::uint64_t hz = 1;
  DirectionCounters outbound_rx;  // received here: sent, refused are the inside's
  DirectionCounters inbound_tx;   // answers sent from here
  PublicAddresses publics;
  DirectionCounters snapshot_out, snapshot_in;  // two-lcore handover

  // Turns an arriving translated packet into the server's answer in place.
  // Returns false when it is not one of ours.
  bool answer(rte_mbuf* m, std::uint64_t now, std::uint16_t trial) {
    std::uint8_t* frame = rte_pktmbuf_mtod(m, std::uint8_t*);
    const unsigned len = rte_pktmbuf_data_len(m);
    if (len < eth_len + ipv4_len || load_be16(frame + 12) != RTE_ETHER_TYPE_IPV4) return false;
    std::uint8_t* ip = frame + eth_len;
    const unsigned ihl = (ip[0] & 0x0f) * 4u;
    Proto proto;
    switch (ip[9]) {
      case ip_proto_udp: proto = Proto::udp; break;
      case ip_proto_tcp: proto = Proto::tcp; break;
      case ip_proto_icmp: proto = Proto::icmp; break;
      case ip_proto_esp: proto = Proto::esp; break;
      case ip_proto_gre: proto = Proto::gre; break;
      default: return false;
    }
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

  // Every receive queue; an answer leaves on the queue of the same number
  // (modulo ours): the DUT's worker that sent the packet owns its mapping,
  // so its answer goes back to that worker's receive queue, as an RSS NIC
  // programmed with passgate's comb keys would deliver it.
  void poll() {
    for (unsigned q = 0; q < port->rx_queues; ++q) poll_queue(static_cast<std::uint16_t>(q));
  }

  void poll_queue(std::uint16_t queue) {
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
      const unsigned sent =
          transmit(port->id, answers, count, static_cast<std::uint16_t>(queue % port->tx_queues));
      inbound_tx.sent += count;
      inbound_tx.tx_refused += count - sent;
    }
  }

  // Two-lcore mode: serve snapshot requests from the main lcore.
  void serve_snapshot() {
    const int req = state->snapshot_request.load(std::memory_order_acquire);
    if (req == state->snapshot_done.load(std::memory_order_relaxed)) return;
    snapshot_out = outbound_rx;
    snapshot_in = inbound_tx;
    outbound_rx = DirectionCounters{};
    inbound_tx = DirectionCounters{};
    state->snapshot_done.store(req, std::memory_order_release);
  }
};

int outside_lcore_main(void* arg) {
  auto* side = static_cast<OutsideSide*>(arg);
  while (!side->state->stop_outside_lcore.load(std::memory_order_relaxed)) {
    side->poll();
    side->serve_snapshot();
  }
  return 0;
}

// ---------------------------------------------------------------- inside (subscribers)

struct InsideSide {
  Port* port = nullptr;
  rte_mempool* pool = nullptr;
  const FlowModel* model = nullptr;
  RunState* state = nullptr;
  unsigned frame_len = 60;  // without FCS
  DirectionCounters outbound_tx;  // sent from here
  DirectionCounters inbound_rx;   // answers received here
  std::vector<std::uint64_t> answered_bits;  // warm-up: flows answered
  // Several transmit queues: the queue each subscriber's packets go to.
  // Learned from the answers: they arrive on the receive queue of the DUT
  // worker that owns the subscriber's mapping, and sending on the transmit
  // queue of that number reaches that worker with no handoff (what an RSS
  // NIC programmed with passgate's keys does). Until an answer is seen:
  // subscriber number modulo the queue count.
  std::vector<std::uint8_t> subscriber_queue;
  [[nodiscard]] std::uint16_t queue_of(std::uint64_t f) const {
    const std::uint64_t sub = f % model->subscribers;
    const std::uint8_t q = subscriber_queue[sub];
    return static_cast<std::uint16_t>(q != 0xff ? q : sub % port->tx_queues);
  }

  // Writes flow f's next packet into m (empty, room for 1518 bytes).
  void build(rte_mbuf* m, std::uint64_t f, std::uint16_t trial, Phase phase, std::uint64_t now) {
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

  // Sends up to n packets of flows produced by next_flow(); returns how many
  // the PMD took.
  template <typename NextFlow>
  unsigned send(unsigned n, Phase phase, NextFlow&& next_flow) {
    rte_mbuf* mbufs[burst_size];
    n = std::min(n, burst_size);
    if (rte_pktmbuf_alloc_bulk(pool, mbufs, n) != 0) return 0;
    const std::uint64_t now = rte_rdtsc();
    const std::uint16_t trial = state->trial.load(std::memory_order_relaxed);
    if (port->tx_queues == 1) {
      for (unsigned i = 0; i < n; ++i) build(mbufs[i], next_flow(), trial, phase, now);
      const unsigned sent = transmit(port->id, mbufs, n);
      outbound_tx.sent += n;
      outbound_tx.tx_refused += n - sent;
      return n;
    }
    // Several queues: the burst is split by each packet's queue.
    rte_mbuf* per_queue[Port::max_queues][burst_size];
    unsigned counts[Port::max_queues] = {};
    for (unsigned i = 0; i < n; ++i) {
      const std::uint64_t f = next_flow();
      build(mbufs[i], f, trial, phase, now);
      const std::uint16_t q = queue_of(f);
      per_queue[q][counts[q]++] = mbufs[i];
    }
    unsigned sent = 0;
    for (unsigned q = 0; q < port->tx_queues; ++q)
      if (counts[q]) sent += transmit(port->id, per_queue[q], counts[q], static_cast<std::uint16_t>(q));
    outbound_tx.sent += n;
    outbound_tx.tx_refused += n - sent;
    return n;
  }

  // An answer from the outside: it must come back to the flow's own
  // subscriber address and port (or identifier, or SPI).
  void receive_answer(rte_mbuf* m, std::uint64_t now, std::uint16_t trial, bool warmup, std::uint16_t queue) {
    const std::uint8_t* frame = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const unsigned len = rte_pktmbuf_data_len(m);
    if (len < eth_len + ipv4_len || load_be16(frame + 12) != RTE_ETHER_TYPE_IPV4) {
      ++inbound_rx.foreign;
      return;
    }
    const std::uint8_t* ip = frame + eth_len;
    const unsigned ihl = (ip[0] & 0x0f) * 4u;
    Proto proto;
    switch (ip[9]) {
      case ip_proto_udp: proto = Proto::udp; break;
      case ip_proto_tcp: proto = Proto::tcp; break;
      case ip_proto_icmp: proto = Proto::icmp; break;
      case ip_proto_esp: proto = Proto::esp; break;
      case ip_proto_gre: proto = Proto::gre; break;
      default: ++inbound_rx.foreign; return;
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

  [[nodiscard]] std::uint64_t hz() const { return hz_; }
  std::uint64_t hz_ = 0;

  void poll(bool warmup) {
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
};

// ---------------------------------------------------------------- trials

struct Options {
  std::string inside_dev, outside_dev;
  std::string mode = "fixed";
  double rate = 0;  // packets/s inside to outside; 0 = as fast as possible
  double duration = 3;
  double warmup_rate = 200000;
  unsigned warmup_passes = 3;
  bool warmup = true;
  bool reply = true;
  double drain = 0.5, settle = 1.0;
  double pdr_loss = 0.005;
  double precision = 0.02;
  unsigned max_trials = 14;
  double max_rate = 0;
  std::uint64_t cps_budget = 0;
  std::string json_path;
  std::string label;
};

struct TrialResult {
  double requested_pps = 0;
  double seconds = 0;
  DirectionCounters outbound;  // inside -> outside: sent here, received there
  DirectionCounters inbound;   // outside -> inside: answers
  std::uint64_t sent_total() const { return outbound.sent + inbound.sent; }
  std::uint64_t received_total() const { return outbound.received + inbound.received; }
  // RFC 2544 section 26.1: frames the DUT was offered but did not forward,
  // both directions together (section 14, bidirectional traffic).
  double loss_ratio() const {
    const std::uint64_t s = sent_total();
    return s ? static_cast<double>(s - std::min(s, received_total())) / static_cast<double>(s) : 0.0;
  }
  double offered_pps() const { return seconds > 0 ? static_cast<double>(outbound.sent) / seconds : 0; }
  double bidirectional_pps() const { return seconds > 0 ? static_cast<double>(sent_total()) / seconds : 0; }
};

class Generator {
 public:
  Generator(Options o, InsideSide& in, OutsideSide& out, RunState& st, bool two_lcores)
      : opt_(std::move(o)), inside_(in), outside_(out), state_(st), two_lcores_(two_lcores), hz_(rte_get_tsc_hz()) {}

  // Polls both ports (the outside only in one-lcore mode) for `seconds`.
  void idle(double seconds, bool warmup = false) {
    const std::uint64_t end = rte_rdtsc() + static_cast<std::uint64_t>(seconds * static_cast<double>(hz_));
    while (rte_rdtsc() < end && !interrupted) poll_all(warmup);
  }

  bool resolve_neighbours() {
    const std::uint64_t deadline = rte_rdtsc() + 10 * hz_;
    std::uint64_t next = 0;
    while (!(inside_.port->peer_known && outside_.port->peer_known)) {
      if (interrupted || rte_rdtsc() > deadline) return false;
      if (rte_rdtsc() >= next) {
        if (!inside_.port->peer_known) send_arp_request(*inside_.port, inside_.pool);
        if (!outside_.port->peer_known) send_arp_request(*outside_.port, outside_.pool);
        next = rte_rdtsc() + hz_ / 5;
      }
      poll_all(false);
    }
    return true;
  }

  // CSIT-style warm-up: one packet per flow at a modest rate, then the
  // flows still unanswered again, up to `passes` times.
  struct WarmupResult {
    std::uint64_t flows = 0, answered = 0, packets = 0;
    unsigned passes = 0;
    double seconds = 0;
  };
  WarmupResult warm_up() {
    WarmupResult r;
    const std::uint64_t flows = inside_.model->flows();
    r.flows = flows;
    inside_.answered_bits.assign((flows + 63) / 64, 0);
    const std::uint64_t t0 = rte_rdtsc();
    new_trial(Phase::warmup);
    bool identifiable = true;
    double rate = opt_.warmup_rate;
    for (unsigned pass = 0; pass < opt_.warmup_passes && !interrupted; ++pass) {
      // Flows lost in a pass were sent faster than the DUT opened them (or
      // than the link carried them): the next pass goes at half the rate.
      if (pass > 0) rate /= 2;
      std::uint64_t cursor = 0;
      auto next_unanswered = [&]() -> std::optional<std::uint64_t> {
        while (cursor < flows) {
          const std::uint64_t f = cursor++;
          if (pass == 0 || !(inside_.answered_bits[f / 64] >> (f % 64) & 1)) return f;
        }
        return std::nullopt;
      };
      std::vector<std::uint64_t> pending;
      pending.reserve(burst_size);
      const std::uint64_t start = rte_rdtsc();
      std::uint64_t sent = 0;
      bool more = true;
      while (more && !interrupted) {
        const std::uint64_t allowed = static_cast<std::uint64_t>(
            static_cast<double>(rte_rdtsc() - start) / static_cast<double>(hz_) * rate);
        if (allowed > sent) {
          pending.clear();
          while (pending.size() < std::min<std::uint64_t>(burst_size, allowed - sent)) {
            auto f = next_unanswered();
            if (!f) {
              more = false;
              break;
            }
            pending.push_back(*f);
          }
          std::size_t k = 0;
          while (k < pending.size() && !interrupted) {
            std::size_t i = k;
            const unsigned took = inside_.send(static_cast<unsigned>(pending.size() - k), Phase::warmup,
                                               [&] { return pending[i++]; });
            k += took;
            r.packets += took;
            if (took == 0) poll_all(true);
          }
          sent += pending.size();
        }
        poll_all(true);
      }
      idle(opt_.drain, true);
      r.passes = pass + 1;
      r.answered = count_answered();
      // Tunnels and NAT-T share identifiers the answer cannot be traced back
      // from: count them answered when the totals say so.
      if (r.answered >= flows) break;
      if (pass == 0 && inside_.inbound_rx.received >= flows) {
        identifiable = false;
        break;
      }
    }
    if (!identifiable) r.answered = std::min<std::uint64_t>(flows, inside_.inbound_rx.received);
    r.seconds = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz_);
    collect();
    return r;
  }

  // One trial at `rate` packets/s (0: as fast as the PMD takes them) for
  // `seconds`, then the drain. Established flows cycle through the model;
  // in cps mode every packet takes the next never-used flow number.
  TrialResult trial(double rate, double seconds, Phase phase) {
    new_trial(phase);
    TrialResult r;
    r.requested_pps = rate;
    const std::uint64_t flows = inside_.model->flows();
    const std::uint64_t start = rte_rdtsc();
    const std::uint64_t end = start + static_cast<std::uint64_t>(seconds * static_cast<double>(hz_));
    std::uint64_t offered = 0;
    std::uint64_t now = start;
    while (now < end && !interrupted) {
      unsigned want = burst_size;
      if (rate > 0) {
        // Pacing from the start of the trial. When the generator loses its
        // CPU for a moment (a shared machine) the backlog is made up at
        // once so that the average rate holds, but at most max_backlog
        // packets: a burst the DUT's 1024-descriptor ring can absorb.
        const auto due = static_cast<std::uint64_t>(static_cast<double>(now - start) / static_cast<double>(hz_) * rate);
        want = due > offered ? static_cast<unsigned>(std::min<std::uint64_t>(due - offered, burst_size)) : 0;
        if (due > offered + max_backlog) offered = due - max_backlog;
      }
      if (want) {
        if (phase == Phase::cps) {
          inside_.send(want, phase, [&] { return cps_cursor_++; });
        } else {
          inside_.send(want, phase, [&] {
            const std::uint64_t f = flow_cursor_;
            if (++flow_cursor_ == flows) flow_cursor_ = 0;
            return f;
          });
        }
        offered += want;
      }
      poll_all(false);
      now = rte_rdtsc();
    }
    r.seconds = static_cast<double>(now - start) / static_cast<double>(hz_);
    idle(opt_.drain);
    collect();
    r.outbound = trial_out_;
    r.inbound = trial_in_;
    return r;
  }

  std::uint64_t cps_cursor() const { return cps_cursor_; }
  void set_cps_cursor(std::uint64_t c) { cps_cursor_ = c; }

 private:
  void poll_all(bool warmup) {
    inside_.poll(warmup);
    if (!two_lcores_) outside_.poll();
  }

  void new_trial(Phase phase) {
    collect();  // drop whatever arrived between trials
    state_.phase = phase;
    state_.trial.store(static_cast<std::uint16_t>(state_.trial.load() + 1));
    collect();
  }

  // Moves both sides' counters into trial_out_/trial_in_ and resets them.
  void collect() {
    trial_out_ = DirectionCounters{};
    trial_in_ = DirectionCounters{};
    trial_out_.merge(inside_.outbound_tx);
    trial_in_.merge(inside_.inbound_rx);
    inside_.outbound_tx = DirectionCounters{};
    inside_.inbound_rx = DirectionCounters{};
    DirectionCounters out_rx, in_tx;
    if (two_lcores_) {
      const int req = state_.snapshot_request.load() + 1;
      state_.snapshot_request.store(req, std::memory_order_release);
      while (state_.snapshot_done.load(std::memory_order_acquire) != req) inside_.poll(false);
      out_rx = outside_.snapshot_out;
      in_tx = outside_.snapshot_in;
    } else {
      out_rx = outside_.outbound_rx;
      in_tx = outside_.inbound_tx;
      outside_.outbound_rx = DirectionCounters{};
      outside_.inbound_tx = DirectionCounters{};
    }
    // The outside's receive side belongs to the outbound direction, its
    // transmit side to the inbound one.
    trial_out_.received = out_rx.received;
    trial_out_.stale = out_rx.stale;
    trial_out_.foreign = out_rx.foreign;
    trial_out_.untranslated = out_rx.untranslated;
    trial_out_.latency = out_rx.latency;
    trial_in_.sent = in_tx.sent;
    trial_in_.tx_refused = in_tx.tx_refused;
  }

  std::uint64_t count_answered() const {
    std::uint64_t n = 0;
    for (std::uint64_t w : inside_.answered_bits) n += static_cast<std::uint64_t>(__builtin_popcountll(w));
    return n;
  }

  Options opt_;
  InsideSide& inside_;
  OutsideSide& outside_;
  RunState& state_;
  bool two_lcores_;
  std::uint64_t hz_;
  std::uint64_t flow_cursor_ = 0;
  std::uint64_t cps_cursor_ = 0;
  DirectionCounters trial_out_, trial_in_;
};

// ---------------------------------------------------------------- JSON

std::string json_direction(const DirectionCounters& d) {
  const auto lost = d.sent - std::min(d.sent, d.received);
  return fmt::format(
      "{{\"sent\": {}, \"received\": {}, \"lost\": {}, \"tx_refused\": {}, \"stale\": {}, \"foreign\": {}, "
      "\"untranslated\": {}, \"mismatched\": {}, \"latency_us\": {{\"samples\": {}, \"min\": {:.2f}, \"mean\": {:.2f}, "
      "\"p50\": {:.1f}, \"p90\": {:.1f}, \"p99\": {:.1f}, \"p999\": {:.1f}, \"max\": {:.2f}}}}}",
      d.sent, d.received, lost, d.tx_refused, d.stale, d.foreign, d.untranslated, d.mismatched, d.latency.count,
      d.latency.count ? static_cast<double>(d.latency.min_ns) / 1000.0 : 0.0,
      d.latency.count ? static_cast<double>(d.latency.sum_ns) / static_cast<double>(d.latency.count) / 1000.0 : 0.0,
      d.latency.percentile_us(0.5), d.latency.percentile_us(0.9), d.latency.percentile_us(0.99),
      d.latency.percentile_us(0.999), static_cast<double>(d.latency.max_ns) / 1000.0);
}

std::string json_trial(const TrialResult& t) {
  return fmt::format(
      "{{\"requested_pps\": {:.0f}, \"seconds\": {:.3f}, \"offered_pps\": {:.0f}, \"bidirectional_pps\": {:.0f}, "
      "\"received_pps\": {:.0f}, \"loss_ratio\": {:.6g}, \"outbound\": {}, \"inbound\": {}}}",
      t.requested_pps, t.seconds, t.offered_pps(), t.bidirectional_pps(),
      t.seconds > 0 ? static_cast<double>(t.received_total()) / t.seconds : 0.0, t.loss_ratio(),
      json_direction(t.outbound), json_direction(t.inbound));
}

}  // namespace

// ---------------------------------------------------------------- main

int main(int argc, char** argv) {
  Options opt;
  FlowModel model;
  std::string gen_in_ip = "10.0.0.2", dut_in_ip = "10.0.0.1", gen_out_ip = "198.18.0.2", dut_out_ip = "198.18.0.1";
  std::string subscriber_base = "100.64.0.1", server_base = "198.19.0.0", mix = "udp";
  unsigned frame_size = 64;
  unsigned rx_queues = 1, tx_queues = 1;
  std::vector<std::string> eal_extra;

  po::options_description opts(
      "passgate-gen: DPDK traffic generator and sink for NAT44 benchmarks (RFC 2544)\n\n"
      "Usage: passgate-gen --inside DEV --outside DEV [options] [-- EAL arguments]\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "print this help and exit")
    ("inside", po::value(&opt.inside_dev)->required(), "subscriber-side device: a PCI address or a vdev (net_memif0,role=client,socket=...)")
    ("outside", po::value(&opt.outside_dev)->required(), "internet-side device")
    ("gen-inside-ip", po::value(&gen_in_ip)->default_value(gen_in_ip), "our address on the inside link (the DUT routes subscribers to it)")
    ("dut-inside-ip", po::value(&dut_in_ip)->default_value(dut_in_ip), "the DUT's inside address (our next hop)")
    ("gen-outside-ip", po::value(&gen_out_ip)->default_value(gen_out_ip), "our address on the outside link (the DUT's gateway)")
    ("dut-outside-ip", po::value(&dut_out_ip)->default_value(dut_out_ip), "the DUT's outside address")
    ("subscribers,n", po::value(&model.subscribers)->default_value(model.subscribers), "subscribers (consecutive addresses from --subscriber-base)")
    ("flows,m", po::value(&model.flows_per_subscriber)->default_value(model.flows_per_subscriber), "flows per subscriber")
    ("subscriber-base", po::value(&subscriber_base)->default_value(subscriber_base), "first subscriber address")
    ("servers", po::value(&model.servers)->default_value(model.servers), "servers (consecutive addresses from --server-base)")
    ("server-base", po::value(&server_base)->default_value(server_base), "first server address (RFC 2544 appendix C: 198.18.0.0/15)")
    ("mix", po::value(&mix)->default_value(mix), "protocol mix, e.g. udp:70,tcp:20,icmp:5,esp:3,gre:2 (natt = UDP 4500 both ends)")
    ("rx-queues", po::value(&rx_queues)->default_value(rx_queues), "receive queues per port: the DUT's transmit queues (one per worker), all polled")
    ("tx-queues", po::value(&tx_queues)->default_value(tx_queues), "transmit queues per port: the DUT's receive queues. Inside: a subscriber's packets go to the queue its answers came back on (before that: subscriber modulo queues); outside: each answer leaves on the queue its packet arrived on")
    ("frame-size", po::value(&frame_size)->default_value(frame_size), "Ethernet frame size with FCS (RFC 2544 section 9); grown where headers need more")
    ("mode", po::value(&opt.mode)->default_value(opt.mode), "fixed (one trial at --rate), search (RFC 2544 throughput), cps (new sessions per second search)")
    ("rate", po::value(&opt.rate)->default_value(opt.rate), "fixed mode: inside-to-outside packets/s (0 = as fast as possible)")
    ("duration", po::value(&opt.duration)->default_value(opt.duration), "seconds per trial")
    ("no-warmup", "skip the warm-up that opens every flow before measuring")
    ("warmup-rate", po::value(&opt.warmup_rate)->default_value(opt.warmup_rate), "packets/s during warm-up")
    ("warmup-passes", po::value(&opt.warmup_passes)->default_value(opt.warmup_passes), "warm-up retries for unanswered flows")
    ("no-reply", "the outside only counts; nothing travels outside to inside")
    ("drain", po::value(&opt.drain)->default_value(opt.drain), "seconds to keep receiving after a trial (RFC 2544 section 23: 2)")
    ("settle", po::value(&opt.settle)->default_value(opt.settle), "seconds between trials (RFC 2544 section 23: at least 5)")
    ("pdr-loss", po::value(&opt.pdr_loss)->default_value(opt.pdr_loss), "loss ratio accepted for the partial-drop rate")
    ("precision", po::value(&opt.precision)->default_value(opt.precision), "search ends when the bounds are this close (relative)")
    ("max-trials", po::value(&opt.max_trials)->default_value(opt.max_trials), "search: at most this many trials")
    ("max-rate", po::value(&opt.max_rate)->default_value(opt.max_rate), "search: upper bound (0 = measure the generator's own maximum first)")
    ("cps-budget", po::value(&opt.cps_budget)->default_value(opt.cps_budget), "cps: stop before this many new flows in total (the DUT's session table size); 0 = no limit")
    ("label", po::value(&opt.label), "free text copied into the JSON")
    ("json", po::value(&opt.json_path), "write the JSON result here (default: stdout)");
  // clang-format on
  po::options_description hidden;
  hidden.add_options()("eal", po::value(&eal_extra));
  po::positional_options_description positional;
  positional.add("eal", -1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << opts << "\nEverything after -- goes to the DPDK EAL (e.g. -- -l 0 --no-huge -m 512 --file-prefix pb-gen).\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "passgate-gen: " << e.what() << "\n";
    return 2;
  }
  opt.warmup = !vm.count("no-warmup");
  opt.reply = !vm.count("no-reply");
  {
    std::string error;
    if (!parse_mix(mix, model.mix, error)) {
      std::cerr << "passgate-gen: --mix: " << error << "\n";
      return 2;
    }
  }
  const auto sb = parse_ipv4(subscriber_base), svb = parse_ipv4(server_base), gi = parse_ipv4(gen_in_ip),
             di = parse_ipv4(dut_in_ip), go = parse_ipv4(gen_out_ip), dout = parse_ipv4(dut_out_ip);
  if (!sb || !svb || !gi || !di || !go || !dout) {
    std::cerr << "passgate-gen: an address option is not a dotted-quad IPv4 address\n";
    return 2;
  }
  if (opt.mode != "fixed" && opt.mode != "search" && opt.mode != "cps") {
    std::cerr << "passgate-gen: --mode must be fixed, search or cps\n";
    return 2;
  }
  if (model.subscribers == 0 || model.flows_per_subscriber == 0 || model.servers == 0 || frame_size < 64 ||
      frame_size > 1518) {
    std::cerr << "passgate-gen: subscribers, flows and servers must be at least 1; frame size 64 to 1518\n";
    return 2;
  }
  model.subscriber_base = *sb;
  model.server_base = *svb;
  if (rx_queues < 1 || rx_queues > Port::max_queues || tx_queues < 1 || tx_queues > Port::max_queues) {
    std::cerr << fmt::format("passgate-gen: --rx-queues and --tx-queues must be 1 to {}\n", Port::max_queues);
    return 2;
  }

  std::vector<std::string> args{"passgate-gen"};
  args.insert(args.end(), eal_extra.begin(), eal_extra.end());
  for (const auto* dev : {&opt.inside_dev, &opt.outside_dev}) {
    if (is_vdev(*dev)) args.push_back("--vdev=" + *dev);
    else {
      args.push_back("-a");
      args.push_back(*dev);
    }
  }
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::cerr << "passgate-gen: EAL initialisation failed: " << rte_strerror(rte_errno) << "\n";
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int rc = 0;
  {
    rte_mempool* pool = rte_pktmbuf_pool_create("gen_mbufs", 32767, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                static_cast<int>(rte_socket_id()));
    Port inside_port, outside_port;
    inside_port.device = opt.inside_dev;
    inside_port.ip = *gi;
    inside_port.peer_ip = *di;
    outside_port.device = opt.outside_dev;
    outside_port.ip = *go;
    outside_port.peer_ip = *dout;
    for (Port* p : {&inside_port, &outside_port}) {
      p->rx_queues = rx_queues;
      p->tx_queues = tx_queues;
    }
    std::string error;
    if (!pool) {
      std::cerr << "passgate-gen: cannot create the buffer pool: " << rte_strerror(rte_errno) << "\n";
      rte_eal_cleanup();
      return 1;
    }
    if (!setup_port(inside_port, pool, error) || !setup_port(outside_port, pool, error)) {
      std::cerr << "passgate-gen: " << error << "\n";
      rte_eal_cleanup();
      return 1;
    }
    RunState state;
    InsideSide inside;
    inside.port = &inside_port;
    inside.pool = pool;
    inside.model = &model;
    inside.state = &state;
    inside.frame_len = frame_size - RTE_ETHER_CRC_LEN;
    inside.hz_ = rte_get_tsc_hz();
    inside.subscriber_queue.assign(model.subscribers, 0xff);
    OutsideSide outside;
    outside.port = &outside_port;
    outside.pool = pool;
    outside.model = &model;
    outside.state = &state;
    outside.reply = opt.reply;
    outside.hz = rte_get_tsc_hz();

    // Two lcores: the outside (receive, answer) runs on the first worker
    // lcore, the inside (send, receive answers) on the main one.
    const bool two_lcores = rte_lcore_count() >= 2;
    unsigned outside_lcore = 0;
    if (two_lcores) {
      outside_lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
      rte_eal_remote_launch(outside_lcore_main, &outside, outside_lcore);
    }
    Generator gen(opt, inside, outside, state, two_lcores);

    std::string body;
    const bool resolved = gen.resolve_neighbours();
    if (!resolved) {
      std::cerr << fmt::format("passgate-gen: no ARP answer from the DUT ({} inside: {}, {} outside: {})\n",
                               dut_in_ip, inside_port.peer_known ? "ok" : "none", dut_out_ip,
                               outside_port.peer_known ? "ok" : "none");
      rc = 1;
    } else {
      std::string warm_json = "null";
      if (opt.warmup && opt.mode != "cps") {
        const auto w = gen.warm_up();
        warm_json = fmt::format(
            "{{\"flows\": {}, \"answered\": {}, \"packets\": {}, \"passes\": {}, \"seconds\": {:.3f}, \"rate\": {:.0f}}}",
            w.flows, w.answered, w.packets, w.passes, w.seconds, w.seconds > 0 ? w.flows / w.seconds : 0.0);
        std::cerr << fmt::format("passgate-gen: warm-up: {} of {} flows answered in {:.1f} s ({} passes)\n",
                                 w.answered, w.flows, w.seconds, w.passes);
        gen.idle(opt.settle);
      }
      std::vector<TrialResult> trials;
      std::string result_json;
      const Phase phase = opt.mode == "cps" ? Phase::cps : Phase::measure;
      auto run = [&](double rate) {
        const TrialResult t = gen.trial(rate, opt.duration, phase);
        std::cerr << fmt::format(
            "passgate-gen: trial {:>2}: asked {:>10.0f} pps, offered {:>10.0f} pps, loss {:.4f}% "
            "(out {}/{}, in {}/{})\n",
            trials.size() + 1, rate, t.offered_pps(), 100.0 * t.loss_ratio(), t.outbound.received, t.outbound.sent,
            t.inbound.received, t.inbound.sent);
        trials.push_back(t);
        return t;
      };
      if (opt.mode == "fixed") {
        const TrialResult t = run(opt.rate);
        result_json = fmt::format("{{\"trial\": {}}}", json_trial(t));
      } else {
        // RFC 2544 section 26.1 throughput by binary search, for both the
        // zero-loss rate (NDR) and the rate at --pdr-loss (PDR). The
        // upper bound is the generator's own maximum unless given: a
        // first trial as fast as possible measures it (and if that trial
        // loses nothing, the DUT is faster than this generator: said so).
        bool generator_limited = false;
        double hi = opt.max_rate;
        std::optional<TrialResult> ndr_trial, pdr_trial;
        if (hi <= 0) {
          const TrialResult t = run(0);
          hi = t.offered_pps();
          if (t.loss_ratio() == 0) {
            generator_limited = true;
            ndr_trial = pdr_trial = t;
          } else if (t.loss_ratio() <= opt.pdr_loss) {
            pdr_trial = t;
          }
          // The upper bound is what the DUT forwarded in that trial, with
          // headroom: overloaded, a DUT may forward less than it can
          // without loss (receive livelock), so the bound is not exact.
          hi = std::max(1.0, static_cast<double>(t.outbound.received) / t.seconds * 1.25);
          gen.idle(opt.settle);
        }
        double ndr_lo = 0, ndr_hi = hi, pdr_lo = pdr_trial ? hi : 0, pdr_hi = hi;
        if (ndr_trial) ndr_lo = hi;
        const auto converged = [&](double lo, double up) { return up - lo <= opt.precision * up; };
        while (!generator_limited && trials.size() < opt.max_trials && !interrupted &&
               !(converged(ndr_lo, ndr_hi) && converged(pdr_lo, pdr_hi))) {
          // Refine whichever interval is still the wider one (relative).
          const bool pdr_first = !converged(pdr_lo, pdr_hi) &&
                                 (converged(ndr_lo, ndr_hi) || (pdr_hi - pdr_lo) / pdr_hi >= (ndr_hi - ndr_lo) / ndr_hi);
          const double rate = pdr_first ? (pdr_lo + pdr_hi) / 2 : (ndr_lo + ndr_hi) / 2;
          if (opt.mode == "cps" && opt.cps_budget &&
              gen.cps_cursor() + static_cast<std::uint64_t>(rate * opt.duration * 1.1) > opt.cps_budget) {
            std::cerr << "passgate-gen: cps: the DUT's session budget is spent; search stops here\n";
            break;
          }
          const TrialResult t = run(rate);
          // Bounds move on the rate actually offered, not the one asked.
          const double offered = std::min(rate, t.offered_pps());
          const double loss = t.loss_ratio();
          // A trial that could not offer its rate (the generator lost its
          // CPU) still bounds the search by what it did offer.
          if (loss == 0) {
            if (offered > ndr_lo) ndr_lo = offered, ndr_trial = t;
            if (offered > pdr_lo) pdr_lo = offered, pdr_trial = t;
          } else if (loss <= opt.pdr_loss) {
            ndr_hi = std::min(ndr_hi, rate);
            if (offered > pdr_lo) pdr_lo = offered, pdr_trial = t;
          } else {
            ndr_hi = std::min(ndr_hi, rate);
            pdr_hi = std::min(pdr_hi, rate);
          }
          ndr_lo = std::min(ndr_lo, ndr_hi);
          pdr_lo = std::min(pdr_lo, pdr_hi);
          if (pdr_lo < ndr_lo) pdr_lo = ndr_lo, pdr_trial = ndr_trial;
          gen.idle(opt.settle);
        }
        const auto rate_json = [&](const std::optional<TrialResult>& t) {
          return t ? json_trial(*t) : std::string("null");
        };
        const double mult = opt.reply ? 2.0 : 1.0;
        result_json = fmt::format(
            "{{\"ndr_pps\": {:.0f}, \"pdr_pps\": {:.0f}, \"ndr_bidirectional_pps\": {:.0f}, "
            "\"pdr_bidirectional_pps\": {:.0f}, \"pdr_loss\": {}, \"generator_limited\": {}, "
            "\"ndr_trial\": {}, \"pdr_trial\": {}}}",
            ndr_trial ? ndr_trial->offered_pps() : 0.0, pdr_trial ? pdr_trial->offered_pps() : 0.0,
            ndr_trial ? ndr_trial->offered_pps() * mult : 0.0, pdr_trial ? pdr_trial->offered_pps() * mult : 0.0,
            opt.pdr_loss, generator_limited, rate_json(ndr_trial), rate_json(pdr_trial));
        std::cerr << fmt::format("passgate-gen: NDR {:.0f} pps, PDR({}%) {:.0f} pps{}\n",
                                 ndr_trial ? ndr_trial->offered_pps() : 0.0, opt.pdr_loss * 100,
                                 pdr_trial ? pdr_trial->offered_pps() : 0.0,
                                 generator_limited ? " (generator-limited)" : "");
      }
      std::string trials_json;
      for (const auto& t : trials) trials_json += (trials_json.empty() ? "" : ", ") + json_trial(t);
      std::string publics_json;
      for (unsigned i = 0; i < outside.publics.count; ++i)
        publics_json += (i ? ", " : "") + fmt::format("\"{}\"", ipv4_text(outside.publics.seen[i]));
      std::string mix_json;
      {
        std::array<unsigned, proto_names.size()> pct{};
        for (Proto p : model.mix) ++pct[static_cast<unsigned>(p)];
        for (unsigned i = 0; i < pct.size(); ++i)
          if (pct[i]) mix_json += (mix_json.empty() ? "" : ", ") + fmt::format("\"{}\": {}", proto_names[i], pct[i]);
      }
      body = fmt::format(
          "{{\n  \"generator\": \"passgate-gen\", \"dpdk\": \"{}\", \"label\": \"{}\", \"mode\": \"{}\",\n"
          "  \"config\": {{\"subscribers\": {}, \"flows_per_subscriber\": {}, \"flows\": {}, \"servers\": {}, "
          "\"mix_percent\": {{{}}}, \"frame_size\": {}, \"reply\": {}, \"duration_s\": {}, \"drain_s\": {}, "
          "\"settle_s\": {}, \"lcores\": {}, \"rx_queues\": {}, \"tx_queues\": {}, \"inside\": \"{}\", \"outside\": \"{}\"}},\n"
          "  \"rx_per_queue\": {{\"inside\": [{}], \"outside\": [{}]}},\n"
          "  \"dut_macs\": {{\"inside\": \"{:02x}\", \"outside\": \"{:02x}\"}},\n"
          "  \"public_addresses_seen\": [{}], \"more_public_addresses\": {},\n"
          "  \"warmup\": {},\n  \"result\": {},\n  \"trials\": [{}]\n}}\n",
          rte_version(), opt.label, opt.mode, model.subscribers, model.flows_per_subscriber, model.flows(),
          model.servers, mix_json, frame_size, opt.reply, opt.duration, opt.drain, opt.settle, two_lcores ? 2 : 1,
          rx_queues, tx_queues, opt.inside_dev, opt.outside_dev,
          fmt::join(inside_port.rx_per_queue.begin(), inside_port.rx_per_queue.begin() + rx_queues, ", "),
          fmt::join(outside_port.rx_per_queue.begin(), outside_port.rx_per_queue.begin() + rx_queues, ", "), fmt::join(inside_port.peer_mac.addr_bytes, ":"),
          fmt::join(outside_port.peer_mac.addr_bytes, ":"), publics_json, outside.publics.more, warm_json,
          result_json, trials_json);
      if (interrupted) rc = 130;
    }
    if (two_lcores) {
      state.stop_outside_lcore = true;
      rte_eal_mp_wait_lcore();
    }
    if (!body.empty()) {
      if (opt.json_path.empty()) std::cout << body;
      else if (std::FILE* f = std::fopen(opt.json_path.c_str(), "w")) {
        std::fputs(body.c_str(), f);
        std::fclose(f);
      } else {
        std::cerr << "passgate-gen: cannot write " << opt.json_path << "\n";
        rc = 1;
      }
    }
    rte_eth_dev_stop(inside_port.id);
    rte_eth_dev_stop(outside_port.id);
    rte_eth_dev_close(inside_port.id);
    rte_eth_dev_close(outside_port.id);
  }
  rte_eal_cleanup();
  return rc;
}
