// What the dataplane tests on DPDK ring ports share (worker_test.cpp,
// multiworker_test.cpp, mbuf_budget_test.cpp): the test is the NIC and the
// peers of a real Gateway whose ports are rte_eth_from_rings devices.
// Provided: RingPort (the rings behind one port), the frame a peer sends
// (Ethernet + IPv4), emptying a ring of what the gateway sent, the ports and
// NAT pool of the test YAML, and a main that runs the tests inside EAL.
#pragma once

#include <gtest/gtest.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "nat/nat_config.hpp"
#include "support/packet_builder.hpp"

namespace passgate::testing {

// The MAC of every peer: the source of what the test sends, the neighbour
// entries of the YAML below.
inline constexpr std::uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0x20, 2};

// One port backed by rte_rings: the test enqueues into rx[q] what the wire
// delivers to queue q and dequeues from tx[q] what the gateway sent on queue q.
struct RingPort {
  std::string name;
  std::vector<rte_ring*> rx, tx;
  std::uint16_t id = 0;
  // rte_eth_from_rings names the port "net_ring_" + n.
  RingPort(const std::string& n, unsigned rx_queues, unsigned tx_queues, unsigned ring_size, unsigned tx_flags)
      : name("net_ring_" + n) {
    for (unsigned q = 0; q < rx_queues; ++q)
      rx.push_back(rte_ring_create(fmt::format("{}_r{}", n, q).c_str(), ring_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
    for (unsigned q = 0; q < tx_queues; ++q)
      tx.push_back(rte_ring_create(fmt::format("{}_t{}", n, q).c_str(), ring_size, 0, tx_flags));
    const int port = rte_eth_from_rings(n.c_str(), rx.data(), rx_queues, tx.data(), tx_queues, 0);
    EXPECT_GE(port, 0) << "rte_eth_from_rings " << n << ": " << rte_strerror(rte_errno);
    id = static_cast<std::uint16_t>(port);
  }
  ~RingPort() {
    for (auto* r : rx) rte_ring_free(r);
    for (auto* r : tx) rte_ring_free(r);
  }
  RingPort(const RingPort&) = delete;
  RingPort& operator=(const RingPort&) = delete;
};

// Fills the empty buffer m with the frame a peer sends: `ip` to `dst_mac`.
inline void put_frame(rte_mbuf* m, const std::uint8_t* dst_mac, const Bytes& ip) {
  auto* frame = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(14 + ip.size())));
  std::memcpy(frame, dst_mac, 6);
  std::memcpy(frame + 6, peer_mac, 6);
  frame[12] = 0x08, frame[13] = 0x00;
  std::memcpy(frame + 14, ip.data(), ip.size());
}

// Empties ring r, handing the IPv4 packet of each IPv4 frame to take_ipv4
// (other frames, ARP, are dropped) and freeing every buffer.
template <class F>
void take_frames(rte_ring* r, F&& take_ipv4) {
  void* obj;
  while (rte_ring_dequeue(r, &obj) == 0) {
    auto* m = static_cast<rte_mbuf*>(obj);
    const auto* frame = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const unsigned len = rte_pktmbuf_data_len(m);
    if (len > 14 && frame[12] == 0x08 && frame[13] == 0x00) take_ipv4(Bytes(frame + 14, frame + len));
    rte_pktmbuf_free(m);
  }
}

// Frees every buffer on ring r.
inline void free_frames(rte_ring* r) {
  void* obj;
  while (rte_ring_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
}

// A YAML neighbour entry: `address` answers at peer_mac.
inline std::string peer_neighbour(packet::be32 address) {
  return fmt::format("      - {{address: {}, mac: \"02:00:00:00:20:02\"}}\n", nat::to_string(address));
}

// The two ports of the test YAML (after "ports:"): inside 100.64.0.1/24 with
// `inside_neighbours` (peer_neighbour lines), outside 198.51.100.1/24 whose
// gateway .254 is the peer. `macs`: the ports' MACs 02:00:00:00:10:01 and :02.
struct RingPortsYaml {
  std::string inside_device, outside_device;
  unsigned rx_queues = 1, tx_queues = 1, descriptors = 256;
  bool macs = false;
  std::string inside_neighbours;
};
inline std::string ports_yaml(const RingPortsYaml& p) {
  const auto port = [&](const char* name, const std::string& device, const char* address_lines, const char* mac,
                        const std::string& neighbours) {
    return fmt::format(R"(  - name: {}
    device: "{}"
    role: {}
{}{}    rx_queues: {}
    tx_queues: {}
    rx_descriptors: {}
    tx_descriptors: {}
    neighbours:
{})",
                       name, device, name, address_lines,
                       p.macs ? fmt::format("    mac: \"02:00:00:00:10:{}\"\n", mac) : std::string(), p.rx_queues,
                       p.tx_queues, p.descriptors, p.descriptors, neighbours);
  };
  return port("inside", p.inside_device, "    address: 100.64.0.1/24\n", "01", p.inside_neighbours) +
         port("outside", p.outside_device, "    address: 198.51.100.1/24\n    gateway: 198.51.100.254\n", "02",
              peer_neighbour(packet::ipv4(198, 51, 100, 254)));
}

// The NAT section of the test YAML: one pool for the inside subnet, a fixed seed.
inline const std::string nat_pool_yaml = R"(nat:
  random_seed: 2026
  max_sessions: 65536
  pools:
    - name: cgn
      subscribers: [100.64.0.0/24]
      public: [198.51.100.10-198.51.100.13]
      block_size: 256
)";

// The body of main: EAL started with `eal_args` (the program name first),
// then every test, then EAL cleaned up.
inline int run_tests_in_eal(int argc, char** argv, std::vector<std::string> eal_args) {
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<char*> argv_eal;
  for (auto& a : eal_args) argv_eal.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv_eal.size()), argv_eal.data()) < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}

// The same for a test of the gateway on ring ports: EAL without hugepages or
// PCI, `lcores` lcores (0 runs the tests and plays the NIC, the others are
// the gateway's workers) spread over two CPUs where there are two: the
// workers share them, correctness and not speed is tested.
inline int run_ring_port_tests(int argc, char** argv, const char* name, unsigned lcores, const char* file_prefix) {
  const bool two_cpus = std::thread::hardware_concurrency() >= 2;
  std::string map;
  for (unsigned l = 0; l < lcores; ++l) map += fmt::format("{}{}@{}", l ? "," : "", l, two_cpus ? l % 2 : 0);
  return run_tests_in_eal(argc, argv,
                          {name, "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--lcores", map, "--log-level",
                           "lib.eal:error", "--file-prefix", file_prefix});
}

}  // namespace passgate::testing
