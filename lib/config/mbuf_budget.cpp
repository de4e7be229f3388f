#include "config/mbuf_budget.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace passgate::config {

MbufBudget mbuf_budget(const GatewayConfig& cfg, unsigned workers) {
  MbufBudget b;
  const std::uint64_t w = std::max(1u, workers);
  const std::uint64_t ports = cfg.ports.size();
  const DataplaneConfig& d = cfg.dataplane;
  b.workers = static_cast<unsigned>(w);
  for (const PortConfig& p : cfg.ports) {
    b.rx_descriptors += std::uint64_t{p.rx_queues} * p.rx_descriptors;
    b.tx_descriptors += std::uint64_t{p.tx_queues} * p.tx_descriptors;
  }
  if (w > 1) {
    b.handoff_rings = w * (handoff_ring_slots - 1);
    b.handoff_buffers = w * (w * handoff_buffer_mbufs + waiting_fragment_mbufs);
  }
  b.neighbour_queues = w * ports * std::min<std::uint64_t>(std::uint64_t{d.neighbour.table_size} * d.neighbour.queue_packets,
                                                          d.neighbour.held_packets);
  b.tx_buffers = w * ports * tx_buffer_mbufs;
  b.lcore_caches = (w + 1) * (std::uint64_t{d.mbuf_cache} * 3 / 2);
  b.in_flight = w * (std::uint64_t{d.burst} + generated_reserve_mbufs);
  for (const PortConfig& p : cfg.ports)
    if (p.exception) b.exception += w * (2 * std::uint64_t{exception_descriptors} + exception_buffer_mbufs);
  return b;
}

std::string MbufBudget::explain() const {
  std::string s = fmt::format("rx descriptors {} + tx descriptors {}", rx_descriptors, tx_descriptors);
  if (handoff_rings) s += fmt::format(" + handoff rings {} + handoff buffers {}", handoff_rings, handoff_buffers);
  s += fmt::format(" + neighbour queues {} + tx buffers {} + lcore caches {} + in flight {}", neighbour_queues,
                   tx_buffers, lcore_caches, in_flight);
  if (exception) s += fmt::format(" + kernel interfaces {}", exception);
  s += fmt::format(" ({} worker{}) = {}", workers, workers == 1 ? "" : "s", total());
  return s;
}

unsigned workers_at_least(const GatewayConfig& cfg) {
  return std::max<unsigned>(1, static_cast<unsigned>(cfg.dataplane.worker_lcores.size()));
}

}  // namespace passgate::config
