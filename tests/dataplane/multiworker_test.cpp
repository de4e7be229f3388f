// Several workers, end to end inside one process: the real Gateway (ports,
// workers on their own lcores, NAT engines, handoff rings) on DPDK ring
// ports with one queue per worker. The test is the NIC and the peers: it
// puts every frame on the receive queue that RSS would choose, computed with
// DPDK's own rte_softrss over the keys and redirection table passgate asked
// the port to use, and answers what the gateway sends out.
//
// Checked (issue 7): every session lives on the worker that owns it, in both
// directions; with RSS emulated no TCP/UDP packet is handed over and ICMP/ESP
// handoffs are exactly those the ownership rules predict (inbound ESP and
// GRE: RSS puts them on the public address's port-less worker, which hands
// them to their server's worker); ESP learning, PPTP calls and GRE tunnels
// run on their server's worker (issue 17.3), spread over the workers; with one queue
// (a device without RSS) everything still works through the handoff rings,
// with exactly the predicted handoffs; results equal those of one worker.
#include <gtest/gtest.h>

#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_thash.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "config/gateway_config.hpp"
#include "dataplane/gateway.hpp"
#include "nat/deterministic.hpp"
#include "packet/headers.hpp"
#include "ring_harness.hpp"
#include "support/packet_builder.hpp"

namespace passgate {
namespace {

using namespace passgate::testing;
using packet::be16;
using packet::be32;

constexpr unsigned subscribers = 48;
constexpr unsigned udp_flows = 4;
const be32 server = ipv4(203, 0, 113, 9);

be32 subscriber(unsigned i) { return ipv4(100, 64, 0, static_cast<std::uint8_t>(10 + i)); }

// A port forward whose inside host hashes to another worker than its public
// port's owner (with several workers), so both directions must be steered
// to that owner for the session to be tracked in one place.
const be32 forward_public = ipv4(198, 51, 100, 30);
constexpr std::uint16_t forward_public_port = 80, forward_inside_port = 8080;
be32 forward_host(unsigned workers) {
  if (workers == 1) return ipv4(100, 64, 0, 200);
  steering::SteeringParams params;
  params.workers = workers;
  params.reta_size = 512;  // as the gateway builds it
  const auto rss = steering::RssSteering::make(params);
  for (unsigned i = 200; i < 250; ++i) {
    const be32 a = ipv4(100, 64, 0, static_cast<std::uint8_t>(i));
    if (rss->worker_of_subscriber(a) != rss->worker_of_outside(forward_public, forward_public_port)) return a;
  }
  return ipv4(100, 64, 0, 200);
}

// The same subscribers in a deterministic pool (RFC 7422): 254 hosts over 4
// addresses, ratio 64, 1008 ports each.
const std::string deterministic_pool_yaml = R"(nat:
  random_seed: 2026
  max_sessions: 65536
  pools:
    - name: cgn
      mode: deterministic
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.13]
)";

std::string yaml(unsigned workers, unsigned queues, const std::string& in, const std::string& out, bool handoff,
                 const std::string& pool_yaml) {
  std::string workers_list;
  for (unsigned w = 1; w <= workers; ++w) workers_list += fmt::format("{}{}", w == 1 ? "" : ", ", w);
  std::string neighbours;
  for (unsigned i = 0; i < subscribers; ++i) neighbours += peer_neighbour(subscriber(i));
  neighbours += peer_neighbour(forward_host(workers));
  return fmt::format(R"(dataplane:
  workers: [{}]
  mbuf_cache: 64
  neighbour: {{table_size: 64, queue: 4}}
  steering: {}
ports:
{}{}  static:
    - {{protocol: tcp, inside: "{}:{}", public: "{}:{}"}}
)",
                     workers_list, handoff ? "handoff" : "auto",
                     ports_yaml({.inside_device = in, .outside_device = out, .rx_queues = queues, .tx_queues = workers,
                                 .descriptors = 256, .macs = true, .inside_neighbours = neighbours}),
                     pool_yaml, nat::to_string(forward_host(workers)), forward_inside_port,
                     nat::to_string(forward_public), forward_public_port);
}

// What the run produced, to compare worker counts with each other.
struct Outcome {
  std::map<std::uint32_t, std::uint32_t> public_of;  // subscriber -> public address (host order)
  // subscriber -> the public endpoints of its sessions (address, port)
  std::map<std::uint32_t, std::vector<std::pair<std::uint32_t, std::uint16_t>>> public_endpoints;
  unsigned answered_udp = 0, answered_tcp = 0, answered_icmp = 0, answered_esp = 0, hairpinned = 0;
  unsigned forward_answered = 0, forward_sessions = 0;
  // VPN passthrough by server (issue 17.3), see run_vpn().
  unsigned esp_learned = 0, esp_released = 0, pptp_connected = 0, pptp_calls = 0, pptp_gre = 0, gre_tunnels = 0;
  unsigned vpn_workers = 0;           // workers holding ESP, PPTP or GRE state
  unsigned vpn_off_subscriber = 0;    // VPN packets of a subscriber on another worker than its TCP/UDP
  std::uint64_t handoffs_tcp_udp = 0, handoffs_total = 0;
  std::uint64_t expected_handoffs_total = 0;
  bool sessions_on_owner = true;
  std::string problems;
};

class Harness {
 public:
  Harness(unsigned workers, bool emulate_rss, bool handoff_mode, const std::string& tag,
          const std::string& pool_yaml = nat_pool_yaml)
      : workers_(workers), emulate_rss_(emulate_rss) {
    const unsigned queues = emulate_rss ? workers : 1;
    in_ = std::make_unique<RingPort>("mwin_" + tag, queues, workers, 4096, RING_F_SP_ENQ | RING_F_SC_DEQ);
    out_ = std::make_unique<RingPort>("mwout_" + tag, queues, workers, 4096, RING_F_SP_ENQ | RING_F_SC_DEQ);
    auto loaded =
        config::parse_gateway_config(yaml(workers, queues, in_->name, out_->name, handoff_mode, pool_yaml), "test.yaml");
    EXPECT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : config::to_string(loaded.errors[0]));
    std::string error;
    gateway_ = dataplane::Gateway::create(*loaded.config, &error);
    EXPECT_TRUE(gateway_) << error;
    if (gateway_) {
      EXPECT_TRUE(gateway_->start(&error)) << error;
    }
    pool_ = rte_pktmbuf_pool_create(("pgmw_test_" + tag).c_str(), 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    EXPECT_NE(pool_, nullptr);
  }
  ~Harness() {
    gateway_.reset();
    drain_all();
    if (pool_) rte_mempool_free(pool_);
  }
  [[nodiscard]] bool ok() const { return gateway_ && pool_; }
  dataplane::Gateway& gateway() { return *gateway_; }

  // The NIC's choice of receive queue for a frame: RSS with the key and
  // redirection table passgate installed, by DPDK's own Toeplitz.
  unsigned nic_queue(bool inside, const Bytes& ip) const {
    if (!emulate_rss_) return 0;
    const steering::RssSteering& rss = *gateway_->steering();
    const std::uint8_t proto = ip[9];
    const be32 src = ip_src(ip), dst = ip_dst(ip);
    std::uint32_t words[2];
    unsigned len;
    const auto& key = inside ? rss.inside_key() : rss.outside_key();
    const bool fragment = ((ip[6] << 8 | ip[7]) & 0x3fff) != 0;  // NICs hash fragments by address
    if (inside) {
      words[0] = src.host();  // L3_SRC_ONLY
      len = 1;
    } else if ((proto == 6 || proto == 17) && !fragment) {
      words[0] = dst.host();  // L3_DST_ONLY | L4_DST_ONLY, fields in header order
      words[1] = static_cast<std::uint32_t>(l4_dport(ip)) << 16;
      len = 2;
    } else {
      words[0] = dst.host();  // no ports: the address alone
      len = 1;
    }
    const std::uint32_t hash = rte_softrss(words, len, const_cast<std::uint8_t*>(key.data()));
    return rss.reta()[hash % rss.reta_size()];
  }

  void send(bool inside, const Bytes& ip) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    // To the port's MAC (the yaml above): passgate drops frames for others.
    const std::uint8_t port_mac[6] = {0x02, 0, 0, 0, 0x10, static_cast<std::uint8_t>(inside ? 1 : 2)};
    put_frame(m, port_mac, ip);
    RingPort& port = inside ? *in_ : *out_;
    const unsigned q = nic_queue(inside, ip);
    ASSERT_EQ(rte_ring_enqueue(port.rx[q], m), 0);
  }

  // Frames the gateway transmitted on a port, as IPv4 packets, with the
  // worker (transmit queue) that sent each.
  std::vector<std::pair<Bytes, unsigned>> collect(bool inside, unsigned want, int timeout_ms = 3000) {
    std::vector<std::pair<Bytes, unsigned>> got;
    RingPort& port = inside ? *in_ : *out_;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      for (unsigned q = 0; q < port.tx.size(); ++q)
        take_frames(port.tx[q], [&](Bytes ip) { got.emplace_back(std::move(ip), q); });
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
  }

  void drain_all() {
    for (RingPort* port : {in_.get(), out_.get()})
      if (port)
        for (auto* r : port->tx) free_frames(r);
  }

  stats::PortCounters outside_counters() { return gateway_->snapshot().ports[1]; }

  std::uint64_t handoffs() {
    std::uint64_t n = 0;
    for (const auto& [out, in] : gateway_->handoffs_per_worker()) n += out;
    return n;
  }

  // The worker a packet belongs to, by the ownership rules (lib/steering).
  unsigned owner(bool inside, const Bytes& ip) const {
    if (workers_ == 1) return 0;
    const steering::DispatchRules rules{gateway_->steering()};
    steering::StaticEndpoints statics;
    statics.add(6, forward_host(workers_), forward_inside_port, forward_public, forward_public_port);
    return inside ? steering::owner_outbound(rules, ip, 0, &statics) : steering::owner_inbound(rules, ip, 0);
  }
  unsigned expected_handoff(bool inside, const Bytes& ip) const {
    return workers_ > 1 && nic_queue(inside, ip) != owner(inside, ip) ? 1 : 0;
  }

 private:
  unsigned workers_;
  bool emulate_rss_;
  std::unique_ptr<RingPort> in_, out_;
  std::unique_ptr<dataplane::Gateway> gateway_;
  rte_mempool* pool_ = nullptr;
};

// Swap source and destination of a translated packet: the server's answer.
Bytes answer(const Bytes& ip) {
  const std::uint8_t proto = ip[9];
  if (proto == 17) return udp_packet({ip_dst(ip), ip_src(ip)}, l4_dport(ip), l4_sport(ip));
  if (proto == 6)
    return tcp_packet({ip_dst(ip), ip_src(ip)}, l4_dport(ip), l4_sport(ip), packet::tcp_flag::syn | packet::tcp_flag::ack);
  return icmp_echo({ip_dst(ip), ip_src(ip)}, packet::icmp_type::echo_reply, l4_sport(ip), 1);
}

// The payload of a TCP segment and one of its 16-bit fields.
std::uint16_t payload16(const Bytes& p, unsigned off) {
  const unsigned at = ihl(p) + (p[ihl(p) + 12] >> 4) * 4u + off;
  return static_cast<std::uint16_t>(p[at] << 8 | p[at + 1]);
}
std::uint16_t gre_key_call_id(const Bytes& p) { return static_cast<std::uint16_t>(p[ihl(p) + 6] << 8 | p[ihl(p) + 7]); }
std::uint32_t esp_spi(const Bytes& p) {
  const unsigned o = ihl(p);
  return std::uint32_t{p[o]} << 24 | std::uint32_t{p[o + 1]} << 16 | std::uint32_t{p[o + 2]} << 8 | p[o + 3];
}
Bytes ocrq(std::uint16_t call_id) { return pptp_message(7, 168, {{12, call_id}, {14, 0x0101}}); }
Bytes ocrp(std::uint16_t call_id, std::uint16_t peer) { return pptp_message(8, 32, {{12, call_id}, {14, peer}}); }
constexpr std::uint8_t tcp_psh = 0x08;

// Servers of the VPN phase: ESP gateways, PPTP servers, GRE v0 peers.
constexpr unsigned esp_servers = 8, pptp_servers = 4, gre_peers = 4;
be32 esp_server(unsigned k) { return ipv4(203, 0, 113, static_cast<std::uint8_t>(160 + k)); }
be32 pptp_server(unsigned k) { return ipv4(203, 0, 113, static_cast<std::uint8_t>(180 + k)); }
be32 gre_peer(unsigned k) { return ipv4(203, 0, 113, static_cast<std::uint8_t>(200 + k)); }

// Issue 17.3: ESP, PPTP and GRE on the worker of their server, learning as
// with one worker. Pairs of subscribers behind one public address:
//   ESP: per server, the first of a pair learns its inbound SPI while the
//        second's new SPI is held, then the second learns;
//   PPTP: per server, both of a pair open a control connection and a call
//        with Call ID 1 (translated apart), and GRE v1 both ways;
//   GRE v0: one tunnel per peer, both ways.
// Every VPN packet must leave from the subscriber's one public address and
// on the transmit queue of its server's worker (the worker that holds it).
void run_vpn(Harness& h, unsigned workers, Outcome& o, std::uint64_t& expected) {
  const steering::RssSteering* rss = h.gateway().steering();
  const auto server_worker = [&](be32 server) { return workers > 1 ? rss->worker_of_server(server) : 0u; };
  std::map<std::uint32_t, std::vector<be32>> behind;  // public address -> its subscribers
  for (unsigned i = 0; i < subscribers; ++i) behind[o.public_of.at(subscriber(i).host())].push_back(subscriber(i));
  std::vector<std::pair<be32, be32>> pairs;
  for (const auto& [pub, subs] : behind)
    for (std::size_t k = 0; k + 1 < subs.size(); k += 2) pairs.emplace_back(subs[k], subs[k + 1]);
  if (pairs.size() < esp_servers + pptp_servers) {
    o.problems += "too few subscribers share a public address; ";
    return;
  }
  const auto public_of = [&](be32 sub) { return be32::from_host(o.public_of.at(sub.host())); };
  // Sends one packet and takes `want` packets from each side.
  const auto exchange = [&](bool inside, const Bytes& p, unsigned want_outside, unsigned want_inside) {
    expected += h.expected_handoff(inside, p);
    h.send(inside, p);
    std::pair<std::vector<std::pair<Bytes, unsigned>>, std::vector<std::pair<Bytes, unsigned>>> got;
    if (want_outside) got.first = h.collect(false, want_outside);
    if (want_inside) got.second = h.collect(true, want_inside);
    if (got.first.size() != want_outside || got.second.size() != want_inside)
      o.problems += fmt::format("{} -> {} proto {}: {} of {} out, {} of {} in; ", nat::to_string(ip_src(p)),
                                nat::to_string(ip_dst(p)), p[9], got.first.size(), want_outside, got.second.size(),
                                want_inside);
    return got;
  };
  // What left toward a server: from the subscriber's public address, on its server's worker.
  const auto check_out = [&](const std::pair<Bytes, unsigned>& sent, be32 sub, be32 server) {
    const auto& [p, q] = sent;
    if (ip_src(p) != public_of(sub) || ip_dst(p) != server)
      o.problems += fmt::format("{} left as {} to {}; ", nat::to_string(sub), nat::to_string(ip_src(p)),
                                nat::to_string(ip_dst(p)));
    if (q != server_worker(server))
      o.problems += fmt::format("{} to {} left on worker {}, its server's is {}; ", nat::to_string(sub),
                                nat::to_string(server), q, server_worker(server));
    if (workers > 1 && q != rss->worker_of_subscriber(sub)) ++o.vpn_off_subscriber;
  };
  const auto check_in = [&](const std::pair<Bytes, unsigned>& got, be32 sub, be32 server) {
    const auto& [p, q] = got;
    if (ip_dst(p) != sub || ip_src(p) != server)
      o.problems += fmt::format("{}'s answer reached {}; ", nat::to_string(sub), nat::to_string(ip_dst(p)));
    if (q != server_worker(server))
      o.problems += fmt::format("{} from {} on worker {}, its server's is {}; ", nat::to_string(sub),
                                nat::to_string(server), q, server_worker(server));
    return ip_dst(p) == sub;
  };

  // ESP: two clients behind one public address to one server, per server.
  for (unsigned k = 0; k < esp_servers; ++k) {
    const be32 srv = esp_server(k);
    const auto [a, b] = pairs[k];
    const auto first = exchange(true, esp_packet({a, srv}, 0xa000 + k, 1), 1, 0);
    if (first.first.size() == 1) check_out(first.first[0], a, srv);
    exchange(true, esp_packet({b, srv}, 0xb000 + k, 1), 0, 0);  // held: a learns first
    // The server's first answer is a's; b's held packet goes out then.
    const auto answer_a = exchange(false, esp_packet({srv, public_of(a)}, 0xc000 + k, 1), 1, 1);
    if (answer_a.second.size() == 1 && check_in(answer_a.second[0], a, srv) && esp_spi(answer_a.second[0].first) == 0xc000 + k)
      ++o.esp_learned;
    if (answer_a.first.size() == 1) {
      check_out(answer_a.first[0], b, srv);
      if (esp_spi(answer_a.first[0].first) == 0xb000 + k) ++o.esp_released;
    }
    const auto answer_b = exchange(false, esp_packet({srv, public_of(b)}, 0xd000 + k, 1), 0, 1);
    if (answer_b.second.size() == 1 && check_in(answer_b.second[0], b, srv)) ++o.esp_learned;
    // Both learned: the next packets of each SA go both ways directly.
    const auto again_a = exchange(false, esp_packet({srv, public_of(a)}, 0xc000 + k, 2), 0, 1);
    if (again_a.second.size() == 1 && check_in(again_a.second[0], a, srv)) ++o.esp_learned;
    const auto again_b = exchange(true, esp_packet({b, srv}, 0xb000 + k, 2), 1, 0);
    if (again_b.first.size() == 1) check_out(again_b.first[0], b, srv);
  }

  // PPTP: per server, both clients of a pair open a control connection and
  // a call with the same Call ID 1; GRE v1 both ways.
  for (unsigned k = 0; k < pptp_servers; ++k) {
    const be32 srv = pptp_server(k);
    const auto [a, b] = pairs[esp_servers + k];
    std::uint16_t translated[2] = {0, 0};
    for (unsigned c = 0; c < 2; ++c) {
      const be32 sub = c == 0 ? a : b;
      const be32 pub = public_of(sub);
      const std::uint16_t sport = static_cast<std::uint16_t>(47000 + c);
      const auto syn = exchange(true, tcp_packet({sub, srv}, sport, 1723, packet::tcp_flag::syn, Bytes(), 5000), 1, 0);
      if (syn.first.size() != 1) continue;
      check_out(syn.first[0], sub, srv);
      const std::uint16_t pub_port = l4_sport(syn.first[0].first);
      // The server's worker took the port from its own comb: replies find it by RSS.
      if (workers > 1 && rss->worker_of_outside(pub, pub_port) != server_worker(srv))
        o.problems += fmt::format("PPTP control port {}:{} not of its server's worker's comb; ", nat::to_string(pub),
                                  pub_port);
      const auto synack = exchange(
          false, tcp_packet({srv, pub}, 1723, pub_port, packet::tcp_flag::syn | packet::tcp_flag::ack, Bytes(), 9000, 5001),
          0, 1);
      if (synack.second.size() != 1 || !check_in(synack.second[0], sub, srv)) continue;
      ++o.pptp_connected;
      const auto request = exchange(
          true, tcp_packet({sub, srv}, sport, 1723, packet::tcp_flag::ack | tcp_psh, ocrq(1), 5001, 9001), 1, 0);
      if (request.first.size() != 1) continue;
      check_out(request.first[0], sub, srv);
      translated[c] = payload16(request.first[0].first, 12);
      const std::uint16_t server_call = static_cast<std::uint16_t>(0x7000 + 2 * k + c);
      const auto reply = exchange(false,
                                  tcp_packet({srv, pub}, 1723, pub_port, packet::tcp_flag::ack | tcp_psh,
                                             ocrp(server_call, translated[c]), 9001, 5001 + 168),
                                  0, 1);
      if (reply.second.size() != 1 || !check_in(reply.second[0], sub, srv)) continue;
      if (payload16(reply.second[0].first, 14) != 1) {
        o.problems += fmt::format("PPTP Peer's Call ID {} not restored; ", payload16(reply.second[0].first, 14));
        continue;
      }
      ++o.pptp_calls;
      const auto gre_in = exchange(false, gre_packet({srv, pub}, 1, true, translated[c]), 0, 1);
      const auto gre_out = exchange(true, gre_packet({sub, srv}, 1, true, server_call), 1, 0);
      if (gre_in.second.size() == 1 && check_in(gre_in.second[0], sub, srv) &&
          gre_key_call_id(gre_in.second[0].first) == 1 && gre_out.first.size() == 1) {
        check_out(gre_out.first[0], sub, srv);
        ++o.pptp_gre;
      }
    }
    if (translated[0] == translated[1])
      o.problems += fmt::format("PPTP Call IDs of two clients to {} translated alike; ", nat::to_string(srv));
  }

  // GRE v0: one tunnel per peer, both ways, key untouched.
  for (unsigned k = 0; k < gre_peers; ++k) {
    const be32 peer = gre_peer(k);
    const be32 sub = subscriber(3 * k + 1);
    const auto out = exchange(true, gre_packet({sub, peer}, 0, true, 0xabcd0000 + k), 1, 0);
    if (out.first.size() != 1) continue;
    check_out(out.first[0], sub, peer);
    const auto in = exchange(false, gre_packet({peer, public_of(sub)}, 0, true, 0xabcd0000 + k), 0, 1);
    if (in.second.size() == 1 && check_in(in.second[0], sub, peer)) ++o.gre_tunnels;
  }

  for (const stats::WorkerPassthrough& w : h.gateway().snapshot().worker_passthrough)
    if (w.esp_sas + w.pptp_calls + w.gre_tunnels > 0) ++o.vpn_workers;
}

Outcome run(unsigned workers, bool emulate_rss, bool handoff_mode, const std::string& tag,
            const std::string& pool_yaml = nat_pool_yaml) {
  Outcome o;
  Harness h(workers, emulate_rss, handoff_mode, tag, pool_yaml);
  if (!h.ok()) {
    o.problems = "harness did not start";
    return o;
  }
  // Phase 1: TCP and UDP, both directions.
  std::vector<Bytes> outbound;
  for (unsigned i = 0; i < subscribers; ++i) {
    for (unsigned f = 0; f < udp_flows; ++f)
      outbound.push_back(udp_packet({subscriber(i), server}, static_cast<std::uint16_t>(40000 + f), 53));
    outbound.push_back(tcp_packet({subscriber(i), server}, 50000, 443, packet::tcp_flag::syn));
  }
  std::uint64_t expected = 0;
  for (const Bytes& p : outbound) {
    expected += h.expected_handoff(true, p);
    h.send(true, p);
  }
  const auto translated = h.collect(false, static_cast<unsigned>(outbound.size()));
  if (translated.size() != outbound.size())
    o.problems += fmt::format("{} of {} packets left the outside; ", translated.size(), outbound.size());
  for (const auto& [p, q] : translated) {
    const unsigned sub_worker = static_cast<unsigned>(q);  // it left on the queue of the worker holding the session
    o.public_of[ip_src(p).host()] = ip_src(p).host();
    (void)sub_worker;
    const Bytes reply = answer(p);
    expected += h.expected_handoff(false, reply);
    h.send(false, reply);
  }
  const auto back = h.collect(true, static_cast<unsigned>(translated.size()));
  for (const auto& [p, q] : back) (p[9] == 17 ? o.answered_udp : o.answered_tcp)++;
  o.public_of.clear();
  for (unsigned i = 0; i < subscribers; ++i) {
    const dataplane::SubscriberView v = h.gateway().subscriber(subscriber(i), 100);
    o.public_of[subscriber(i).host()] = v.public_address.host();
    for (const auto& sv : v.sessions)
      o.public_endpoints[subscriber(i).host()].emplace_back(sv.public_address.host(), sv.public_port);
    const unsigned owner = h.owner(true, udp_packet({subscriber(i), server}, 1, 1));
    for (const auto& s : v.sessions)
      if (s.worker != owner) {
        o.sessions_on_owner = false;
        o.problems += fmt::format("{} session on worker {}, owner {}; ", nat::to_string(subscriber(i)), s.worker, owner);
      }
    if (v.sessions.size() != udp_flows + 1)
      o.problems += fmt::format("{}: {} sessions; ", nat::to_string(subscriber(i)), v.sessions.size());
  }
  o.handoffs_tcp_udp = h.handoffs();
  if (o.handoffs_tcp_udp != expected)
    o.problems += fmt::format("TCP/UDP handoffs {} expected {}; ", o.handoffs_tcp_udp, expected);

  // Hairpinning (RFC 4787 REQ-9): every subscriber sends to the next one's
  // public UDP endpoint, whichever worker owns that mapping.
  std::map<std::uint32_t, std::pair<be32, std::uint16_t>> endpoint_of;  // subscriber -> its flow 40000 outside
  for (unsigned i = 0; i < subscribers; ++i) {
    const auto view = h.gateway().subscriber(subscriber(i), 100);
    for (const auto& s : view.sessions)
      if (s.inside_port == 40000 && std::string(s.protocol) == "udp")
        endpoint_of[subscriber(i).host()] = {s.public_address, s.public_port};
  }
  const std::uint64_t handoffs_before_hairpin = h.handoffs();
  for (unsigned i = 0; i < subscribers; ++i) {
    const auto& [addr, port] = endpoint_of[subscriber((i + 1) % subscribers).host()];
    h.send(true, udp_packet({subscriber(i), addr}, 41000, port));
  }
  for (const auto& [p, q] : h.collect(true, subscribers))
    if (p[9] == 17 && l4_dport(p) == 40000 && l4_sport(p) != 41000) ++o.hairpinned;
  // Handoffs of the hairpin phase are not counted against the rules above.
  expected += h.handoffs() - handoffs_before_hairpin;

  // A port forward: the server opens, the inside host answers; both
  // directions must meet in one session on the public port's owner.
  const be32 host = forward_host(workers);
  const Bytes syn = tcp_packet({server, forward_public}, 33000, forward_public_port, packet::tcp_flag::syn);
  expected += h.expected_handoff(false, syn);
  h.send(false, syn);
  for (const auto& [p, q] : h.collect(true, 1))
    if (ip_dst(p) == host && l4_dport(p) == forward_inside_port) {
      const Bytes synack = tcp_packet({host, server}, forward_inside_port, 33000,
                                      packet::tcp_flag::syn | packet::tcp_flag::ack);
      expected += h.expected_handoff(true, synack);
      h.send(true, synack);
      for (const auto& [r, rq] : h.collect(false, 1))
        if (ip_src(r) == forward_public && l4_sport(r) == forward_public_port) ++o.forward_answered;
    }
  {
    const auto view = h.gateway().subscriber(host, 10);
    o.forward_sessions = static_cast<unsigned>(view.sessions.size());
    const unsigned owner = workers > 1 ? h.gateway().steering()->worker_of_outside(forward_public, forward_public_port) : 0;
    for (const auto& s : view.sessions)
      if (s.worker != owner) {
        o.sessions_on_owner = false;
        o.problems += fmt::format("port forward session on worker {}, owner {}; ", s.worker, owner);
      }
  }

  // Phase 2: ICMP echo (identifier ownership) and ESP (its server's worker).
  std::vector<Bytes> more;
  for (unsigned i = 0; i < subscribers; ++i) {
    more.push_back(icmp_echo({subscriber(i), server}, packet::icmp_type::echo_request, static_cast<std::uint16_t>(7 + i), 1));
    more.push_back(esp_packet({subscriber(i), ipv4(203, 0, 113, static_cast<std::uint8_t>(100 + i))}, 0x1000 + i, 1));
  }
  for (const Bytes& p : more) {
    expected += h.expected_handoff(true, p);
    h.send(true, p);
  }
  const auto out2 = h.collect(false, static_cast<unsigned>(more.size()));
  if (out2.size() != more.size()) o.problems += fmt::format("{} of {} ICMP/ESP left; ", out2.size(), more.size());
  for (const auto& [p, q] : out2) {
    Bytes reply;
    if (p[9] == 1) reply = answer(p);
    else reply = esp_packet({ip_dst(p), ip_src(p)}, 0x9000 + (ip_dst(p).host() & 0xff), 1);  // server's own SPI
    expected += h.expected_handoff(false, reply);
    h.send(false, reply);
  }
  const auto back2 = h.collect(true, static_cast<unsigned>(out2.size()));
  for (const auto& [p, q] : back2) (p[9] == 1 ? o.answered_icmp : o.answered_esp)++;

  // Phase 3: VPN passthrough on the server's worker.
  run_vpn(h, workers, o, expected);
  o.handoffs_total = h.handoffs();
  o.expected_handoffs_total = expected;
  return o;
}

TEST(MultiWorker, OneWorkerBaseline) {
  const Outcome one = run(1, false, false, "w1");
  EXPECT_EQ(one.problems, "");
  EXPECT_EQ(one.answered_udp, subscribers * udp_flows);
  EXPECT_EQ(one.answered_tcp, subscribers);
  EXPECT_EQ(one.answered_icmp, subscribers);
  EXPECT_EQ(one.answered_esp, subscribers);
  EXPECT_EQ(one.hairpinned, subscribers);
  EXPECT_EQ(one.forward_answered, 1u);
  EXPECT_EQ(one.forward_sessions, 1u);
  EXPECT_EQ(one.handoffs_total, 0u);
  EXPECT_EQ(one.esp_learned, 3 * esp_servers);
  EXPECT_EQ(one.esp_released, esp_servers);
  EXPECT_EQ(one.pptp_connected, 2 * pptp_servers);
  EXPECT_EQ(one.pptp_calls, 2 * pptp_servers);
  EXPECT_EQ(one.pptp_gre, 2 * pptp_servers);
  EXPECT_EQ(one.gre_tunnels, gre_peers);
  EXPECT_EQ(one.vpn_workers, 1u);
}

// The VPN results of several workers equal one worker's, and the VPN state
// is spread: with 8 and more servers it lives on more than one worker
// (all on worker 0 before issue 17.3).
void expect_same_vpn(const Outcome& many, const Outcome& one) {
  EXPECT_EQ(many.esp_learned, one.esp_learned) << "ESP learning, the second client after the first";
  EXPECT_EQ(many.esp_released, one.esp_released);
  EXPECT_EQ(many.pptp_connected, one.pptp_connected);
  EXPECT_EQ(many.pptp_calls, one.pptp_calls) << "PPTP Call IDs translated per server";
  EXPECT_EQ(many.pptp_gre, one.pptp_gre);
  EXPECT_EQ(many.gre_tunnels, one.gre_tunnels);
  EXPECT_GE(many.vpn_workers, 2u) << "VPN passthrough on more than one worker";
  EXPECT_GT(many.vpn_off_subscriber, 0u) << "some subscribers' VPN runs on another worker than their TCP/UDP";
}

class Workers : public ::testing::TestWithParam<unsigned> {};

TEST_P(Workers, RssEmulatedEverySessionOnItsOwnerNoTcpUdpHandoff) {
  const unsigned w = GetParam();
  const Outcome one = run(1, false, false, fmt::format("b{}", w));
  const Outcome many = run(w, true, false, fmt::format("r{}", w));
  EXPECT_EQ(many.problems, "");
  EXPECT_TRUE(many.sessions_on_owner);
  EXPECT_EQ(many.handoffs_tcp_udp, 0u) << "RSS on the destination port (outside) and source address (inside)";
  EXPECT_EQ(many.handoffs_total, many.expected_handoffs_total) << "ICMP and ESP: exactly the predicted handoffs";
  EXPECT_GT(many.expected_handoffs_total, 0u) << "ICMP replies and ESP have no ports to steer by";
  // The same results as one worker: every flow answered, each subscriber on
  // the same public address (paired pooling uses keys common to all workers).
  EXPECT_EQ(many.answered_udp, one.answered_udp);
  EXPECT_EQ(many.answered_tcp, one.answered_tcp);
  EXPECT_EQ(many.answered_icmp, one.answered_icmp);
  EXPECT_EQ(many.answered_esp, one.answered_esp);
  EXPECT_EQ(many.hairpinned, one.hairpinned) << "hairpinning across workers";
  EXPECT_EQ(many.forward_answered, 1u);
  EXPECT_EQ(many.forward_sessions, 1u) << "both directions of a port forward in one session, on one worker";
  EXPECT_EQ(many.public_of, one.public_of);
  expect_same_vpn(many, one);
}

TEST_P(Workers, OneQueueEverythingThroughHandoffStillCorrect) {
  const unsigned w = GetParam();
  const Outcome one = run(1, false, false, fmt::format("c{}", w));
  const Outcome many = run(w, false, true, fmt::format("h{}", w));
  EXPECT_EQ(many.problems, "");
  EXPECT_TRUE(many.sessions_on_owner);
  EXPECT_EQ(many.handoffs_total, many.expected_handoffs_total);
  EXPECT_GT(many.handoffs_tcp_udp, 0u) << "worker 0 receives everything and owns only part of it";
  EXPECT_EQ(many.forward_answered, 1u);
  EXPECT_EQ(many.forward_sessions, 1u);
  EXPECT_EQ(many.answered_udp, one.answered_udp);
  EXPECT_EQ(many.answered_tcp, one.answered_tcp);
  EXPECT_EQ(many.answered_icmp, one.answered_icmp);
  EXPECT_EQ(many.answered_esp, one.answered_esp);
  EXPECT_EQ(many.public_of, one.public_of);
  expect_same_vpn(many, one);
}

// Issue 14: a deterministic pool with several workers. Each subscriber's
// sessions use its own public address and ports of its own range, on the
// worker that owns them, whichever worker that is; the results equal one
// worker's.
TEST_P(Workers, DeterministicPoolKeepsEverySubscriberInItsRange) {
  const unsigned w = GetParam();
  const Outcome one = run(1, false, false, fmt::format("d1{}", w), deterministic_pool_yaml);
  const Outcome many = run(w, true, false, fmt::format("dr{}", w), deterministic_pool_yaml);
  EXPECT_EQ(many.problems, "");
  EXPECT_TRUE(many.sessions_on_owner);
  EXPECT_EQ(many.answered_udp, one.answered_udp);
  EXPECT_EQ(many.answered_tcp, one.answered_tcp);
  EXPECT_EQ(many.answered_udp, subscribers * udp_flows);
  nat::PoolConfig pool;  // deterministic_pool_yaml's
  pool.mode = nat::PoolMode::deterministic;
  pool.subscribers.push_back({ipv4(100, 64, 0, 0), 24});
  pool.public_addresses.push_back({ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 13)});
  const nat::DeterministicMap map(pool);
  ASSERT_EQ(map.geometry().ports_per_subscriber, 1008u);
  for (unsigned i = 0; i < subscribers; ++i) {
    const auto slot = map.forward(subscriber(i));
    ASSERT_TRUE(slot);
    EXPECT_EQ(many.public_of.at(subscriber(i).host()), slot->public_address.host());
    ASSERT_EQ(many.public_endpoints.at(subscriber(i).host()).size(), udp_flows + 1);
    for (const auto& [address, port] : many.public_endpoints.at(subscriber(i).host())) {
      EXPECT_EQ(address, slot->public_address.host());
      EXPECT_GE(port, slot->first_port) << nat::to_string(subscriber(i));
      EXPECT_LE(port, slot->last_port) << nat::to_string(subscriber(i));
    }
  }
}

// Issue 17.4: fragmented replies from outside reach the worker that holds
// their session, later fragments too (they carry no port), in order or with
// later fragments overtaking the first, with RSS (the NIC puts fragments on
// the address's queue) and without (everything arrives at worker 0).
TEST_P(Workers, FragmentsFromOutsideReachTheSessionsWorker) {
  const unsigned w = GetParam();
  for (const bool rss : {true, false}) {
    SCOPED_TRACE(rss ? "RSS" : "one queue");
    Harness h(w, rss, !rss, fmt::format("fr{}{}", w, rss));
    ASSERT_TRUE(h.ok());
    std::vector<Bytes> outbound;
    for (unsigned i = 0; i < subscribers; ++i)
      outbound.push_back(udp_packet({subscriber(i), server}, static_cast<std::uint16_t>(40000 + i), 53));
    for (const Bytes& p : outbound) h.send(true, p);
    const auto translated = h.collect(false, subscribers);
    ASSERT_EQ(translated.size(), subscribers);
    // Each reply 1,200 bytes of payload in 4 fragments (3 x 400 bytes of
    // data and the rest); odd subscribers get the later ones first.
    unsigned fragments = 0, crossing = 0;
    for (unsigned k = 0; k < translated.size(); ++k) {
      const Bytes& p = translated[k].first;
      IpFields ip{ip_dst(p), ip_src(p)};
      ip.id = static_cast<std::uint16_t>(0x7000 + k);
      const Bytes reply = udp_packet(ip, l4_dport(p), l4_sport(p), Bytes(1200, static_cast<std::uint8_t>(k)));
      std::vector<Bytes> pieces = fragment(reply, 400);
      ASSERT_GE(pieces.size(), 3u);
      if (k % 2) std::rotate(pieces.begin(), pieces.begin() + 1, pieces.end());  // first fragment last
      const unsigned owner = h.gateway().steering()->worker_of_outside(ip_src(p), l4_sport(p));
      if (owner != h.gateway().steering()->worker_of_outside_portless(ip_src(p))) ++crossing;
      for (const Bytes& piece : pieces) h.send(false, piece);
      fragments += static_cast<unsigned>(pieces.size());
    }
    EXPECT_GT(crossing, 0u) << "some sessions must live on another worker than their address's rendezvous";
    const auto back = h.collect(true, fragments);
    EXPECT_EQ(back.size(), fragments) << "every fragment translated, none left on the wrong worker";
    std::map<std::uint32_t, unsigned> per_subscriber;
    for (const auto& [p, q] : back) ++per_subscriber[ip_dst(p).host()];
    for (unsigned i = 0; i < subscribers; ++i)
      EXPECT_EQ(per_subscriber[subscriber(i).host()], 4u) << nat::to_string(subscriber(i));
    const stats::PortCounters c = h.outside_counters();
    EXPECT_EQ(c.get(stats::PortDrop::fragment_unmatched), 0u);
    EXPECT_EQ(c.get(stats::PortDrop::fragment_wait_full), 0u);
    EXPECT_EQ(c.get(stats::PortDrop::nat), 0u);

    // A later fragment whose first never comes waits its 2 s and is counted.
    IpFields stray{server, ip_src(translated[0].first)};
    stray.id = 0x7fff;
    const auto stray_pieces = fragment(udp_packet(stray, 53, 40000, Bytes(1200, 1)), 400);
    h.send(false, stray_pieces.back());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (h.outside_counters().get(stats::PortDrop::fragment_unmatched) == 0 &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(h.outside_counters().get(stats::PortDrop::fragment_unmatched), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(TwoAndFour, Workers, ::testing::Values(2u, 4u));

// Reloads with the workers running (issue 11.3): each worker applies the
// plan the control core made for its engine, established flows keep going,
// and an address a reload removed that still carries port blocks in an
// engine cannot join another pool: the control core asks the engines what
// still drains before it accepts.
TEST(MultiWorker, AddressMovedBetweenPoolsWhileDrainingIsRefused) {
  Harness h(2, true, false, "rl2");
  ASSERT_TRUE(h.ok());
  std::vector<Bytes> outbound;
  for (unsigned i = 0; i < subscribers; ++i) outbound.push_back(udp_packet({subscriber(i), server}, 40000, 53));
  for (const Bytes& p : outbound) h.send(true, p);
  const auto translated = h.collect(false, static_cast<unsigned>(outbound.size()));
  ASSERT_EQ(translated.size(), outbound.size());
  std::set<std::uint32_t> used;
  for (const auto& [p, q] : translated) used.insert(ip_src(p).host());
  ASSERT_TRUE(used.size() > 1) << "subscribers spread over the pool's addresses";

  const config::GatewayConfig start = h.gateway().config();
  config::GatewayConfig fewer = start;  // 198.51.100.11-13 removed: those in use drain
  fewer.nat.pools[0].public_addresses = {{ipv4(198, 51, 100, 10), ipv4(198, 51, 100, 10)}};
  const dataplane::ReloadOutcome first = h.gateway().reload(fewer);
  ASSERT_TRUE(first.applied) << (first.problems.empty() ? "" : first.problems[0]);
  for (const auto& [p, q] : translated) h.send(false, answer(p));
  EXPECT_EQ(h.collect(true, static_cast<unsigned>(translated.size())).size(), translated.size())
      << "established flows on removed addresses keep flowing while they drain";

  config::GatewayConfig moved = fewer;  // and now into another pool, while they drain
  nat::PoolConfig other = fewer.nat.pools[0];
  other.name = "other";
  other.subscribers = {{ipv4(100, 65, 0, 0), 16}};
  other.public_addresses = {{ipv4(198, 51, 100, 11), ipv4(198, 51, 100, 13)}};
  moved.nat.pools.push_back(other);
  const dataplane::ReloadOutcome second = h.gateway().reload(moved);
  EXPECT_FALSE(second.applied) << "the running and the next policy alone allow it: only the engines know";
  ASSERT_EQ(second.problems.size(), 1u);
  EXPECT_NE(second.problems[0].find("pool 'other'"), std::string::npos) << second.problems[0];
  EXPECT_NE(second.problems[0].find("still drain"), std::string::npos) << second.problems[0];
  EXPECT_NE(second.problems[0].find("in pool 'cgn'"), std::string::npos) << second.problems[0];
  EXPECT_EQ(h.gateway().generation(), 2u) << "a refused reload changes nothing";

  // Back into their own pool: accepted, and they serve new subscribers again.
  const dataplane::ReloadOutcome back = h.gateway().reload(start);
  EXPECT_TRUE(back.applied) << (back.problems.empty() ? "" : back.problems[0]);
}

// Issue 12.5: a reload never waits forever for a stalled worker.
// Stalled while the reload asks what drains: refused, saying so.
TEST(MultiWorker, ReloadWhileAWorkerIsStalledIsRefusedNotWaitedOn) {
  Harness h(2, true, false, "stall1");
  ASSERT_TRUE(h.ok());
  std::atomic<bool> release{false}, stalled{false};
  std::thread staller([&] {
    h.gateway().run_on_worker(1, [&] {
      stalled = true;
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }, 2000);
  });
  while (!stalled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const config::GatewayConfig cfg = h.gateway().config();
  const dataplane::ReloadOutcome r = h.gateway().reload(cfg);
  EXPECT_FALSE(r.applied);
  ASSERT_FALSE(r.problems.empty());
  EXPECT_NE(r.problems[0].find("did not answer"), std::string::npos) << r.problems[0];
  release = true;
  staller.join();
  EXPECT_TRUE(h.gateway().reload(cfg).applied);
}

// Stalled after the checks, as the new policy is published: the reload
// returns after reload_apply_timeout_ms naming the late worker, keeps what it
// may still read, refuses the next reload until it has caught up, and the
// worker takes the policy (and its plan) when it runs again.
TEST(MultiWorker, WorkerStalledAtPublishIsReportedLateAndCatchesUp) {
  Harness h(2, true, false, "stall2");
  ASSERT_TRUE(h.ok());
  std::atomic<bool> release{false}, stalled{false};
  std::thread staller;
  const config::GatewayConfig cfg = h.gateway().config();
  const dataplane::ReloadOutcome late = h.gateway().reload(cfg, [&] {
    staller = std::thread([&] {
      h.gateway().run_on_worker(1, [&] {
        stalled = true;
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }, 2000);
    });
    while (!stalled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  EXPECT_TRUE(late.applied);
  EXPECT_EQ(late.late_workers, std::vector<unsigned>{1});
  EXPECT_NE(late.summary.find("did not take it within"), std::string::npos) << late.summary;
  const dataplane::ReloadOutcome behind = h.gateway().reload(cfg);
  EXPECT_FALSE(behind.applied) << "no new policy while a worker is behind";
  ASSERT_FALSE(behind.problems.empty());
  EXPECT_NE(behind.problems[0].find("have not yet taken generation"), std::string::npos) << behind.problems[0];
  release = true;
  staller.join();
  // The worker takes the policy at its next turn; then reloads go through.
  dataplane::ReloadOutcome after;
  for (int i = 0; i < 200 && !after.applied; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = h.gateway().reload(cfg);
  }
  EXPECT_TRUE(after.applied) << (after.problems.empty() ? "" : after.problems[0]);
  EXPECT_TRUE(after.late_workers.empty());
  // Traffic still flows on both workers.
  std::vector<Bytes> outbound;
  for (unsigned i = 0; i < subscribers; ++i) outbound.push_back(udp_packet({subscriber(i), server}, 41000, 53));
  for (const Bytes& p : outbound) h.send(true, p);
  EXPECT_EQ(h.collect(false, static_cast<unsigned>(outbound.size())).size(), outbound.size());
}

}  // namespace
}  // namespace passgate

int main(int argc, char** argv) {
  // The test and up to four workers.
  return passgate::testing::run_ring_port_tests(argc, argv, "multiworker", 5, "pgmw");
}
