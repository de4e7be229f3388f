// The exception path (ports[].exception, issue 15) on the real Gateway:
// the kernel interface it creates (a net_tap in the test's own network
// namespace) and, with a DPDK ring port standing in for the tap
// (exception.device), what crosses between a port and its kernel interface.
//
// The test is the wire and the kernel: it puts frames on the port's and the
// stand-in's receive rings and reads what the gateway sent from their
// transmit rings. Each check waits for the gateway by a probe, an echo
// request to the port's address (answered by the dataplane, never the
// kernel): the worker flushes what it gave the kernel before it transmits on
// the port, so once the reply is out everything sent before it has been
// handled. After every test every buffer is back in the gateway's pool.
#include <gtest/gtest.h>

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sched.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/gateway_config.hpp"
#include "dataplane/gateway.hpp"
#include "dataplane/kernel_interface.hpp"
#include "packet/headers.hpp"
#include "ring_harness.hpp"
#include "support/packet_builder.hpp"

namespace passgate {
namespace {

using namespace passgate::testing;
using stats::PortDrop;

constexpr std::uint8_t inside_mac[6] = {0x02, 0, 0, 0, 0x10, 0x01};
constexpr std::uint8_t outside_mac[6] = {0x02, 0, 0, 0, 0x10, 0x02};
constexpr std::uint8_t subscriber_mac[6] = {0x02, 0, 0, 0, 0x20, 0x0a};
constexpr std::uint8_t peer_mac_7[6] = {0x02, 0, 0, 0, 0x20, 0x07};
constexpr std::uint8_t router_mac[6] = {0x02, 0, 0, 0, 0x20, 0xfe};  // 198.51.100.254, the gateway
constexpr std::uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const be32 outside_address = ipv4(198, 51, 100, 1);
const be32 router = ipv4(198, 51, 100, 254);
const be32 peer = ipv4(198, 51, 100, 7);  // an on-link BGP peer, not a static neighbour
const be32 subscriber = ipv4(100, 64, 0, 10);

// Set by main: the test runs in a network namespace of its own, so the tap
// and its address never touch the host's.
bool own_namespace = false;

struct Options {
  unsigned workers = 1;
  std::uint16_t vlan = 0;        // the outside port's
  std::string exception = "{}";  // the outside port's exception mapping (flow style); empty: none
};

std::string yaml(const Options& o, const std::string& in, const std::string& out) {
  std::string workers;
  for (unsigned w = 1; w <= o.workers; ++w) workers += fmt::format("{}{}", w == 1 ? "" : ", ", w);
  return fmt::format(R"(dataplane:
  workers: [{}]
  steering: handoff
  mbuf_cache: 32
  neighbour: {{table_size: 64, queue: 4, retry_ms: 60000}}
ports:
  - name: inside
    device: "{}"
    role: inside
    address: 100.64.0.1/24
    mac: "02:00:00:00:10:01"
    tx_queues: {}
    rx_descriptors: 256
    tx_descriptors: 256
  - name: outside
    device: "{}"
    role: outside
    address: 198.51.100.1/24
    gateway: 198.51.100.254
    mac: "02:00:00:00:10:02"
    vlan: {}
    tx_queues: {}
    rx_descriptors: 256
    tx_descriptors: 256
    neighbours:
      - {{address: 198.51.100.254, mac: "02:00:00:00:20:fe"}}
{}{}nat:
  random_seed: 2026
  max_sessions: 4096
  pools:
    - name: cgn
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.13]
      block_size: 256
)",
                     workers, in, o.workers, out, o.vlan, o.workers, o.exception.empty() ? "" : "    exception: ",
                     o.exception.empty() ? "" : o.exception + "\n");
}

// A frame as it crossed the wire, split.
struct Frame {
  Bytes bytes;
  std::uint16_t vlan = 0;  // 0: untagged
  std::uint16_t ethertype = 0;
  Bytes l3;  // what follows the Ethernet (and 802.1Q) header
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
Bytes ethernet(const std::uint8_t* dst, const std::uint8_t* src, std::uint16_t ethertype, const Bytes& payload,
               std::uint16_t vlan = 0) {
  Bytes b(dst, dst + 6);
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
Bytes arp(std::uint16_t op, const std::uint8_t* sender_mac, be32 sender, be32 target,
          const std::uint8_t* target_mac = nullptr) {
  Bytes b = {0, 1, 8, 0, 6, 4, 0, static_cast<std::uint8_t>(op)};
  b.insert(b.end(), sender_mac, sender_mac + 6);
  b.insert(b.end(), reinterpret_cast<const std::uint8_t*>(&sender.raw),
           reinterpret_cast<const std::uint8_t*>(&sender.raw) + 4);
  if (target_mac) b.insert(b.end(), target_mac, target_mac + 6);
  else b.insert(b.end(), 6, 0);
  b.insert(b.end(), reinterpret_cast<const std::uint8_t*>(&target.raw),
           reinterpret_cast<const std::uint8_t*>(&target.raw) + 4);
  return b;
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

// The gateway on ring ports; with `stand_in`, the outside port's kernel
// interface is a ring port too (one queue pair per worker).
class Harness {
 public:
  Harness(Options o, bool stand_in = true) : options_(std::move(o)) {
    static unsigned instance = 0;
    const std::string tag = fmt::format("ex{}", instance++);
    in_ = std::make_unique<RingPort>(tag + "i", 1, options_.workers, 1024, RING_F_SC_DEQ);
    out_ = std::make_unique<RingPort>(tag + "o", 1, options_.workers, 1024, RING_F_SC_DEQ);
    if (stand_in && !options_.exception.empty()) {
      kernel_ = std::make_unique<RingPort>(tag + "k", options_.workers, options_.workers, 1024, RING_F_SC_DEQ);
      // "{}" or "{rate: 5}" become "{device: net_ring_exNk}" or "{device: net_ring_exNk, rate: 5}".
      const std::string rest = options_.exception.substr(1);
      options_.exception = "{device: " + kernel_->name + (rest == "}" ? "}" : ", " + rest);
    }
    auto loaded = config::parse_gateway_config(yaml(options_, in_->name, out_->name), "test.yaml");
    EXPECT_TRUE(loaded.config.has_value()) << (loaded.errors.empty() ? "" : config::to_string(loaded.errors[0]));
    if (!loaded.config) return;
    config_ = *loaded.config;
    gateway_ = dataplane::Gateway::create(config_, &error_);
    if (!gateway_) return;
    pool_ = rte_mempool_lookup("passgate_mbufs");
    EXPECT_NE(pool_, nullptr);
    EXPECT_TRUE(gateway_->start(&error_)) << error_;
  }
  ~Harness() {
    if (!gateway_) return;
    gateway_->stop();
    for (RingPort* p : {in_.get(), out_.get(), kernel_.get()})
      if (p)
        for (auto* r : p->tx) free_frames(r);
    // Every buffer, those a net_tap's receive queues held included: stop()
    // closes the kernel interfaces.
    if (pool_) {
      EXPECT_EQ(rte_mempool_avail_count(pool_), pool_->size) << "buffers lost";
    }
    gateway_.reset();
  }
  [[nodiscard]] bool ok() const { return gateway_ && pool_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  dataplane::Gateway& gateway() { return *gateway_; }
  RingPort& kernel() { return *kernel_; }
  const config::GatewayConfig& config() const { return config_; }

  void put(rte_ring* ring, const Bytes& frame) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    ASSERT_NE(m, nullptr);
    auto* data = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(frame.size())));
    ASSERT_NE(data, nullptr);
    std::memcpy(data, frame.data(), frame.size());
    ASSERT_EQ(rte_ring_enqueue(ring, m), 0);
  }
  // A frame on the outside wire, tagged as the port is.
  void wire(const std::uint8_t* dst, const std::uint8_t* src, std::uint16_t ethertype, const Bytes& payload) {
    put(out_->rx[0], ethernet(dst, src, ethertype, payload, options_.vlan));
  }
  // An IPv4 packet from the router's MAC to the port's.
  void wire_ip(const Bytes& ip) { wire(outside_mac, router_mac, 0x0800, ip); }
  // An IPv4 packet from a subscriber on the inside.
  void wire_inside(const Bytes& ip) { put(in_->rx[0], ethernet(inside_mac, subscriber_mac, 0x0800, ip)); }
  // A frame the kernel sends on its queue q (what worker q polls).
  void from_kernel(const Bytes& frame, unsigned q = 0) { put(kernel_->rx[q], frame); }

  // Everything sent on the outside port, and to the kernel, once the frames
  // sent before have been handled (the probe's reply is not returned).
  struct Seen {
    std::vector<Frame> port, kernel;
  };
  Seen sync() {
    const std::uint16_t id = ++probe_;
    wire_ip(icmp_echo({router, outside_address}, packet::icmp_type::echo_request, id, 1));
    Seen seen;
    bool done = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      for (auto* r : out_->tx)
        drain(r, [&](Frame f) {
          if (f.ethertype == 0x0800 && f.l3.size() >= 28 && f.l3[9] == 1 && f.l3[20] == packet::icmp_type::echo_reply &&
              l4_sport(f.l3) == id)
            done = true;
          else
            seen.port.push_back(std::move(f));
        });
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(done) << "the probe was not answered";
    if (kernel_)
      for (auto* r : kernel_->tx) drain(r, [&](Frame f) { seen.kernel.push_back(std::move(f)); });
    return seen;
  }
  // What reaches transmit queue q of the outside port within a second.
  std::vector<Frame> wait_port_queue(unsigned q, std::size_t want) {
    std::vector<Frame> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      drain(out_->tx[q], [&](Frame f) { got.push_back(std::move(f)); });
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
  }

  stats::PortCounters outside() { return gateway_->snapshot().ports[1]; }

 private:
  template <class F>
  static void drain(rte_ring* r, F&& take) {
    void* obj;
    while (rte_ring_dequeue(r, &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
      take(split(Bytes(p, p + rte_pktmbuf_data_len(m))));
      rte_pktmbuf_free(m);
    }
  }

  Options options_;
  config::GatewayConfig config_;
  std::string error_;
  std::unique_ptr<RingPort> in_, out_, kernel_;
  std::unique_ptr<dataplane::Gateway> gateway_;
  rte_mempool* pool_ = nullptr;
  std::uint16_t probe_ = 0;
};

// ---------------------------------------------------------------- setup

// The kernel interface is a net_tap named as configured, carrying the port's
// MAC, address and prefix; it never answers ARP nor speaks IPv6, and it goes
// with the gateway.
TEST(Exception, TapInterfaceCarriesThePortsMacAndAddress) {
  if (!own_namespace) GTEST_SKIP() << "needs a network namespace of its own (root)";
  Options o;
  o.exception = "{interface: pgx-out}";
  const std::string devargs = [&] {
    config::PortConfig pc;
    pc.exception = config::ExceptionConfig{};
    pc.exception->interface = "pgx-out";
    return dataplane::exception_devargs(pc, 1);
  }();
  EXPECT_EQ(devargs, "net_tap_pg1,iface=pgx-out");
  // What eal_arguments adds in the program: here, after EAL started.
  ASSERT_EQ(rte_vdev_init("net_tap_pg1", "iface=pgx-out"), 0);
  {
    Harness h(o, false);
    ASSERT_TRUE(h.ok()) << h.error();
    // ip(8), not /sys/class/net: sysfs shows the namespace it was mounted in.
    const std::string link = command_output("ip -o link show dev pgx-out");
    EXPECT_NE(link.find("link/ether 02:00:00:00:10:02"), std::string::npos) << link;
    EXPECT_NE(link.find("mtu 1500"), std::string::npos) << link;
    EXPECT_NE(command_output("ip -4 -o addr show dev pgx-out").find("inet 198.51.100.1/24"), std::string::npos)
        << command_output("ip -4 -o addr show dev pgx-out");
    EXPECT_EQ(read_line("/proc/sys/net/ipv4/conf/pgx-out/arp_ignore"), "8");
    EXPECT_EQ(read_line("/proc/sys/net/ipv4/conf/pgx-out/arp_announce"), "2");
    EXPECT_EQ(read_line("/proc/sys/net/ipv4/conf/pgx-out/arp_notify"), "1");
    // The kernel announces the port's address when the tap comes up, and the
    // dataplane sends it on the port: that first frame is also what makes
    // net_tap's empty polls cheap (kernel_interface.hpp).
    bool announced = false;
    for (const Frame& f : h.wait_port_queue(0, 1))
      announced = announced || (f.ethertype == 0x0806 && f.l3.size() >= 28 && f.l3[7] == 1 &&
                                std::memcmp(&f.l3[8], outside_mac, 6) == 0 &&
                                std::memcmp(&f.l3[14], &outside_address.raw, 4) == 0 &&
                                std::memcmp(&f.l3[24], &outside_address.raw, 4) == 0);
    EXPECT_TRUE(announced) << "no gratuitous ARP from the kernel interface";
    EXPECT_EQ(h.outside().exception_from_kernel, 1u);
    if (std::ifstream("/proc/sys/net/ipv6/conf/pgx-out/disable_ipv6")) {
      EXPECT_EQ(read_line("/proc/sys/net/ipv6/conf/pgx-out/disable_ipv6"), "1");
    }
    const auto flags = dataplane::kernel_link_flags("pgx-out");
    ASSERT_TRUE(flags.has_value());
    EXPECT_TRUE(flags->up) << "the tap's start sets IFF_UP";
    const auto args = dataplane::eal_arguments(h.config(), {});
    EXPECT_NE(std::find(args.begin(), args.end(), "--vdev=" + devargs), args.end());
  }
  rte_vdev_uninit("net_tap_pg1");
  EXPECT_FALSE(dataplane::kernel_link_flags("pgx-out").has_value()) << "the kernel interface goes with the gateway";
}

// One queue pair per worker on the kernel interface: a device with fewer
// (net_tap has 16) refuses the start with a message that says so.
TEST(Exception, KernelInterfaceNeedsAQueuePairPerWorker) {
  {
    Harness h(Options{.workers = 2});
    ASSERT_TRUE(h.ok()) << h.error();
    rte_eth_dev_info info{};
    ASSERT_EQ(rte_eth_dev_info_get(h.kernel().id, &info), 0);
    EXPECT_EQ(info.nb_rx_queues, 2);
    EXPECT_EQ(info.nb_tx_queues, 2);
  }
  RingPort one_queue("exfew", 1, 1, 64, RING_F_SC_DEQ);
  Options o{.workers = 2, .exception = "{device: " + one_queue.name + "}"};
  Harness h(o, false);
  EXPECT_FALSE(h.ok());
  EXPECT_NE(h.error().find("2 workers need 2 queue pairs on the kernel interface net_ring_exfew, which takes at most 1"),
            std::string::npos)
      << h.error();
}


// ---------------------------------------------------------------- port -> kernel

// BGP, BFD (TTL 255 kept: single-hop BFD checks it, RFC 5881 5) and an ICMP
// error for the kernel's own TCP reach the kernel byte for byte; echo is
// still answered by the dataplane; a pool address and the inside's packets
// to the outside address never reach the kernel. Without an exception
// interface the same packets are dropped as not_for_us.
TEST(Exception, OwnAddressTrafficReachesTheKernelUnchanged) {
  const Bytes syn = tcp_packet({router, outside_address}, 40179, 179, 0x02);
  const Bytes bfd = udp_packet({router, outside_address, 255}, 49152, 3784);
  const Bytes unreachable = icmp_error({router, outside_address}, 3, 4,
                                       tcp_packet({outside_address, router}, 179, 40179, 0x10, Bytes(1400, 0)), 28);
  for (const bool with_kernel : {true, false}) {
    SCOPED_TRACE(with_kernel ? "with an exception interface" : "without");
    Options o;
    if (!with_kernel) o.exception.clear();
    Harness h(o);
    ASSERT_TRUE(h.ok()) << h.error();
    for (const Bytes& p : {syn, bfd, unreachable}) h.wire_ip(p);
    h.wire_ip(tcp_packet({router, ipv4(198, 51, 100, 10)}, 40179, 179, 0x02));  // a pool address
    h.wire_inside(tcp_packet({subscriber, outside_address}, 40000, 179, 0x02));
    const auto seen = h.sync();
    EXPECT_TRUE(seen.port.empty());
    const stats::PortCounters c = h.outside();
    EXPECT_EQ(c.icmp_echo_answered, 1u) << "the probe";
    EXPECT_EQ(h.gateway().snapshot().ports[0].get(PortDrop::not_for_us), 1u) << "inside to the outside address";
    if (!with_kernel) {
      EXPECT_EQ(c.get(PortDrop::not_for_us), 3u);
      EXPECT_EQ(c.exception_to_kernel, 0u);
      continue;
    }
    ASSERT_EQ(seen.kernel.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(seen.kernel[i].bytes, ethernet(outside_mac, router_mac, 0x0800, std::vector{syn, bfd, unreachable}[i]))
          << "frame " << i;
    }
    EXPECT_EQ(seen.kernel[1].l3[8], 255) << "TTL untouched";
    EXPECT_EQ(c.exception_to_kernel, 3u);
    EXPECT_EQ(c.get(PortDrop::not_for_us), 0u);
  }
}

// The kernel resolves its peers from the replies the port receives: a reply
// to the port's address is learned by the dataplane and copied to the
// kernel, as is gratuitous ARP; requests are answered by the dataplane only.
TEST(Exception, ArpRepliesAreLearnedAndHandedToTheKernel) {
  Harness h(Options{});
  ASSERT_TRUE(h.ok()) << h.error();
  const Bytes reply = arp(2, peer_mac_7, peer, outside_address, outside_mac);
  const Bytes request = arp(1, peer_mac_7, peer, outside_address);
  const std::uint8_t mac_8[6] = {0x02, 0, 0, 0, 0x20, 0x08};
  const be32 eight = ipv4(198, 51, 100, 8);
  const Bytes gratuitous = arp(1, mac_8, eight, eight);
  h.wire(outside_mac, peer_mac_7, 0x0806, reply);
  h.wire(broadcast, peer_mac_7, 0x0806, request);
  h.wire(broadcast, mac_8, 0x0806, gratuitous);
  const auto seen = h.sync();
  ASSERT_EQ(seen.kernel.size(), 2u);
  EXPECT_EQ(seen.kernel[0].bytes, ethernet(outside_mac, peer_mac_7, 0x0806, reply));
  EXPECT_EQ(seen.kernel[1].bytes, ethernet(broadcast, mac_8, 0x0806, gratuitous));
  ASSERT_EQ(seen.port.size(), 1u) << "the dataplane's answer to the request, no other";
  EXPECT_EQ(seen.port[0].ethertype, 0x0806);
  const stats::PortCounters c = h.outside();
  EXPECT_EQ(c.arp_requests_answered, 1u);
  EXPECT_EQ(c.arp_replies_learned, 1u);
  EXPECT_EQ(c.exception_to_kernel, 2u);
  EXPECT_EQ(c.get(PortDrop::arp_ignored), 0u);
}

// A port with a VLAN: the kernel interface is untagged both ways.
TEST(Exception, TaggedPortUntagsForTheKernelAndTagsItsFrames) {
  Harness h(Options{.vlan = 100});
  ASSERT_TRUE(h.ok()) << h.error();
  const Bytes syn = tcp_packet({router, outside_address}, 40179, 179, 0x02);
  h.wire_ip(syn);
  const Bytes ack = tcp_packet({outside_address, router}, 179, 40179, 0x12);
  h.from_kernel(ethernet(router_mac, outside_mac, 0x0800, ack));
  const Bytes who_has = arp(1, outside_mac, outside_address, peer);
  h.from_kernel(ethernet(broadcast, outside_mac, 0x0806, who_has));
  const auto seen = h.sync();
  ASSERT_EQ(seen.kernel.size(), 1u);
  EXPECT_EQ(seen.kernel[0].bytes, ethernet(outside_mac, router_mac, 0x0800, syn)) << "untagged";
  ASSERT_EQ(seen.port.size(), 2u);
  EXPECT_EQ(seen.port[0].bytes, ethernet(router_mac, outside_mac, 0x0800, ack, 100));
  EXPECT_EQ(seen.port[1].bytes, ethernet(broadcast, outside_mac, 0x0806, who_has, 100));
  EXPECT_EQ(h.outside().exception_from_kernel, 2u);
}

// ---------------------------------------------------------------- kernel -> port

// Only ARP and IPv4 as the port itself leave: not a foreign source (the
// kernel forwarding), not another sender MAC, not IPv6.
TEST(Exception, ForeignFramesFromTheKernelAreRejected) {
  Harness h(Options{});
  ASSERT_TRUE(h.ok()) << h.error();
  const std::uint8_t other_mac[6] = {0x02, 0, 0, 0, 0x30, 0x01};
  h.from_kernel(ethernet(router_mac, outside_mac, 0x0800, udp_packet({ipv4(198, 51, 100, 99), router}, 1, 2)));
  h.from_kernel(ethernet(broadcast, outside_mac, 0x0806, arp(1, outside_mac, ipv4(198, 51, 100, 99), peer)));
  h.from_kernel(ethernet(broadcast, outside_mac, 0x0806, arp(1, other_mac, outside_address, peer)));
  h.from_kernel(ethernet(router_mac, outside_mac, 0x86dd, Bytes(40, 0x60)));
  h.from_kernel(Bytes(outside_mac, outside_mac + 6));  // a runt
  // The one that may: with the kernel interface's MAC replaced by the port's.
  const Bytes ok = udp_packet({outside_address, router}, 3784, 49152);
  h.from_kernel(ethernet(router_mac, other_mac, 0x0800, ok));
  const auto seen = h.sync();
  ASSERT_EQ(seen.port.size(), 1u);
  EXPECT_EQ(seen.port[0].bytes, ethernet(router_mac, outside_mac, 0x0800, ok));
  const stats::PortCounters c = h.outside();
  EXPECT_EQ(c.get(PortDrop::exception_rejected), 5u);
  EXPECT_EQ(c.exception_from_kernel, 1u);
}

// ---------------------------------------------------------------- limits

// allow is checked first (a stranger takes no token), then the bucket.
TEST(Exception, AllowAndRateDropsAreCounted) {
  Harness h(Options{.exception = "{rate: 1, burst: 3, allow: [198.51.100.254/32, 192.0.2.0/24]}"});
  ASSERT_TRUE(h.ok()) << h.error();
  for (std::uint16_t i = 0; i < 2; ++i) h.wire_ip(tcp_packet({peer, outside_address}, 40000 + i, 22, 0x02));
  h.wire(outside_mac, peer_mac_7, 0x0806, arp(2, peer_mac_7, peer, outside_address, outside_mac));
  for (std::uint16_t i = 0; i < 5; ++i) h.wire_ip(tcp_packet({router, outside_address}, 40000 + i, 179, 0x02));
  const auto seen = h.sync();
  EXPECT_EQ(seen.kernel.size(), 3u);
  const stats::PortCounters c = h.outside();
  EXPECT_EQ(c.get(PortDrop::exception_not_allowed), 3u) << "two SYNs and the ARP reply from .7";
  EXPECT_EQ(c.get(PortDrop::exception_rate_limited), 2u);
  EXPECT_EQ(c.exception_to_kernel, 3u);
  EXPECT_EQ(c.arp_replies_learned, 1u) << "learned by the dataplane all the same";
}

// ---------------------------------------------------------------- workers

// Each worker polls its own queue of the kernel interface and sends on its
// own queue of the port; another worker's copy of an ARP frame (learn only)
// never reaches the kernel.
TEST(Exception, TwoWorkersEachUseTheirOwnQueue) {
  Harness h(Options{.workers = 2});
  ASSERT_TRUE(h.ok()) << h.error();
  const Bytes a = udp_packet({outside_address, router}, 3784, 49152);
  const Bytes b = udp_packet({outside_address, router}, 3784, 49153);
  h.from_kernel(ethernet(router_mac, outside_mac, 0x0800, b), 1);
  const auto on_1 = h.wait_port_queue(1, 1);
  ASSERT_EQ(on_1.size(), 1u);
  EXPECT_EQ(on_1[0].l3, b);
  h.from_kernel(ethernet(router_mac, outside_mac, 0x0800, a), 0);
  h.wire(outside_mac, peer_mac_7, 0x0806, arp(2, peer_mac_7, peer, outside_address, outside_mac));
  auto seen = h.sync();
  ASSERT_EQ(seen.port.size(), 1u);
  EXPECT_EQ(seen.port[0].l3, a);
  // Worker 1 learns from its copy between two of its loop turns: wait for it.
  for (int i = 0; i < 100; ++i) {
    if (h.gateway().handoffs_per_worker()[1].second >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  seen = h.sync();
  std::size_t on_kernel_1 = 0;
  void* obj;
  while (rte_ring_dequeue(h.kernel().tx[1], &obj) == 0) {
    rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    ++on_kernel_1;
  }
  EXPECT_EQ(on_kernel_1, 0u) << "worker 1's learn-only copy went to the kernel";
  EXPECT_EQ(h.outside().exception_to_kernel, 1u);
  EXPECT_EQ(h.outside().exception_from_kernel, 2u);
}

}  // namespace
}  // namespace passgate

int main(int argc, char** argv) {
  // A network namespace of the test's own, before EAL creates any tap.
  passgate::own_namespace = unshare(CLONE_NEWNET) == 0;
  if (passgate::own_namespace) std::system("ip link set lo up");
  // The test and up to two workers.
  return passgate::testing::run_ring_port_tests(argc, argv, "exception", 3, "pgexception");
}
