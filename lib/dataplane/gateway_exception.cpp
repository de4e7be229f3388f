// The kernel interfaces of the exception path (ports[].exception): one
// ethdev per port that has one (net_tap unless exception.device names
// another), with a queue pair per worker so that each worker polls and fills
// its own queue, as it does on the port: no lock. Set up after the ports
// have started, because the kernel interface takes the port's MAC.
//
// The kernel side (address, sysctls) is kernel_interface.cpp; what crosses
// between port and kernel is worker_exception.cpp.
#include <rte_ethdev.h>

#include <fmt/format.h>

#include <cstring>

#include "config/mbuf_budget.hpp"
#include "dataplane/gateway.hpp"
#include "dataplane/kernel_interface.hpp"

namespace passgate::dataplane {

std::string exception_devargs(const config::PortConfig& port, std::size_t index) {
  if (!port.exception) return {};
  if (!port.exception->device.empty()) return port.exception->device;
  // The vdev bus binds a device to the driver whose name starts its own, so
  // net_tap_pg1 is a net_tap that cannot clash with an operator's net_tap0.
  return fmt::format("net_tap_pg{},iface={}", index, port.exception->interface);
}

bool Gateway::setup_exceptions(std::string* error) {
  exception_ids_.assign(cfg_.ports.size(), std::nullopt);
  exception_started_.assign(cfg_.ports.size(), false);
  const std::uint16_t queues = static_cast<std::uint16_t>(worker_count_);
  for (std::size_t i = 0; i < cfg_.ports.size(); ++i) {
    const config::PortConfig& pc = cfg_.ports[i];
    if (!pc.exception) continue;
    const std::string devargs = exception_devargs(pc, i);
    const std::string name = devargs.substr(0, devargs.find(','));
    std::uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
      *error = fmt::format("port '{}': kernel interface device {} not found (is the PMD available?)", pc.name, name);
      return false;
    }
    exception_ids_[i] = id;
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(id, &info); rc != 0) {
      *error = fmt::format("port '{}': kernel interface {}: cannot read device info: {}", pc.name, name,
                           rte_strerror(-rc));
      return false;
    }
    // One queue pair per worker; net_tap in DPDK 22.11 has at most 16.
    if (queues > info.max_rx_queues || queues > info.max_tx_queues) {
      *error = fmt::format("port '{}': {} workers need {} queue pairs on the kernel interface {}, which takes at most "
                           "{}; run at most that many workers with ports[].exception",
                           pc.name, queues, queues, name, std::min(info.max_rx_queues, info.max_tx_queues));
      return false;
    }
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(id, queues, queues, &conf); rc != 0) {
      *error = fmt::format("port '{}': kernel interface {}: configure failed: {}", pc.name, name, rte_strerror(-rc));
      return false;
    }
    const int socket = rte_eth_dev_socket_id(id) < 0 ? 0 : rte_eth_dev_socket_id(id);
    for (std::uint16_t q = 0; q < queues; ++q) {
      if (int rc = rte_eth_rx_queue_setup(id, q, config::exception_descriptors, static_cast<unsigned>(socket), nullptr,
                                          pool_);
          rc != 0) {
        *error = fmt::format("port '{}': kernel interface {}: rx queue {} setup failed: {}", pc.name, name, q,
                             rte_strerror(-rc));
        return false;
      }
      if (int rc = rte_eth_tx_queue_setup(id, q, config::exception_descriptors, static_cast<unsigned>(socket), nullptr);
          rc != 0) {
        *error = fmt::format("port '{}': kernel interface {}: tx queue {} setup failed: {}", pc.name, name, q,
                             rte_strerror(-rc));
        return false;
      }
    }
    // The kernel's MTU is the port's, so it never sends what the port cannot
    // carry; a device without MTU (a ring port) is no error.
    if (int rc = rte_eth_dev_set_mtu(id, pc.mtu); rc != 0 && rc != -ENOTSUP) {
      *error = fmt::format("port '{}': kernel interface {}: cannot set MTU {}: {}", pc.name, name, pc.mtu,
                           rte_strerror(-rc));
      return false;
    }
    // The port's MAC: what the port receives for us is addressed to it, and
    // what the kernel sends must carry it (the dataplane rewrites it anyway).
    rte_ether_addr mac;
    if (int rc = rte_eth_macaddr_get(port_ids_[i], &mac); rc != 0) {
      *error = fmt::format("port '{}': cannot read its MAC address: {}", pc.name, rte_strerror(-rc));
      return false;
    }
    if (pc.mac) std::memcpy(mac.addr_bytes, pc.mac->bytes.data(), 6);
    if (int rc = rte_eth_dev_default_mac_addr_set(id, &mac); rc != 0 && rc != -ENOTSUP) {
      *error = fmt::format("port '{}': kernel interface {}: cannot set MAC: {}", pc.name, name, rte_strerror(-rc));
      return false;
    }
    // Before the link comes up, so the kernel never answers ARP or speaks
    // IPv6 on it, not even for a moment.
    if (pc.exception->device.empty())
      if (std::string problem = prepare_kernel_interface(pc.exception->interface, pc.address, pc.prefix_length);
          !problem.empty()) {
        *error = fmt::format("port '{}': kernel interface {}: {}", pc.name, pc.exception->interface, problem);
        return false;
      }
    if (const std::string data(config::device_interface(pc.device)); !data.empty())
      if (std::string problem = quiet_data_interface(data); !problem.empty()) {
        *error = fmt::format("port '{}': its device's interface {}: {}", pc.name, data, problem);
        return false;
      }
    if (int rc = rte_eth_dev_start(id); rc != 0) {
      *error = fmt::format("port '{}': kernel interface {}: start failed: {}", pc.name, name, rte_strerror(-rc));
      return false;
    }
    exception_started_[i] = true;
  }
  return true;
}

// Closed, not only stopped: net_tap keeps its receive queues' buffers until
// then, and stop() returns every buffer to the pool (its report says so).
// The kernel interface goes at once, so routing peers see passgate leave.
void Gateway::stop_exceptions() {
  for (std::size_t i = 0; i < exception_ids_.size(); ++i) {
    if (!exception_ids_[i]) continue;
    if (exception_started_[i]) rte_eth_dev_stop(*exception_ids_[i]);
    exception_started_[i] = false;
    rte_eth_dev_close(*exception_ids_[i]);
    exception_ids_[i].reset();
  }
}

}  // namespace passgate::dataplane
