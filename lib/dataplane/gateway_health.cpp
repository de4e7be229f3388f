// What the health monitor (control/health_monitor.hpp) reads of the
// gateway: each port's link and each worker's clock. Cheap, no round trip to
// the workers, so a stalled worker cannot stall the check that finds it.
#include <rte_ethdev.h>

#include "dataplane/gateway.hpp"
#include "dataplane/kernel_interface.hpp"
#include "dataplane/worker.hpp"
#include "stats/load_relaxed.hpp"

namespace passgate::dataplane {

std::vector<std::optional<bool>> Gateway::link_states() const {
  std::vector<std::optional<bool>> out;
  for (std::size_t i = 0; i < port_links_.size(); ++i) {
    // net_af_packet and net_pcap force their link up (DPDK 22.11): the
    // netdev they read from knows. A veth whose peer went down, or a cable
    // pulled, shows as not running.
    if (const std::string& iface = port_links_[i].interface; !iface.empty()) {
      const auto flags = kernel_link_flags(iface);
      out.push_back(flags ? std::optional<bool>(flags->up && flags->running) : std::nullopt);
      continue;
    }
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(port_ids_[i], &link) != 0) {
      out.push_back(std::nullopt);
      continue;
    }
    out.push_back(link.link_status == RTE_ETH_LINK_UP);
  }
  return out;
}

std::vector<std::string> Gateway::port_names() const {
  std::vector<std::string> out;
  for (const PortLink& p : port_links_) out.push_back(p.name);
  return out;
}

std::vector<std::uint64_t> Gateway::worker_clocks() const {
  std::vector<std::uint64_t> out;
  for (const auto& w : workers_) out.push_back(stats::load_relaxed(w->now_ms));
  return out;
}

}  // namespace passgate::dataplane
