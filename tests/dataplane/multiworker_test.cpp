// Several workers, end to end inside one process: the real Gateway (ports,
// workers on their own lcores, NAT engines, handoff rings) on DPDK ring
// ports with one queue per worker. The test is the NIC and the peers: it
// puts every frame on the receive queue that RSS would choose, computed with
// DPDK's own rte_softrss over the keys and redirection table passgate asked
// the port to use, and answers what the gateway sends out.
//
// Checked (issue 7): every session lives on the worker that owns it, in both
// directions; with RSS emulated no TCP/UDP packet is handed over and ICMP/ESP
// handoffs are exactly those the ownership rules predict; with one queue
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

  // Phase 2: ICMP echo (identifier ownership) and ESP (the VPN worker).
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
