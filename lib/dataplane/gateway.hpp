// The DPDK gateway: ports, buffer pool and worker lcores around the NAT
// engine. This is the only part of passgate (with lib/control) that includes
// DPDK; the translation itself is lib/nat over plain bytes.
//
// Data flow per worker (one lcore, its own NAT engine, neighbour tables and
// counters; nothing shared with other workers):
//   rx burst -> Ethernet/802.1Q -> ARP (answer, learn) | IPv4 to us (echo) |
//   NAT burst (inside port: outbound, outside port: inbound) -> TTL, MTU ->
//   next hop (on-link, route, gateway) -> neighbour MAC or ARP queue ->
//   tx buffer -> tx burst. With ports[].exception, what is for the port's
//   own address and not answered here goes to the port's kernel interface
//   (one queue per worker), and what the kernel sends leaves through the
//   port (worker_exception.cpp).
// The main lcore runs the control loop: it sleeps, watches for the stop
// signal and reads counters; it never polls ports.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/gateway_config.hpp"
#include "nat/engine.hpp"
#include "steering/dispatch.hpp"
#include "stats/nat_counters.hpp"
#include "stats/runtime.hpp"
#include "stats/snapshot.hpp"
#include "stats/port_counters.hpp"

struct rte_mempool;
struct rte_rcu_qsbr;
struct rte_ring;

namespace passgate::dataplane {

using packet::be16;
using packet::be32;

struct Worker;
struct Policy;

// One session as the CLI shows it.
struct SessionView {
  const char* protocol;
  be32 inside_address, public_address, remote_address;
  std::uint16_t inside_port, public_port, remote_port;
  const char* tcp_state;
  std::uint32_t idle_s;
  unsigned worker;
};

// What the gateway knows of one subscriber, over all workers.
struct SubscriberView {
  be32 address;
  be32 public_address;  // 0 when it has no state
  std::uint16_t block_size = 0;  // ports of each block, `port_step` apart
  std::uint16_t port_step = 1;
  std::string pool;              // empty when it has no state
  bool deterministic = false;
  std::vector<std::uint16_t> block_first_ports;
  std::vector<SessionView> sessions;  // at most the limit asked for
};

// The mapping that holds a public address and port, with its sessions.
struct PublicPortView {
  const char* protocol;
  be32 inside_address, public_address;
  std::uint16_t inside_port, public_port;
  bool is_static;
  std::uint32_t sessions;
  std::vector<SessionView> session_list;
};

// Who holds the port block covering a public address and port.
struct PortHolderView {
  be32 subscriber;
  std::string pool;
  bool deterministic;
  std::uint16_t first_port, last_port, step;  // ports first, first+step, ... last
  unsigned worker;
};

// passgatectl lookup ADDRESS:PORT: the block holder, and each protocol's
// mapping of the port with its sessions.
struct PortLookupView {
  be32 address;
  std::uint16_t port;
  std::optional<PortHolderView> holder;
  std::vector<PublicPortView> mappings;
};

// How a reload went.
struct ReloadOutcome {
  bool applied = false;
  std::vector<std::string> problems;  // why not, one line each
  std::string summary;                // what changed, for the log and the CLI
  std::uint64_t generation = 0;
  // Workers that had not taken the new policy within reload_apply_timeout
  // (stalled): they take it at their next loop turn; until then the next
  // reload is refused and the policies they may read are kept.
  std::vector<unsigned> late_workers;
};

inline constexpr unsigned reload_apply_timeout_ms = 2000;

// EAL arguments passgate adds for a configuration: a --vdev for every vdev
// port, an allow-list entry for every PCI port, and the lcore list when the
// operator gave none.
std::vector<std::string> eal_arguments(const config::GatewayConfig& cfg, const std::vector<std::string>& extra);
// The device behind port `index`'s kernel interface (ports[].exception), as
// EAL takes it: its `device`, else a net_tap named after the port's index
// ("net_tap_pg1,iface=outside"). Empty when the port has none.
std::string exception_devargs(const config::PortConfig& port, std::size_t index);

class Gateway {
 public:
  // After rte_eal_init(). nullptr with a message on failure.
  static std::unique_ptr<Gateway> create(const config::GatewayConfig& cfg, std::string* error);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Launches the workers and returns at once.
  bool start(std::string* error);
  // Asks the workers to stop, waits for them, stops the ports and returns
  // every buffer the gateway still holds to the pool.
  void stop();

  using Snapshot = stats::GatewaySnapshot;
  // Counters are read while workers write them: each value is a relaxed
  // atomic load (stats/load_relaxed.hpp), never torn, possibly a moment old.
  // with_pools: also the per-pool gauges, which need a round trip to every
  // worker (a few microseconds each; never call it per packet).
  [[nodiscard]] Snapshot snapshot(bool with_pools = false) const;
  void print(std::FILE* out) const;

  // Runtime accounting (stats/runtime.hpp, gateway_runtime.cpp): every
  // worker's time by stage since the last clear_runtime(), or since start
  // (raw: what Prometheus exports, whose counters never go back). Relaxed
  // reads; a clear is a baseline kept here, the workers are not touched.
  [[nodiscard]] stats::RuntimeSnapshot runtime(bool since_clear = true) const;
  void clear_runtime();

  // Hot reload: checks `next` against the running gateway (restart-only
  // changes, engine limits), publishes it to the workers under RCU and waits
  // until every worker runs it. A refused reload changes nothing.
  // `before_publish` runs after the checks, right before the workers see
  // the new policy (a test stalls a worker there).
  ReloadOutcome reload(const config::GatewayConfig& next, const std::function<void()>& before_publish = {});
  [[nodiscard]] std::uint64_t generation() const;

  // Operator look-ups, answered by the workers between two bursts.
  [[nodiscard]] SubscriberView subscriber(be32 address, std::size_t session_limit) const;
  [[nodiscard]] std::optional<PublicPortView> public_port(std::uint8_t protocol, be32 address, std::uint16_t port,
                                                          std::size_t session_limit) const;
  [[nodiscard]] PortLookupView lookup_port(be32 address, std::uint16_t port, std::size_t session_limit) const;

  // Control core only: hands every NAT event the workers queued to `sink`,
  // with its time turned into Unix milliseconds. Returns how many.
  std::size_t drain_events(const std::function<void(const nat::NatEvent&)>& sink);

  [[nodiscard]] config::GatewayConfig config() const;

  // Several workers: how each port is steered ("rss" when its RSS is
  // programmed by lib/steering, "handoff" when packets are handed between
  // workers, "single" with one worker), in configuration order.
  [[nodiscard]] const std::vector<std::string>& steering_modes() const { return steering_modes_; }
  [[nodiscard]] const steering::RssSteering* steering() const { return rss_ ? &*rss_ : nullptr; }
  [[nodiscard]] unsigned worker_count() const { return worker_count_; }
  // Per worker: packets handed out and received, summed over ports.
  [[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> handoffs_per_worker() const;
  // For the health monitor (gateway_health.cpp). Per port, in configuration
  // order: whether its link is up, as the device reports it or, for a
  // device reading a kernel netdev (af_packet, pcap: their link is forced
  // up), as that netdev does; nullopt when it cannot be read.
  [[nodiscard]] std::vector<std::optional<bool>> link_states() const;
  // Port names in configuration order, fixed for the run (no lock: a
  // check of a stalled worker must not wait behind a look-up).
  [[nodiscard]] std::vector<std::string> port_names() const;
  // Each worker's clock in ms, which its loop advances once a millisecond:
  // one that stops moving belongs to a stalled worker. No round trip.
  [[nodiscard]] std::vector<std::uint64_t> worker_clocks() const;
  // Runs fn on worker w's own thread between two of its loop turns; the
  // worker does nothing else until fn returns (a test stalls a worker so).
  // False if the worker did not take it within timeout_ms.
  bool run_on_worker(unsigned w, const std::function<void()>& fn, unsigned timeout_ms) const;

 private:
  explicit Gateway(const config::GatewayConfig& cfg);
  bool setup_ports(std::string* error);
  // The kernel interfaces, after the ports have started and their MACs are
  // known (gateway_exception.cpp).
  bool setup_exceptions(std::string* error);
  void stop_exceptions();
  std::unique_ptr<Policy> make_policy(const config::GatewayConfig& cfg, std::uint64_t generation) const;
  // Runs fn on every worker's thread in turn; false if one did not answer.
  bool on_workers(const std::function<void(Worker&)>& fn) const;

  mutable std::mutex runtime_mutex_;  // runtime_baseline_
  stats::RuntimeSnapshot runtime_baseline_;
  mutable std::mutex control_mutex_;  // reloads, look-ups and cfg_ reads on the control side
  config::GatewayConfig cfg_;
  std::unique_ptr<Policy> policy_;
  // Policies a late worker may still read (see ReloadOutcome::late_workers),
  // freed once every worker has taken the current one.
  std::vector<std::unique_ptr<Policy>> retired_;
  std::vector<unsigned> late_workers_;
  std::atomic<const Policy*> published_{nullptr};
  rte_rcu_qsbr* qsbr_ = nullptr;
  unsigned worker_count_ = 1;
  std::vector<unsigned> worker_lcores_;
  std::optional<steering::RssSteering> rss_;
  steering::DispatchRules rules_;
  std::vector<rte_ring*> rings_;
  std::vector<std::string> steering_modes_;
  rte_mempool* pool_ = nullptr;
  std::vector<std::uint16_t> port_ids_;
  std::vector<bool> port_started_;
  // By configuration port: its name and the kernel netdev its device reads
  // (empty for PCI, ring, memif), for link_states() without cfg_'s lock.
  struct PortLink {
    std::string name, interface;
  };
  std::vector<PortLink> port_links_;
  // By configuration port: the ethdev of its kernel interface, if it has one.
  std::vector<std::optional<std::uint16_t>> exception_ids_;
  std::vector<bool> exception_started_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // What each worker lcore's entry point gets: it must outlive the workers'
  // run, hence a member and not a local of start().
  std::vector<std::pair<Worker*, const std::atomic<bool>*>> launch_args_;
  std::atomic<bool> stop_{false};
  bool running_ = false;
};

}  // namespace passgate::dataplane
