// dataplane: EAL arguments, worker lcores, buffers, burst, mode, steering,
// the neighbour cache and the gateway's own ICMP errors; then the buffer
// budget, which needs the ports as well.
#include "config/readers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "config/mbuf_budget.hpp"

namespace passgate::config {

void read_dataplane(Checker& c, const Field& f, DataplaneConfig& d, DataplaneSeen& seen) {
  const std::size_t errors_before = c.count();
  seen.section = f;
  const Mapping m(c, f,
                  {"eal", "workers", "mbufs", "mbuf_cache", "burst", "mode", "steering", "neighbour", "icmp_errors"});
  if (m.ok()) {
    if (const Field* ef = m.get("eal"))
      if (const auto items = sequence(c, *ef, "EAL arguments like \"--no-huge\"", true))
        for (const Field& item : *items)
          if (auto s = c.text(item, "an EAL argument (a string)")) d.eal_args.push_back(*s);

    if (const Field* wf = m.get("workers"))
      if (const auto items = sequence(c, *wf, "lcore ids like 1", true))
        for (const Field& item : *items)
          if (const auto v = c.integer(item, 0, 127, "an lcore id below DPDK's RTE_MAX_LCORE of 128")) {
            const auto lcore = static_cast<unsigned>(*v);
            if (std::find(d.worker_lcores.begin(), d.worker_lcores.end(), lcore) != d.worker_lcores.end())
              c.error(Code::repeated, item,
                      fmt::format("lcore {} is listed twice; expected each worker lcore once", lcore));
            else
              d.worker_lcores.push_back(lcore);
          }

    if (const Field* mf = m.get("mbufs")) {
      seen.mbufs = *mf;
      if (!(mf->node.IsScalar() && mf->node.Scalar() == "auto"))
        set_integer(c, m, "mbufs", d.mbufs, 1023, (1u << 26) - 1, "buffers, or auto");
    }
    set_integer(c, m, "mbuf_cache", d.mbuf_cache, 0, 512, "per lcore; DPDK's RTE_MEMPOOL_CACHE_MAX_SIZE is 512");
    set_integer(c, m, "burst", d.burst, 1, 64, "packets per receive call");
    if (const Field* sf = m.get("steering"))
      if (auto s = c.text(*sf, "auto or handoff")) {
        if (*s == "auto" || *s == "handoff") d.steering_handoff_only = *s == "handoff";
        else
          c.error(Code::bad_choice, *sf,
                  fmt::format("expected auto (program RSS where the device can) or handoff, got '{}'", *s));
      }
    if (const Field* mf = m.get("mode"))
      if (auto s = c.text(*mf, "nat or forward")) {
        if (*s == "nat" || *s == "forward") d.forward_only = *s == "forward";
        else
          c.error(Code::bad_choice, *mf,
                  fmt::format("expected nat (translate) or forward (route without NAT, for benchmarks), got '{}'", *s));
      }

    if (const Field* nf = m.get("neighbour")) {
      const Mapping nm(c, *nf, {"reachable_s", "retry_ms", "max_retries", "queue", "table_size", "unsolicited_percent", "held"});
      if (nm.ok()) {
        NeighbourConfig& n = d.neighbour;
        set_integer(c, nm, "reachable_s", n.reachable_seconds, 1, 86400, "seconds");
        set_integer(c, nm, "retry_ms", n.retry_ms, 10, 60000, "milliseconds");
        set_integer(c, nm, "max_retries", n.max_retries, 1, 100);
        set_integer(c, nm, "queue", n.queue_packets, 1, 256, "packets per unresolved neighbour");
        set_integer(c, nm, "table_size", n.table_size, 16, 1u << 20, "neighbours per port");
        set_integer(c, nm, "held", n.held_packets, 1, 1u << 22, "packets waiting for ARP per port and worker");
        set_integer(c, nm, "unsolicited_percent", n.unsolicited_percent, 0, 100,
                    "percent of the table for neighbours that asked for us");
      }
    }
    if (const Field* icf = m.get("icmp_errors")) {
      const Mapping im(c, *icf, {"rate", "burst"});
      if (im.ok()) {
        set_integer(c, im, "rate", d.icmp_error_rate, 0, 1000000, "errors per second per worker; 0 sends none");
        set_integer(c, im, "burst", d.icmp_error_burst, 1, 100000, "errors");
      }
    }
  }
  seen.clean = c.count() == errors_before;
}

// Buffers: the pool must cover every place that can hold them at once
// (config/mbuf_budget.hpp), so that no full ring or queue can empty it and
// stall receive. Checked here with the fewest workers the file allows; the
// gateway checks again with the lcores EAL gives. (rte_mempool_create also
// refuses a cache above two thirds of the pool: the budget covers 1.5 caches
// per lcore, which rules that out.)
void check_buffers(Checker& c, const GatewayConfig& g, const DataplaneSeen& seen, const YAML::Mark& root_mark) {
  const DataplaneConfig& d = g.dataplane;
  const MbufBudget budget = mbuf_budget(g, workers_at_least(g));
  const std::uint64_t need = budget.total();
  constexpr std::uint64_t most = (1u << 26) - 1;
  std::string message;
  if (d.mbufs == 0 && need > most)
    message = fmt::format("this configuration can hold {} mbufs at once ({}), more than the {} a pool takes; "
                          "expected smaller neighbour tables or queues, fewer descriptors or workers",
                          need, budget.explain(), most);
  else if (d.mbufs != 0 && d.mbufs < need)
    message = fmt::format("{} mbufs cannot cover what this configuration can hold at once: {}; expected at least {}, "
                          "or auto to size the pool to that",
                          d.mbufs, budget.explain(), need);
  if (message.empty()) return;
  if (seen.mbufs)
    c.error(Code::capacity, *seen.mbufs, message);
  else if (seen.section)
    c.error(Code::capacity, *seen.section, message);
  else
    c.error_at(Code::capacity, root_mark, "dataplane: " + message);
}

}  // namespace passgate::config
