// One worker's duties around the NAT, on the real Gateway with DPDK ring
// ports: what until now only the namespace tests (tests/e2e) checked. The
// test is the wire: it puts frames on a port's receive ring, and reads what
// the gateway transmitted from its transmit ring.
//
// Checked: 802.1Q in and out (inline and stripped tags); TTL 1 answered with
// Time Exceeded in both directions (RFC 1812 5.3.1); Don't Fragment packets
// too large for the egress answered with Fragmentation Needed (RFC 1191),
// others fragmented (RFC 1812 5.2.6); ARP answered, learned, and the packet
// that waited for it sent (RFC 826); frames for other MACs, martian sources,
// our own addresses as source, and packets on the wrong side dropped and
// counted; forward mode routes without translating; hairpinning (RFC 4787
// REQ-9), across two workers too; and after every test every buffer is back
// in the gateway's pool.
//
// Each check waits for the gateway by a probe: an echo request to the port's
// own address, sent after the frames under test. The ring keeps the order
// and the worker handles a burst before it transmits, so once the echo reply
// is out, everything sent before it has been handled and transmitted.
#include <gtest/gtest.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "config/gateway_config.hpp"
#include "dataplane/gateway.hpp"
#include "packet/headers.hpp"
#include "packet/router.hpp"
#include "ring_harness.hpp"
#include "support/packet_builder.hpp"

namespace passgate {
namespace {

using namespace passgate::testing;
using stats::PortDrop;

constexpr std::uint8_t inside_mac[6] = {0x02, 0, 0, 0, 0x10, 0x01};
constexpr std::uint8_t outside_mac[6] = {0x02, 0, 0, 0, 0x10, 0x02};
constexpr std::uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// Every neighbour's MAC ends with the last byte of its address.
constexpr std::uint8_t neighbour_mac(std::uint8_t last) { return last; }

const be32 inside_address = ipv4(100, 64, 0, 1);
const be32 outside_address = ipv4(198, 51, 100, 1);
const be32 subscriber = ipv4(100, 64, 0, 10);  // a static neighbour
const be32 server = ipv4(203, 0, 113, 9);      // behind the outside gateway .254

struct Options {
  const char* mode = "nat";
  unsigned workers = 1;
  std::uint16_t inside_vlan = 0, outside_vlan = 0;
  std::uint16_t inside_mtu = 1500, outside_mtu = 1500;
  bool inside_promiscuous = false;
};

std::string neighbour(be32 a) {
  return fmt::format("      - {{address: {}, mac: \"02:00:00:00:20:{:02x}\"}}\n", nat::to_string(a), a.host() & 0xff);
}

std::string yaml(const Options& o, const std::string& in, const std::string& out) {
  std::string workers;
  for (unsigned w = 1; w <= o.workers; ++w) workers += fmt::format("{}{}", w == 1 ? "" : ", ", w);
  return fmt::format(R"(dataplane:
  workers: [{}]
  mode: {}
  steering: handoff
  mbuf_cache: 32
  neighbour: {{table_size: 64, queue: 4, retry_ms: 60000}}
ports:
  - name: inside
    device: "{}"
    role: inside
    address: 100.64.0.1/24
    mac: "02:00:00:00:10:01"
    vlan: {}
    mtu: {}
    promiscuous: {}
    rx_queues: 1
    tx_queues: {}
    rx_descriptors: 256
    tx_descriptors: 256
    routes:
      - {{prefix: 100.65.0.0/16, via: 100.64.0.2}}
      - {{prefix: 100.65.1.0/24, via: 100.64.0.3}}
    neighbours:
{}{}{}  - name: outside
    device: "{}"
    role: outside
    address: 198.51.100.1/24
    gateway: 198.51.100.254
    mac: "02:00:00:00:10:02"
    vlan: {}
    mtu: {}
    rx_queues: 1
    tx_queues: {}
    rx_descriptors: 256
    tx_descriptors: 256
    neighbours:
{}nat:
  random_seed: 2026
  max_sessions: 4096
  pools:
    - name: cgn
      subscribers: [100.64.0.0/24, 100.65.0.0/16, 100.66.0.0/24]
      public: [198.51.100.10-198.51.100.13]
      block_size: 256
)",
                     workers, o.mode, in, o.inside_vlan, o.inside_mtu, o.inside_promiscuous ? "true" : "false",
                     o.workers, neighbour(subscriber), neighbour(ipv4(100, 64, 0, 2)), neighbour(ipv4(100, 64, 0, 3)),
                     out, o.outside_vlan, o.outside_mtu, o.workers, neighbour(ipv4(198, 51, 100, 254)));
}

// A frame as it crossed the wire, split.
struct Frame {
  Bytes bytes;
  std::uint16_t vlan = 0;  // 0: untagged
  std::uint16_t ethertype = 0;
  Bytes l3;  // what follows the Ethernet (and 802.1Q) header
  [[nodiscard]] const std::uint8_t* dst() const { return bytes.data(); }
  [[nodiscard]] bool is_ipv4() const { return ethertype == 0x0800 && l3.size() >= 20; }
  [[nodiscard]] std::uint8_t proto() const { return l3[9]; }
  [[nodiscard]] std::uint8_t ttl() const { return l3[8]; }
};

Frame split(Bytes b) {
  Frame f;
  f.bytes = std::move(b);
  if (f.bytes.size() < 14) return f;
  unsigned l2 = 14;
  f.ethertype = static_cast<std::uint16_t>((f.bytes[12] << 8) | f.bytes[13]);
  if (f.ethertype == 0x8100 && f.bytes.size() >= 18) {
    f.vlan = static_cast<std::uint16_t>(((f.bytes[14] << 8) | f.bytes[15]) & 0x0fff);
    f.ethertype = static_cast<std::uint16_t>((f.bytes[16] << 8) | f.bytes[17]);
    l2 = 18;
  }
  f.l3.assign(f.bytes.begin() + l2, f.bytes.end());
  return f;
}

// Ethernet (with an inline 802.1Q tag when vlan != 0) around `payload`.
Bytes ethernet(const std::uint8_t* dst, std::uint16_t ethertype, const Bytes& payload, std::uint16_t vlan = 0,
               std::uint8_t src_last = 0x0a) {
  Bytes b(dst, dst + 6);
  const std::uint8_t src[6] = {0x02, 0, 0, 0, 0x20, src_last};
  b.insert(b.end(), src, src + 6);
  if (vlan) {
    b.push_back(0x81), b.push_back(0x00);
    b.push_back(static_cast<std::uint8_t>(vlan >> 8)), b.push_back(static_cast<std::uint8_t>(vlan));
  }
  b.push_back(static_cast<std::uint8_t>(ethertype >> 8)), b.push_back(static_cast<std::uint8_t>(ethertype));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// An ARP packet (RFC 826) for Ethernet and IPv4.
Bytes arp(std::uint16_t op, const std::uint8_t* sender_mac, be32 sender, be32 target) {
  Bytes b = {0, 1, 8, 0, 6, 4, 0, static_cast<std::uint8_t>(op)};
  b.insert(b.end(), sender_mac, sender_mac + 6);
  b.insert(b.end(), reinterpret_cast<const std::uint8_t*>(&sender.raw), reinterpret_cast<const std::uint8_t*>(&sender.raw) + 4);
  b.insert(b.end(), 6, 0);
  b.insert(b.end(), reinterpret_cast<const std::uint8_t*>(&target.raw), reinterpret_cast<const std::uint8_t*>(&target.raw) + 4);
  return b;
}

// Sets Don't Fragment and refreshes the header checksum.
Bytes with_df(Bytes p) {
  p[6] |= 0x40;
  p[10] = p[11] = 0;
  std::uint32_t sum = 0;
  for (unsigned i = 0; i < ihl(p); i += 2) sum += static_cast<std::uint32_t>((p[i] << 8) | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  p[10] = static_cast<std::uint8_t>(~sum >> 8), p[11] = static_cast<std::uint8_t>(~sum);
  return p;
}

Bytes udp_of_size(IpFields ip, std::uint16_t sport, std::uint16_t dport, std::size_t total) {
  return udp_packet(ip, sport, dport, Bytes(total - 28, 0x42));
}

class Harness {
 public:
  explicit Harness(const Options& o) : options_(o) {
    static unsigned instance = 0;
    const std::string tag = fmt::format("wk{}", instance++);
    in_ = std::make_unique<RingPort>(tag + "i", 1, o.workers, 1024, RING_F_SC_DEQ);
    out_ = std::make_unique<RingPort>(tag + "o", 1, o.workers, 1024, RING_F_SC_DEQ);
    auto loaded = config::parse_gateway_config(yaml(o, in_->name, out_->name), "test.yaml");
    EXPECT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : config::to_string(loaded.errors[0]));
    if (!loaded.config) return;
    std::string error;
    gateway_ = dataplane::Gateway::create(*loaded.config, &error);
    EXPECT_TRUE(gateway_) << error;
    if (!gateway_) return;
    pool_ = rte_mempool_lookup("passgate_mbufs");
    EXPECT_NE(pool_, nullptr);
    if (pool_) free_at_start_ = rte_mempool_avail_count(pool_);
    EXPECT_TRUE(gateway_->start(&error)) << error;
  }
  // Every buffer back: what the test sent, what the gateway made, and what
  // it held (transmit buffers, ARP queues) once stopped.
  ~Harness() {
    if (gateway_) {
      gateway_->stop();
      for (RingPort* p : {in_.get(), out_.get()})
        for (auto* r : p->tx) free_frames(r);
      if (pool_) {
        EXPECT_EQ(rte_mempool_avail_count(pool_), free_at_start_) << "buffers lost";
        EXPECT_EQ(rte_mempool_avail_count(pool_), pool_->size);
      }
    }
  }
  [[nodiscard]] bool ok() const { return gateway_ && pool_; }
  dataplane::Gateway& gateway() { return *gateway_; }

  // Puts a frame on a port's receive ring. stripped_vlan: as a NIC that took
  // the tag out into the mbuf.
  void send_frame(bool inside, const Bytes& frame, std::optional<std::uint16_t> stripped_vlan = std::nullopt) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    auto* data = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(frame.size())));
    ASSERT_NE(data, nullptr);
    std::memcpy(data, frame.data(), frame.size());
    if (stripped_vlan) {
      m->ol_flags |= RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_VLAN;
      m->vlan_tci = *stripped_vlan;
    }
    ASSERT_EQ(rte_ring_enqueue((inside ? *in_ : *out_).rx[0], m), 0);
  }
  // An IPv4 packet from a peer, to the port's MAC and in the port's VLAN.
  void send(bool inside, const Bytes& ip) {
    send_frame(inside, ethernet(inside ? inside_mac : outside_mac, 0x0800, ip,
                                inside ? options_.inside_vlan : options_.outside_vlan,
                                static_cast<std::uint8_t>(ip_src(ip).host() & 0xff)));
  }

  // What the gateway transmitted on a port since the last call, once every
  // frame sent before has been handled (the probe above; its reply is not
  // returned).
  std::vector<Frame> sync(bool inside) {
    const be32 own = inside ? inside_address : outside_address;
    const be32 peer = inside ? subscriber : server;
    const std::uint16_t id = ++probe_;
    send(inside, icmp_echo({peer, own}, packet::icmp_type::echo_request, id, 1));
    std::vector<Frame> got;
    bool done = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      for (auto* r : (inside ? *in_ : *out_).tx) {
        void* obj;
        while (rte_ring_dequeue(r, &obj) == 0) {
          auto* m = static_cast<rte_mbuf*>(obj);
          const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
          Frame f = split(Bytes(p, p + rte_pktmbuf_data_len(m)));
          rte_pktmbuf_free(m);
          if (f.is_ipv4() && f.proto() == 1 && f.l3[20] == packet::icmp_type::echo_reply && ip_src(f.l3) == own &&
              l4_sport(f.l3) == id) {
            done = true;
            continue;
          }
          got.push_back(std::move(f));
        }
      }
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(done) << "the probe was not answered";
    return got;
  }
  // Both ports, inside first: waits on both probes.
  std::pair<std::vector<Frame>, std::vector<Frame>> sync_both() {
    auto out = sync(false);
    auto in = sync(true);
    auto out_late = sync(false);  // what the inside's frames sent out of the outside
    out.insert(out.end(), out_late.begin(), out_late.end());
    return {std::move(in), std::move(out)};
  }

  stats::PortCounters counters(bool inside) { return gateway_->snapshot().ports[inside ? 0 : 1]; }

 private:
  Options options_;
  std::unique_ptr<RingPort> in_, out_;
  std::unique_ptr<dataplane::Gateway> gateway_;
  rte_mempool* pool_ = nullptr;
  unsigned free_at_start_ = 0;
  std::uint16_t probe_ = 0;
};

// The outbound packet out of the outside, and the server's answer to it.
Bytes reply_to(const Bytes& translated, std::uint8_t ttl = 64) {
  return udp_packet({ip_dst(translated), ip_src(translated), ttl}, l4_dport(translated), l4_sport(translated));
}

// Opens a UDP mapping for `from`:sport and returns the translated packet.
// With several workers a packet handed over may leave after the probe: the
// probes repeat until it has.
Bytes open_mapping(Harness& h, be32 from, std::uint16_t sport) {
  h.send(true, udp_packet({from, server}, sport, 53));
  std::vector<Frame> out;
  for (int tries = 0; tries < 50 && out.empty(); ++tries) {
    auto [in, more] = h.sync_both();
    EXPECT_TRUE(in.empty());
    out.insert(out.end(), more.begin(), more.end());
  }
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? Bytes{} : out[0].l3;
}

TEST(Worker, TranslatesBothWaysWithTtlDecrementedAndNeighbourMacs) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  h.send(true, udp_packet({subscriber, server, 9}, 40000, 53));
  auto [in, out] = h.sync_both();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(in.empty());
  const Frame& f = out[0];
  EXPECT_EQ(std::memcmp(f.dst(), "\x02\x00\x00\x00\x20\xfe", 6), 0) << "to the outside gateway's MAC";
  EXPECT_EQ(std::memcmp(f.bytes.data() + 6, outside_mac, 6), 0);
  EXPECT_EQ(f.vlan, 0);
  EXPECT_EQ(f.ttl(), 8);
  EXPECT_EQ(checksum_problems(f.l3), "");
  EXPECT_EQ(ip_src(f.l3).host() >> 8, ipv4(198, 51, 100, 0).host() >> 8);
  h.send(false, reply_to(f.l3, 5));
  auto [in2, out2] = h.sync_both();
  ASSERT_EQ(in2.size(), 1u);
  EXPECT_TRUE(out2.empty());
  EXPECT_EQ(std::memcmp(in2[0].dst(), "\x02\x00\x00\x00\x20\x0a", 6), 0) << "to the subscriber's MAC";
  EXPECT_EQ(ip_dst(in2[0].l3), subscriber);
  EXPECT_EQ(l4_dport(in2[0].l3), 40000);
  EXPECT_EQ(in2[0].ttl(), 4);
  EXPECT_EQ(checksum_problems(in2[0].l3), "");
  const auto ci = h.counters(true), co = h.counters(false);
  EXPECT_EQ(ci.tx_packets, 1u + 2u);  // the reply and two probe answers
  EXPECT_EQ(co.tx_packets, 1u + 4u);
  for (unsigned d = 0; d < stats::port_drop_count; ++d) {
    EXPECT_EQ(ci.drop[d], 0u) << stats::port_drop_name(static_cast<PortDrop>(d));
    EXPECT_EQ(co.drop[d], 0u) << stats::port_drop_name(static_cast<PortDrop>(d));
  }
}

TEST(Worker, VlanTagsInAndOut) {
  Harness h({.inside_vlan = 10, .outside_vlan = 20});
  ASSERT_TRUE(h.ok());
  h.send(true, udp_packet({subscriber, server}, 40000, 53));
  auto [in, out] = h.sync_both();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].vlan, 20);
  EXPECT_EQ(out[0].ethertype, 0x0800);
  h.send(false, reply_to(out[0].l3));
  auto [in2, out2] = h.sync_both();
  ASSERT_EQ(in2.size(), 1u);
  EXPECT_EQ(in2[0].vlan, 10);
  EXPECT_EQ(ip_dst(in2[0].l3), subscriber);

  // A tag the NIC stripped counts as the frame's own.
  const Bytes second = udp_packet({subscriber, server}, 40001, 53);
  h.send_frame(true, ethernet(inside_mac, 0x0800, second), std::uint16_t{10});
  auto [in3, out3] = h.sync_both();
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_EQ(out3[0].vlan, 20);

  // Another VLAN, no tag, a stripped tag of another VLAN, a runt tag.
  h.send_frame(true, ethernet(inside_mac, 0x0800, second, 11));
  h.send_frame(true, ethernet(inside_mac, 0x0800, second));
  h.send_frame(true, ethernet(inside_mac, 0x0800, second), std::uint16_t{11});
  Bytes runt(inside_mac, inside_mac + 6);  // a tag cut short
  runt.insert(runt.end(), {0x02, 0, 0, 0, 0x20, 0x0a, 0x81, 0x00, 0x00});
  h.send_frame(true, runt);
  auto [in4, out4] = h.sync_both();
  EXPECT_TRUE(in4.empty());
  EXPECT_TRUE(out4.empty());
  EXPECT_EQ(h.counters(true).get(PortDrop::vlan_mismatch), 3u);
  EXPECT_EQ(h.counters(true).get(PortDrop::runt), 1u);

  // ARP answered in the port's VLAN.
  const std::uint8_t peer[6] = {0x02, 0, 0, 0, 0x20, 0x0a};
  h.send_frame(true, ethernet(broadcast, 0x0806, arp(1, peer, subscriber, inside_address), 10));
  auto [in5, out5] = h.sync_both();
  ASSERT_EQ(in5.size(), 1u);
  EXPECT_EQ(in5[0].vlan, 10);
  EXPECT_EQ(in5[0].ethertype, 0x0806);
}

TEST(Worker, TtlOneAnsweredWithTimeExceededBothWays) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  // Outbound: answered from the inside address, quoting the packet as sent.
  const Bytes expiring = udp_packet({subscriber, server, 1}, 40000, 53);
  h.send(true, expiring);
  auto [in, out] = h.sync_both();
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(ip_src(in[0].l3), inside_address);
  EXPECT_EQ(ip_dst(in[0].l3), subscriber);
  EXPECT_EQ(in[0].l3[20], packet::icmp_type::time_exceeded);
  EXPECT_EQ(in[0].l3[21], packet::icmp_code::ttl_exceeded_in_transit);
  EXPECT_EQ(Bytes(in[0].l3.begin() + 28, in[0].l3.end()), expiring);
  EXPECT_EQ(checksum_problems(in[0].l3), "");
  EXPECT_EQ(h.counters(false).get(PortDrop::ttl_exceeded), 1u);
  EXPECT_EQ(h.counters(true).icmp_time_exceeded_sent, 1u);

  // Inbound to a mapping: answered from the outside address.
  const Bytes translated = open_mapping(h, subscriber, 40001);
  ASSERT_FALSE(translated.empty());
  const Bytes back = reply_to(translated, 1);
  h.send(false, back);
  auto [in2, out2] = h.sync_both();
  EXPECT_TRUE(in2.empty());
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(ip_src(out2[0].l3), outside_address);
  EXPECT_EQ(ip_dst(out2[0].l3), server);
  EXPECT_EQ(out2[0].l3[20], packet::icmp_type::time_exceeded);
  EXPECT_EQ(Bytes(out2[0].l3.begin() + 28, out2[0].l3.end()), back);
  EXPECT_EQ(h.counters(true).get(PortDrop::ttl_exceeded), 1u);
  EXPECT_EQ(h.counters(false).icmp_time_exceeded_sent, 1u);

  // Inbound to no mapping: no error (RFC 1812 4.3.2: not for a port scan).
  h.send(false, udp_packet({server, ipv4(198, 51, 100, 12), 1}, 53, 999));
  auto [in3, out3] = h.sync_both();
  EXPECT_TRUE(in3.empty());
  EXPECT_TRUE(out3.empty());
  EXPECT_EQ(h.counters(false).get(PortDrop::nat), 1u);
  EXPECT_EQ(h.counters(false).icmp_time_exceeded_sent, 1u);
}

TEST(Worker, DontFragmentTooLargeAnsweredOthersFragmented) {
  Harness h({.inside_mtu = 1280, .outside_mtu = 1400});
  ASSERT_TRUE(h.ok());
  // Outbound, Don't Fragment: Fragmentation Needed with the outside MTU.
  h.send(true, with_df(udp_of_size({subscriber, server}, 40000, 53, 1450)));
  auto [in, out] = h.sync_both();
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].l3[20], packet::icmp_type::dest_unreachable);
  EXPECT_EQ(in[0].l3[21], packet::icmp_code::fragmentation_needed);
  EXPECT_EQ((in[0].l3[26] << 8) | in[0].l3[27], 1400);
  EXPECT_EQ(h.counters(false).get(PortDrop::mtu_exceeded), 1u);
  EXPECT_EQ(h.counters(true).icmp_frag_needed_sent, 1u);

  // Outbound without DF: two fragments, translated.
  h.send(true, udp_of_size({subscriber, server}, 40001, 53, 1450));
  auto [in2, out2] = h.sync_both();
  EXPECT_TRUE(in2.empty());
  ASSERT_EQ(out2.size(), 2u);
  std::size_t data = 0;
  for (const Frame& f : out2) {
    EXPECT_LE(f.l3.size(), 1400u);
    EXPECT_EQ(ip_src(f.l3).host() >> 8, ipv4(198, 51, 100, 0).host() >> 8);
    data += f.l3.size() - 20;
  }
  EXPECT_EQ(data, 1430u);
  EXPECT_EQ(h.counters(false).packets_fragmented, 1u);
  EXPECT_EQ(h.counters(false).fragments_sent, 2u);

  // Inbound to the mapping, Don't Fragment: answered with the inside MTU.
  const Bytes translated = open_mapping(h, subscriber, 40002);
  ASSERT_FALSE(translated.empty());
  const Bytes big_reply = udp_of_size({server, ip_src(translated)}, 53, l4_sport(translated), 1350);
  h.send(false, with_df(big_reply));
  auto [in3, out3] = h.sync_both();
  EXPECT_TRUE(in3.empty());
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_EQ(out3[0].l3[20], packet::icmp_type::dest_unreachable);
  EXPECT_EQ((out3[0].l3[26] << 8) | out3[0].l3[27], 1280);
  EXPECT_EQ(h.counters(true).get(PortDrop::mtu_exceeded), 1u);
  EXPECT_EQ(h.counters(false).icmp_frag_needed_sent, 1u);

  // Inbound without DF: fragmented toward the subscriber.
  h.send(false, big_reply);
  auto [in4, out4] = h.sync_both();
  EXPECT_TRUE(out4.empty());
  ASSERT_EQ(in4.size(), 2u);
  for (const Frame& f : in4) {
    EXPECT_LE(f.l3.size(), 1280u);
    EXPECT_EQ(ip_dst(f.l3), subscriber);
  }
  EXPECT_EQ(h.counters(true).packets_fragmented, 1u);
}

TEST(Worker, ArpAnsweredLearnedAndTheWaitingPacketSent) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  const std::uint8_t host_mac[6] = {0x02, 0, 0, 0, 0x20, 0x4d};
  const be32 host = ipv4(100, 64, 0, 77);  // no static entry
  // A request for the inside address: answered, the sender learned.
  h.send_frame(true, ethernet(broadcast, 0x0806, arp(1, host_mac, host, inside_address), 0, 0x4d));
  auto [in, out] = h.sync_both();
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(in[0].ethertype, 0x0806);
  EXPECT_EQ(std::memcmp(in[0].dst(), host_mac, 6), 0);
  EXPECT_EQ(in[0].l3[7], 2) << "a reply";
  EXPECT_EQ(std::memcmp(in[0].l3.data() + 8, inside_mac, 6), 0);
  EXPECT_EQ(h.counters(true).arp_requests_answered, 1u);
  // The learned neighbour is used without asking.
  const Bytes translated = open_mapping(h, host, 40000);
  ASSERT_FALSE(translated.empty());
  h.send(false, reply_to(translated));
  auto [in2, out2] = h.sync_both();
  ASSERT_EQ(in2.size(), 1u);
  EXPECT_EQ(std::memcmp(in2[0].dst(), host_mac, 6), 0);
  EXPECT_EQ(h.counters(true).arp_requests_sent, 0u);

  // A public address is answered on the outside, not on the inside.
  const std::uint8_t server_side[6] = {0x02, 0, 0, 0, 0x20, 0xfe};
  h.send_frame(false, ethernet(broadcast, 0x0806, arp(1, server_side, ipv4(198, 51, 100, 254), ipv4(198, 51, 100, 11)), 0, 0xfe));
  h.send_frame(true, ethernet(broadcast, 0x0806, arp(1, host_mac, host, ipv4(198, 51, 100, 11)), 0, 0x4d));
  auto [in3, out3] = h.sync_both();
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_EQ(out3[0].ethertype, 0x0806);
  EXPECT_TRUE(in3.empty());
  EXPECT_EQ(h.counters(false).arp_requests_answered, 1u);
  EXPECT_EQ(h.counters(true).get(PortDrop::arp_ignored), 1u);
  // From a sender off the port's subnet: not answered.
  h.send_frame(true, ethernet(broadcast, 0x0806, arp(1, host_mac, ipv4(10, 9, 9, 9), inside_address), 0, 0x4d));
  auto [in4, out4] = h.sync_both();
  EXPECT_TRUE(in4.empty());
  EXPECT_EQ(h.counters(true).get(PortDrop::arp_off_subnet), 1u);

  // A subscriber nobody knows: its packet waits for ARP, sent once answered.
  const be32 stranger = ipv4(100, 64, 0, 99);
  const std::uint8_t stranger_mac[6] = {0x02, 0, 0, 0, 0x20, 0x63};
  const Bytes t2 = open_mapping(h, stranger, 40000);
  ASSERT_FALSE(t2.empty());
  h.send(false, reply_to(t2));
  auto [in5, out5] = h.sync_both();
  ASSERT_EQ(in5.size(), 1u);
  EXPECT_EQ(in5[0].ethertype, 0x0806);
  EXPECT_EQ(std::memcmp(in5[0].dst(), broadcast, 6), 0);
  EXPECT_EQ(in5[0].l3[7], 1) << "a request";
  EXPECT_EQ(std::memcmp(in5[0].l3.data() + 24, &stranger.raw, 4), 0);
  EXPECT_EQ(h.counters(true).arp_requests_sent, 1u);
  h.send_frame(true, ethernet(inside_mac, 0x0806, arp(2, stranger_mac, stranger, inside_address), 0, 0x63));
  auto [in6, out6] = h.sync_both();
  ASSERT_EQ(in6.size(), 1u);
  EXPECT_TRUE(in6[0].is_ipv4());
  EXPECT_EQ(std::memcmp(in6[0].dst(), stranger_mac, 6), 0);
  EXPECT_EQ(ip_dst(in6[0].l3), stranger);
  EXPECT_EQ(h.counters(true).arp_replies_learned, 1u);
}

TEST(Worker, ForeignFramesDroppedUnlessPromiscuous) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  const Bytes ip = udp_packet({subscriber, server}, 40000, 53);
  const std::uint8_t other[6] = {0x02, 0, 0, 0, 0x99, 0x99};
  const std::uint8_t multicast[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
  h.send_frame(true, ethernet(other, 0x0800, ip));
  h.send_frame(true, ethernet(broadcast, 0x0800, ip));
  h.send_frame(true, ethernet(multicast, 0x0800, ip));
  h.send_frame(true, ethernet(inside_mac, 0x86dd, ip));  // IPv6
  h.send_frame(true, Bytes(inside_mac, inside_mac + 6));  // 6 bytes
  h.send_frame(true, ethernet(inside_mac, 0x0800, Bytes(ip.begin(), ip.begin() + 12)));
  auto [in, out] = h.sync_both();
  EXPECT_TRUE(in.empty());
  EXPECT_TRUE(out.empty());
  const auto c = h.counters(true);
  EXPECT_EQ(c.get(PortDrop::foreign_mac), 3u);
  EXPECT_EQ(c.get(PortDrop::not_ipv4_or_arp), 1u);
  EXPECT_EQ(c.get(PortDrop::runt), 2u);

}

TEST(Worker, PromiscuousPortTakesOtherUnicastMacs) {
  Harness h({.inside_promiscuous = true});
  ASSERT_TRUE(h.ok());
  const Bytes ip = udp_packet({subscriber, server}, 40000, 53);
  const std::uint8_t other[6] = {0x02, 0, 0, 0, 0x99, 0x99};
  h.send_frame(true, ethernet(other, 0x0800, ip));
  h.send_frame(true, ethernet(broadcast, 0x0800, ip));
  auto [in, out] = h.sync_both();
  EXPECT_EQ(out.size(), 1u) << "another unicast MAC taken, broadcast IPv4 still not";
  EXPECT_EQ(h.counters(true).get(PortDrop::foreign_mac), 1u);
}

TEST(Worker, MartiansBroadcastsOwnAddressesAndWrongSide) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  h.send(true, udp_packet({ipv4(127, 0, 0, 1), server}, 1, 53));
  h.send(true, udp_packet({ipv4(0, 1, 2, 3), server}, 1, 53));
  h.send(true, udp_packet({subscriber, ipv4(255, 255, 255, 255)}, 1, 53));
  h.send(true, udp_packet({subscriber, ipv4(100, 64, 0, 255)}, 1, 53));    // the subnet broadcast
  h.send(true, udp_packet({subscriber, ipv4(224, 0, 0, 5)}, 1, 53));
  h.send(true, udp_packet({subscriber, ipv4(100, 64, 0, 20)}, 1, 53));     // back inside: wrong side
  h.send(true, udp_packet({subscriber, inside_address}, 1, 53));           // ours, not an echo
  h.send(true, icmp_echo({subscriber, outside_address}, packet::icmp_type::echo_request, 77, 1));  // answered
  auto [in, out] = h.sync_both();
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(ip_src(in[0].l3), outside_address);
  EXPECT_EQ(in[0].l3[20], packet::icmp_type::echo_reply);
  const auto ci = h.counters(true);
  EXPECT_EQ(ci.get(PortDrop::martian_source), 2u);
  EXPECT_EQ(ci.get(PortDrop::broadcast_destination), 3u);
  EXPECT_EQ(ci.get(PortDrop::wrong_side), 1u);
  EXPECT_EQ(ci.get(PortDrop::not_for_us), 1u);
  EXPECT_EQ(ci.icmp_echo_answered, 1u + 1u);  // and the probe

  h.send(false, udp_packet({ipv4(198, 51, 100, 11), ipv4(198, 51, 100, 12)}, 1, 53));  // a pool address
  h.send(false, udp_packet({inside_address, ipv4(198, 51, 100, 12)}, 1, 53));
  h.send(false, udp_packet({outside_address, ipv4(198, 51, 100, 12)}, 1, 53));
  h.send(false, udp_packet({subscriber, ipv4(198, 51, 100, 12)}, 1, 53));  // a subscriber: wrong side
  h.send(false, udp_packet({ipv4(127, 1, 1, 1), ipv4(198, 51, 100, 12)}, 1, 53));
  auto [in2, out2] = h.sync_both();
  EXPECT_TRUE(in2.empty());
  EXPECT_TRUE(out2.empty());
  const auto co = h.counters(false);
  EXPECT_EQ(co.get(PortDrop::own_address_source), 3u);
  EXPECT_EQ(co.get(PortDrop::wrong_side), 1u);
  EXPECT_EQ(co.get(PortDrop::martian_source), 1u);
  EXPECT_EQ(co.get(PortDrop::nat), 0u);
}

TEST(Worker, RoutesByLongestPrefixThenGateway) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  const be32 near = ipv4(100, 65, 1, 5), far = ipv4(100, 65, 7, 5), unrouted = ipv4(100, 66, 0, 5);
  std::vector<Bytes> translated;
  for (be32 s : {near, far, unrouted}) translated.push_back(open_mapping(h, s, 40000));
  for (const Bytes& t : translated) {
    ASSERT_FALSE(t.empty());
    h.send(false, reply_to(t));
  }
  auto [in, out] = h.sync_both();
  ASSERT_EQ(in.size(), 2u);
  EXPECT_EQ(ip_dst(in[0].l3), near);
  EXPECT_EQ(in[0].dst()[5], neighbour_mac(3)) << "the /24 route";
  EXPECT_EQ(ip_dst(in[1].l3), far);
  EXPECT_EQ(in[1].dst()[5], neighbour_mac(2)) << "the /16 route";
  EXPECT_EQ(h.counters(true).get(PortDrop::no_route), 1u) << "the inside has no gateway";
}

TEST(Worker, ForwardModeRoutesWithoutTranslating) {
  Harness h({.mode = "forward"});
  ASSERT_TRUE(h.ok());
  const Bytes up = udp_packet({subscriber, server, 9}, 40000, 53);
  h.send(true, up);
  // From outside, even a subscriber source is routed (no NAT, no side rule).
  h.send(false, udp_packet({subscriber, ipv4(100, 65, 1, 5), 9}, 53, 40000));
  h.send(false, udp_packet({server, ipv4(100, 66, 0, 5)}, 53, 40000));  // no route
  h.send(true, udp_packet({subscriber, server, 1}, 40000, 53));        // expires, no error in this mode
  auto [in, out] = h.sync_both();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ip_src(out[0].l3), subscriber) << "not translated";
  EXPECT_EQ(out[0].ttl(), 8);
  EXPECT_EQ(Bytes(out[0].l3.begin() + 20, out[0].l3.end()), Bytes(up.begin() + 20, up.end()));
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(ip_dst(in[0].l3), ipv4(100, 65, 1, 5));
  EXPECT_EQ(in[0].dst()[5], neighbour_mac(3));
  EXPECT_EQ(h.counters(true).get(PortDrop::no_route), 1u);
  EXPECT_EQ(h.counters(false).get(PortDrop::ttl_exceeded), 1u);
  EXPECT_EQ(h.counters(true).icmp_time_exceeded_sent, 0u);
  EXPECT_EQ(h.gateway().snapshot().sessions, 0u);
}

TEST(Worker, HairpinnedBetweenTwoSubscribers) {
  Harness h({});
  ASSERT_TRUE(h.ok());
  const be32 other = ipv4(100, 64, 0, 2);  // a static neighbour too
  const Bytes mapped = open_mapping(h, other, 41000);
  ASSERT_FALSE(mapped.empty());
  h.send(true, udp_packet({subscriber, ip_src(mapped)}, 40000, l4_sport(mapped)));
  auto [in, out] = h.sync_both();
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(ip_dst(in[0].l3), other);
  EXPECT_EQ(l4_dport(in[0].l3), 41000);
  EXPECT_EQ(ip_src(in[0].l3).host() >> 8, ipv4(198, 51, 100, 0).host() >> 8) << "from the sender's public address";
  EXPECT_EQ(in[0].dst()[5], neighbour_mac(2));
  EXPECT_EQ(checksum_problems(in[0].l3), "");
}

// Two workers, one receive queue: worker 0 receives everything and hands
// over what the other owns; ARP reaches worker 0 only and is copied.
TEST(Worker, HandedOverPacketsArpCopiesAndHairpinAcrossWorkers) {
  Harness h({.workers = 2});
  ASSERT_TRUE(h.ok());
  std::vector<Bytes> translated;
  for (unsigned i = 0; i < 8; ++i)
    translated.push_back(open_mapping(h, ipv4(100, 64, 0, static_cast<std::uint8_t>(100 + i)), 40000));
  for (const Bytes& t : translated) ASSERT_FALSE(t.empty());
  // Their answers: each worker asks ARP for its own subscribers.
  for (const Bytes& t : translated) h.send(false, reply_to(t));
  unsigned requests = 0;
  for (int tries = 0; tries < 50 && requests < 8; ++tries) {
    auto [in, out] = h.sync_both();
    for (const Frame& f : in) requests += f.ethertype == 0x0806;
  }
  EXPECT_EQ(requests, 8u);
  // The replies reach worker 0; the copies teach the owners.
  for (unsigned i = 0; i < 8; ++i) {
    const std::uint8_t mac[6] = {0x02, 0, 0, 0, 0x20, static_cast<std::uint8_t>(100 + i)};
    h.send_frame(true, ethernet(inside_mac, 0x0806, arp(2, mac, ipv4(100, 64, 0, static_cast<std::uint8_t>(100 + i)), inside_address), 0,
                                static_cast<std::uint8_t>(100 + i)));
  }
  std::vector<Frame> delivered;
  for (int tries = 0; tries < 50 && delivered.size() < 8; ++tries) {
    auto [in2, out2] = h.sync_both();
    delivered.insert(delivered.end(), in2.begin(), in2.end());
  }
  ASSERT_EQ(delivered.size(), 8u);
  for (const Frame& f : delivered) {
    EXPECT_TRUE(f.is_ipv4());
    EXPECT_EQ(f.dst()[5], ip_dst(f.l3).host() & 0xff);
  }
  // Hairpin: every subscriber to the next one's public endpoint.
  for (unsigned i = 0; i < 8; ++i) {
    const Bytes& target = translated[(i + 1) % 8];
    h.send(true, udp_packet({ipv4(100, 64, 0, static_cast<std::uint8_t>(100 + i)), ip_src(target)}, 41000,
                            l4_sport(target)));
  }
  std::vector<Frame> hairpinned;
  for (int tries = 0; tries < 50 && hairpinned.size() < 8; ++tries) {
    auto [in3, out3] = h.sync_both();
    EXPECT_TRUE(out3.empty());
    hairpinned.insert(hairpinned.end(), in3.begin(), in3.end());
  }
  ASSERT_EQ(hairpinned.size(), 8u);
  for (const Frame& f : hairpinned) EXPECT_EQ(l4_dport(f.l3), 40000);
  std::uint64_t handed = 0;
  for (const auto& [sent, received] : h.gateway().handoffs_per_worker()) handed += sent;
  EXPECT_GT(handed, 0u);
}

}  // namespace
}  // namespace passgate

int main(int argc, char** argv) {
  // The test and up to two workers.
  return passgate::testing::run_ring_port_tests(argc, argv, "worker", 3, "pgworker");
}
