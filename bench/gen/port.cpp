#include "port.hpp"

#include <rte_arp.h>
#include <rte_errno.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace pgen {

namespace {
std::string device_name(const std::string& device) { return device.substr(0, device.find(',')); }
}  // namespace

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

}  // namespace pgen
