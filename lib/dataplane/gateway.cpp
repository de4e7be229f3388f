#include "dataplane/gateway.hpp"

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "config/mbuf_budget.hpp"
#include "dataplane/worker.hpp"

namespace passgate::dataplane {

namespace {

bool is_vdev(const std::string& device) { return device.rfind("net_", 0) == 0; }
std::string device_name(const std::string& device) { return device.substr(0, device.find(',')); }

bool has_lcore_option(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "-l" || a == "-c" || a.rfind("--lcores", 0) == 0 || a.rfind("-l", 0) == 0) return true;
  return false;
}

// Room for about 1 ms of a busy worker's traffic: an owner that is briefly
// not running (time-sliced CPUs, the perf harness showed) must not drop.
// Counted against the pool (config/mbuf_budget.hpp), as are the buffers below.
constexpr unsigned handoff_ring_size = config::handoff_ring_slots;
static_assert(TxBuffer::capacity == config::tx_buffer_mbufs);
static_assert(HandoffBuffer::capacity == config::handoff_buffer_mbufs);
static_assert(nat::Engine::max_burst <= config::generated_reserve_mbufs);

int worker_main(void* arg) {
  auto* w = static_cast<std::pair<Worker*, const std::atomic<bool>*>*>(arg);
  w->first->run(w->second);
  return 0;
}

}  // namespace

std::vector<std::string> eal_arguments(const config::GatewayConfig& cfg, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"passgate"};
  args.insert(args.end(), cfg.dataplane.eal_args.begin(), cfg.dataplane.eal_args.end());
  args.insert(args.end(), extra.begin(), extra.end());
  if (!has_lcore_option(args)) {
    std::string lcores = "0";
    if (cfg.dataplane.worker_lcores.empty()) lcores += ",1";
    for (unsigned l : cfg.dataplane.worker_lcores) lcores += fmt::format(",{}", l);
    args.push_back("-l");
    args.push_back(lcores);
  }
  const auto add_device = [&](const std::string& device) {
    if (is_vdev(device)) args.push_back("--vdev=" + device);
    else {
      args.push_back("-a");
      args.push_back(device);
    }
  };
  for (const auto& port : cfg.ports) add_device(port.device);
  for (std::size_t i = 0; i < cfg.ports.size(); ++i)
    if (cfg.ports[i].exception) add_device(exception_devargs(cfg.ports[i], i));
  return args;
}

Gateway::Gateway(const config::GatewayConfig& cfg) : cfg_(cfg) {}

std::unique_ptr<Gateway> Gateway::create(const config::GatewayConfig& cfg, std::string* error) {
  std::unique_ptr<Gateway> g(new Gateway(cfg));
  // Buffers large enough for the largest MTU plus an 802.1Q header.
  std::uint16_t mtu = 1500;
  for (const auto& p : cfg.ports) mtu = std::max(mtu, p.mtu);
  const std::uint32_t data_room = std::max<std::uint32_t>(RTE_MBUF_DEFAULT_DATAROOM, mtu + 18u + 4u) + RTE_PKTMBUF_HEADROOM;
  // As many buffers as every ring, queue, buffer and cache can hold at once
  // (config/mbuf_budget.hpp), with the workers EAL gives and the descriptor
  // counts the drivers will set up: a full one can then never empty the pool
  // and stall receive. dataplane.mbufs 0 (auto) is exactly that.
  const unsigned workers =
      cfg.dataplane.worker_lcores.empty() ? std::max(1u, rte_lcore_count() - 1)
                                          : static_cast<unsigned>(cfg.dataplane.worker_lcores.size());
  config::GatewayConfig sized = cfg;
  for (auto& pc : sized.ports) {
    std::uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(device_name(pc.device).c_str(), &id) == 0)
      rte_eth_dev_adjust_nb_rx_tx_desc(id, &pc.rx_descriptors, &pc.tx_descriptors);
  }
  const config::MbufBudget budget = config::mbuf_budget(sized, workers);
  const std::uint64_t mbufs = cfg.dataplane.mbufs ? cfg.dataplane.mbufs : budget.total();
  if (mbufs < budget.total() || mbufs > UINT32_MAX) {
    *error = fmt::format("dataplane.mbufs {} cannot cover what this configuration can hold at once: {}; expected at "
                         "least {}, or auto to size the pool to that",
                         mbufs, budget.explain(), budget.total());
    return nullptr;
  }
  g->pool_ = rte_pktmbuf_pool_create("passgate_mbufs", static_cast<unsigned>(mbufs), cfg.dataplane.mbuf_cache, 0,
                                     static_cast<std::uint16_t>(data_room), static_cast<int>(rte_socket_id()));
  if (!g->pool_) {
    *error = fmt::format("cannot create a pool of {} buffers ({}): {}", mbufs, budget.explain(),
                         rte_strerror(rte_errno));
    return nullptr;
  }
  // Worker lcores: every enabled lcore except the main one. Each polls its
  // own queue of every port and transmits on its own queue.
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) g->worker_lcores_.push_back(lcore);
  if (!cfg.dataplane.worker_lcores.empty()) {  // dataplane.workers picks among them
    for (unsigned l : cfg.dataplane.worker_lcores)
      if (std::find(g->worker_lcores_.begin(), g->worker_lcores_.end(), l) == g->worker_lcores_.end()) {
        *error = fmt::format("dataplane.workers lists lcore {}, which EAL did not enable as a worker lcore", l);
        return nullptr;
      }
    g->worker_lcores_ = cfg.dataplane.worker_lcores;
  }
  if (g->worker_lcores_.empty()) {
    *error = "no worker lcore: give EAL at least two lcores (-l 0,1), the first runs the control loop";
    return nullptr;
  }
  g->worker_count_ = static_cast<unsigned>(g->worker_lcores_.size());
  const unsigned w = g->worker_count_;
  if (w > 1) {
    // One residue of every public address's ports per worker (lib/steering):
    // the port blocks stay plain ranges with a step, which NAT logs can say.
    if ((w & (w - 1)) != 0) {
      *error = fmt::format("{} workers: with several workers passgate needs a power of two (2, 4, 8, 16, 32) so that "
                           "each owns one comb of every public address's ports",
                           w);
      return nullptr;
    }
    for (const auto& pc : cfg.ports)
      if (pc.tx_queues < w || pc.rx_queues > w) {
        *error = fmt::format("port '{}': {} workers need tx_queues of at least {} (one each) and rx_queues of at most "
                             "{}; it has {} rx, {} tx",
                             pc.name, w, w, w, pc.rx_queues, pc.tx_queues);
        return nullptr;
      }
    steering::SteeringParams params;
    params.workers = w;
    params.reta_size = 512;
    steering::SteeringError why = steering::SteeringError::none;
    g->rss_ = steering::RssSteering::make(params, &why);
    if (!g->rss_) {
      *error = fmt::format("RSS steering for {} workers: {}", w, steering::to_string(why));
      return nullptr;
    }
    g->rules_ = steering::DispatchRules{&*g->rss_};
  }
  if (!g->setup_ports(error) || !g->setup_exceptions(error)) return nullptr;
  return g;
}

bool Gateway::setup_ports(std::string* error) {
  for (const auto& pc : cfg_.ports) {
    std::uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(device_name(pc.device).c_str(), &id) != 0) {
      *error = fmt::format("port '{}': device {} not found (is the PMD available and the interface there?)", pc.name,
                           pc.device);
      return false;
    }
    port_ids_.push_back(id);
    port_started_.push_back(false);
    port_links_.push_back({pc.name, std::string(config::device_interface(pc.device))});
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(id, &info); rc != 0) {
      *error = fmt::format("port '{}': cannot read device info: {}", pc.name, rte_strerror(-rc));
      return false;
    }
    if (pc.rx_queues > info.max_rx_queues || pc.tx_queues > info.max_tx_queues) {
      *error = fmt::format("port '{}': {} rx / {} tx queues asked, the device has at most {} / {}", pc.name,
                           pc.rx_queues, pc.tx_queues, info.max_rx_queues, info.max_tx_queues);
      return false;
    }
    rte_eth_conf conf{};
    // Steering (lib/steering): outside on the destination address and port
    // only, inside on the source address only, with passgate's keys and
    // redirection table. A device that cannot hash that way, or one queue,
    // leaves the work to the handoff rings.
    std::string mode = worker_count_ == 1 ? "single" : "handoff";
    const bool outside = pc.role == config::PortRole::outside;
    const std::uint64_t wanted =
        RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP |
        RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
    const std::uint64_t only = outside ? (RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY) : RTE_ETH_RSS_L3_SRC_ONLY;
    const bool device_can = (info.flow_type_rss_offloads & only) == only && (info.flow_type_rss_offloads & wanted) &&
                            info.reta_size >= worker_count_ && (info.hash_key_size == 0 || info.hash_key_size >= 40);
    std::array<std::uint8_t, 52> key{};  // i40e/ice take 52 bytes; zero padding leaves IPv4 hashes alone
    if (rss_ && pc.rx_queues > 1 && !cfg_.dataplane.steering_handoff_only && device_can) {
      const auto& k = outside ? rss_->outside_key() : rss_->inside_key();
      std::copy(k.begin(), k.end(), key.begin());
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_key = key.data();
      conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<std::uint8_t>(info.hash_key_size ? info.hash_key_size : 40);
      conf.rx_adv_conf.rss_conf.rss_hf = (info.flow_type_rss_offloads & wanted) | only;
      mode = "rss";
    } else if (pc.rx_queues > 1) {
      // Spread anyway (any hash): workers hand over what they do not own.
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
    }
    if (int rc = rte_eth_dev_configure(id, pc.rx_queues, pc.tx_queues, &conf); rc != 0) {
      *error = fmt::format("port '{}': configure failed: {}", pc.name, rte_strerror(-rc));
      return false;
    }
    std::uint16_t rxd = pc.rx_descriptors, txd = pc.tx_descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd); rc != 0) {
      *error = fmt::format("port '{}': cannot fit {} rx / {} tx descriptors to the device: {}", pc.name,
                           pc.rx_descriptors, pc.tx_descriptors, rte_strerror(-rc));
      return false;
    }
    const int socket = rte_eth_dev_socket_id(id) < 0 ? 0 : rte_eth_dev_socket_id(id);
    for (std::uint16_t q = 0; q < pc.rx_queues; ++q)
      if (int rc = rte_eth_rx_queue_setup(id, q, rxd, static_cast<unsigned>(socket), nullptr, pool_); rc != 0) {
        *error = fmt::format("port '{}': rx queue {} setup failed: {}", pc.name, q, rte_strerror(-rc));
        return false;
      }
    for (std::uint16_t q = 0; q < pc.tx_queues; ++q)
      if (int rc = rte_eth_tx_queue_setup(id, q, txd, static_cast<unsigned>(socket), nullptr); rc != 0) {
        *error = fmt::format("port '{}': tx queue {} setup failed: {}", pc.name, q, rte_strerror(-rc));
        return false;
      }
    // Not every virtual device can change its MTU (-ENOTSUP: the configured
    // MTU is enforced in software anyway); a device that can and refuses
    // this one (outside its range, or its kernel interface said no) stops
    // the start rather than run with frames it cannot carry.
    if (int rc = rte_eth_dev_set_mtu(id, pc.mtu); rc != 0 && rc != -ENOTSUP) {
      *error = fmt::format("port '{}': cannot set MTU {}: {} (the device takes {} to {})", pc.name, pc.mtu,
                           rte_strerror(-rc), info.min_mtu, info.max_mtu);
      return false;
    }
    if (int rc = rte_eth_dev_start(id); rc != 0) {
      *error = fmt::format("port '{}': start failed: {}", pc.name, rte_strerror(-rc));
      return false;
    }
    port_started_.back() = true;
    bool mac_in_software = false;
    if (pc.mac) {
      rte_ether_addr a;
      std::memcpy(a.addr_bytes, pc.mac->bytes.data(), 6);
      // A device that cannot take another MAC (net_pcap) receives in
      // promiscuous mode instead; the software filter then keeps to `mac`.
      if (int rc = rte_eth_dev_default_mac_addr_set(id, &a); rc == -ENOTSUP) {
        mac_in_software = true;
      } else if (rc != 0) {
        *error = fmt::format("port '{}': cannot set MAC {}: {}", pc.name, config::to_string(*pc.mac), rte_strerror(-rc));
        return false;
      }
    }
    // Frames for other MACs are dropped in software either way (Worker::
    // packet::classify_frame); the device filters them first where it can, and a
    // device that cannot leave promiscuous mode is no error. One asked to
    // enter it must.
    if (pc.promiscuous) {
      if (int rc = rte_eth_promiscuous_enable(id); rc != 0) {
        *error = fmt::format("port '{}': promiscuous: true, but the device refused: {}", pc.name, rte_strerror(-rc));
        return false;
      }
    } else if (mac_in_software) {
      rte_eth_promiscuous_enable(id);
    } else {
      rte_eth_promiscuous_disable(id);
    }
    if (mode == "rss") {
      // The redirection table: entry i to worker rss_->reta()[i % size].
      std::vector<rte_eth_rss_reta_entry64> reta(info.reta_size / RTE_ETH_RETA_GROUP_SIZE + 1);
      for (unsigned i = 0; i < info.reta_size; ++i) {
        auto& group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
        group.mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
        group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = rss_->reta()[i % rss_->reta_size()];
      }
      if (rte_eth_dev_rss_reta_update(id, reta.data(), info.reta_size) != 0) mode = "handoff";
    }
    steering_modes_.push_back(mode);
  }
  return true;
}

bool Gateway::start(std::string* error) {
  const std::vector<unsigned>& lcores = worker_lcores_;
  std::vector<PortView> views;
  for (std::size_t i = 0; i < cfg_.ports.size(); ++i) {
    const auto& pc = cfg_.ports[i];
    PortView v{&pc, port_ids_[i], {}, pc.role == config::PortRole::inside,
               pc.prefix_length >= 31 ? 0u : 0xffffffffu >> pc.prefix_length, exception_ids_[i]};
    rte_ether_addr mac;
    if (int rc = rte_eth_macaddr_get(port_ids_[i], &mac); rc != 0) {
      *error = fmt::format("port '{}': cannot read its MAC address: {}", pc.name, rte_strerror(-rc));
      return false;
    }
    std::memcpy(v.mac.bytes.data(), mac.addr_bytes, 6);
    if (pc.mac) v.mac = *pc.mac;  // also where the device could not take it
    views.push_back(v);
  }
  // Workers expect the inside port at index 0.
  if (!views[0].inside) std::swap(views[0], views[1]);

  // RCU for the policy: one reader per worker.
  const std::size_t qsbr_size = rte_rcu_qsbr_get_memsize(static_cast<std::uint32_t>(lcores.size()));
  qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, (qsbr_size + RTE_CACHE_LINE_SIZE - 1) /
                                                                                 RTE_CACHE_LINE_SIZE * RTE_CACHE_LINE_SIZE));
  if (!qsbr_ || rte_rcu_qsbr_init(qsbr_, static_cast<std::uint32_t>(lcores.size())) != 0) {
    *error = "cannot set up the RCU state for policy reloads";
    return false;
  }
  policy_ = make_policy(cfg_, 1);
  published_.store(policy_.get(), std::memory_order_release);

  // Handoff rings: many producers (any worker), one consumer (the owner).
  if (worker_count_ > 1)
    for (unsigned w = 0; w < worker_count_; ++w) {
      const std::string name = fmt::format("pg_handoff_{}", w);
      rte_ring* ring = rte_ring_lookup(name.c_str());
      if (!ring) ring = rte_ring_create(name.c_str(), handoff_ring_size, static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
      if (!ring) {
        *error = fmt::format("cannot create the handoff ring of worker {}: {}", w, rte_strerror(rte_errno));
        return false;
      }
      rings_.push_back(ring);
    }

  for (std::size_t w = 0; w < lcores.size(); ++w) {
    nat::PortShare share;
    share.worker = static_cast<unsigned>(w);
    share.workers = worker_count_;
    share.step = static_cast<std::uint16_t>(worker_count_);
    if (rss_) {
      const steering::RssSteering* rss = &*rss_;
      share.residue = [rss, w](be32 a) { return rss->port_residue(a, static_cast<unsigned>(w)); };
    }
    std::vector<std::string> errors;
    auto engine = nat::Engine::create(cfg_.nat, &errors, std::move(share));
    if (!engine) {
      *error = "NAT configuration: " + (errors.empty() ? std::string("invalid") : errors.front());
      return false;
    }
    auto worker = std::make_unique<Worker>(cfg_, views, pool_, static_cast<std::uint16_t>(w), std::move(engine));
    worker->lcore = lcores[w];
    worker->published = &published_;
    worker->qsbr = qsbr_;
    worker->reader_id = static_cast<unsigned>(w);
    worker->index = static_cast<unsigned>(w);
    for (const auto& v : views) worker->rx_queues.push_back(v.cfg->rx_queues);
    if (worker_count_ > 1) {
      worker->rules = &rules_;
      worker->rings = rings_;
      worker->handoff.resize(worker_count_);
    }
    workers_.push_back(std::move(worker));
  }
  stop_ = false;
  launch_args_.clear();
  for (auto& w : workers_) launch_args_.emplace_back(w.get(), &stop_);
  for (std::size_t i = 0; i < workers_.size(); ++i)
    if (int rc = rte_eal_remote_launch(worker_main, &launch_args_[i], workers_[i]->lcore); rc != 0) {
      *error = fmt::format("cannot launch worker on lcore {}: {}", workers_[i]->lcore, rte_strerror(-rc));
      stop_ = true;
      rte_eal_mp_wait_lcore();
      return false;
    }
  running_ = true;
  return true;
}

void Gateway::stop() {
  stop_ = true;
  if (running_) rte_eal_mp_wait_lcore();
  running_ = false;
  for (auto& w : workers_) w->release_buffers();
  for (rte_ring* ring : rings_) {  // packets handed over but never taken
    void* m;
    while (rte_ring_dequeue(ring, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }
  for (std::size_t i = 0; i < port_ids_.size(); ++i)
    if (port_started_[i]) {
      rte_eth_dev_stop(port_ids_[i]);
      port_started_[i] = false;
    }
  stop_exceptions();
}

Gateway::~Gateway() {
  stop();
  for (std::uint16_t id : port_ids_) rte_eth_dev_close(id);
  workers_.clear();
  for (rte_ring* ring : rings_) rte_ring_free(ring);
  if (pool_) rte_mempool_free(pool_);
  std::free(qsbr_);
}

std::unique_ptr<Policy> Gateway::make_policy(const config::GatewayConfig& cfg, std::uint64_t generation) const {
  auto p = std::make_unique<Policy>();
  p->generation = generation;
  p->nat = cfg.nat;
  for (const auto& pool : cfg.nat.pools)
    for (const auto& prefix : pool.subscribers) p->subscribers.add(prefix.address, prefix.length);
  p->subscribers.build();
  for (const auto& sm : cfg.nat.static_mappings)
    p->static_endpoints.add(sm.protocol, sm.inside_address, sm.inside_port.host(), sm.public_address,
                            sm.public_port.host());
  return p;
}

bool Gateway::on_workers(const std::function<void(Worker&)>& fn) const {
  bool all = true;
  for (const auto& w : workers_) {
    ControlCall call;
    call.run = fn;
    all &= w->call_on_worker(call, 1000);
  }
  return all;
}

bool Gateway::run_on_worker(unsigned w, const std::function<void()>& fn, unsigned timeout_ms) const {
  if (w >= workers_.size()) return false;
  ControlCall call;
  call.run = [&fn](Worker&) { fn(); };
  return workers_[w]->call_on_worker(call, timeout_ms);
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> Gateway::handoffs_per_worker() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (const auto& w : workers_) {
    std::uint64_t sent = 0, received = 0;
    for (const auto& c : w->counters) {
      sent += stats::load_relaxed(c.handoff_out);
      received += stats::load_relaxed(c.handoff_in);
    }
    out.emplace_back(sent, received);
  }
  return out;
}

std::uint64_t Gateway::generation() const {
  std::lock_guard<std::mutex> lock(control_mutex_);
  return policy_ ? policy_->generation : 0;
}

config::GatewayConfig Gateway::config() const {
  std::lock_guard<std::mutex> lock(control_mutex_);
  return cfg_;
}

std::size_t Gateway::drain_events(const std::function<void(const nat::NatEvent&)>& sink) {
  std::size_t n = 0;
  for (auto& w : workers_) {
    nat::NatEvent e;
    while (w->engine->events().pop(e)) {
      e.time_ms = w->start_unix_ms + (e.time_ms >= 1000 ? e.time_ms - 1000 : 0);
      sink(e);
      ++n;
    }
  }
  return n;
}

Gateway::Snapshot Gateway::snapshot(bool with_pools) const {
  Snapshot s;
  if (with_pools) {
    std::lock_guard<std::mutex> lock(control_mutex_);
    on_workers([&](Worker& w) {
      for (const nat::PoolUsage& u : w.engine->pool_usage()) {
        auto it = std::find_if(s.pools.begin(), s.pools.end(),
                               [&](const stats::PoolUsage& p) { return p.name == u.name && p.retired == u.retired; });
        if (it == s.pools.end()) {
          s.pools.push_back(u);
          continue;
        }
        it->addresses = std::max(it->addresses, u.addresses);  // every worker sees every address
        it->addresses_draining = std::max(it->addresses_draining, u.addresses_draining);
        it->blocks_total = std::max(it->blocks_total, u.blocks_total);
        it->blocks_in_use += u.blocks_in_use;
        it->subscribers += u.subscribers;
        it->exhaustion_events += u.exhaustion_events;
      }
    });
  }
  for (const auto& pc : cfg_.ports) s.port_names.push_back(pc.name);
  s.ports.resize(cfg_.ports.size());
  for (const auto& w : workers_) {
    for (std::size_t p = 0; p < w->ports.size(); ++p) {
      // Worker port order is inside, outside; map back to configuration order.
      const std::size_t cfg_index = static_cast<std::size_t>(w->ports[p].cfg - cfg_.ports.data());
      s.ports[cfg_index].add_live(w->counters[p]);
    }
    s.nat.add_live(w->engine->counters());
    s.sessions += w->engine->active_sessions();
    s.mappings += w->engine->active_mappings();
    s.subscribers += w->engine->active_subscribers();
    s.blocks += w->engine->blocks_in_use();
    s.esp_sas += w->engine->esp().active_sas();
    s.esp_learners += w->engine->esp().learners();
    s.esp_held += w->engine->esp().held_packets();
    s.pptp_calls += w->engine->pptp().active_calls();
    s.gre_tunnels += w->engine->gre().active_tunnels();
    s.worker_passthrough.push_back(
        {w->engine->esp().active_sas(), w->engine->pptp().active_calls(), w->engine->gre().active_tunnels()});
  }
  s.workers = static_cast<unsigned>(workers_.size());
  s.steering_modes = steering_modes_;
  for (const auto& [out, in] : handoffs_per_worker()) {
    s.worker_handoff_out.push_back(out);
    s.worker_handoff_in.push_back(in);
  }
  s.runtime = runtime(false);
  if (pool_) {
    s.mbufs_total = pool_->size;
    s.mbufs_free = rte_mempool_avail_count(pool_);
  }
  return s;
}

void Gateway::print(std::FILE* out) const {
  const Snapshot s = snapshot();
  for (std::size_t p = 0; p < s.ports.size(); ++p) {
    const auto& c = s.ports[p];
    fmt::print(out, "port {}: rx {} packets {} bytes, tx {} packets {} bytes, arp answered {} sent {} learned {}, echo answered {}\n",
               s.port_names[p], c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes, c.arp_requests_answered,
               c.arp_requests_sent, c.arp_replies_learned, c.icmp_echo_answered);
    if (c.icmp_time_exceeded_sent + c.icmp_frag_needed_sent + c.icmp_errors_rate_limited + c.packets_fragmented +
        c.arp_unsolicited_not_learned)
      fmt::print(out, "  icmp time_exceeded {} frag_needed {} rate_limited {}, fragmented {} into {}, arp not learned {}\n",
                 c.icmp_time_exceeded_sent, c.icmp_frag_needed_sent, c.icmp_errors_rate_limited, c.packets_fragmented,
                 c.fragments_sent, c.arp_unsolicited_not_learned);
    if (c.exception_to_kernel + c.exception_from_kernel)
      fmt::print(out, "  exception to_kernel {} from_kernel {}\n", c.exception_to_kernel, c.exception_from_kernel);
    for (unsigned d = 0; d < stats::port_drop_count; ++d)
      if (c.drop[d]) fmt::print(out, "  drop {:<24} {}\n", stats::port_drop_name(static_cast<stats::PortDrop>(d)), c.drop[d]);
  }
  fmt::print(out, "nat: sessions {} mappings {} subscribers {} port blocks {}\n", s.sessions, s.mappings, s.subscribers,
             s.blocks);
  fmt::print(out, "passthrough: esp SAs {} (clients learning {}, packets held {}), pptp calls {}, gre tunnels {}\n",
             s.esp_sas, s.esp_learners, s.esp_held, s.pptp_calls, s.gre_tunnels);
  for (unsigned k = 0; k < stats::nat_counter_count; ++k)
    if (s.nat.counter[k])
      fmt::print(out, "  {:<30} {}\n", stats::nat_counter_name(static_cast<stats::NatCounter>(k)), s.nat.counter[k]);
  for (unsigned k = 1; k < stats::drop_reason_count; ++k)
    if (s.nat.drop[k])
      fmt::print(out, "  drop {:<25} {}\n", stats::drop_reason_name(static_cast<stats::DropReason>(k)), s.nat.drop[k]);
  for (unsigned k = 1; k < packet::parse_error_count; ++k)
    if (s.nat.parse_error[k])
      fmt::print(out, "  malformed {:<20} {}\n", packet::parse_error_name(static_cast<packet::ParseError>(k)),
                 s.nat.parse_error[k]);
  fmt::print(out, "mbufs: {} of {} free\n", s.mbufs_free, s.mbufs_total);
  // The performance harness reads this line (bench/run_perf.py).
  std::uint64_t received = 0;
  for (const auto& w : s.runtime.workers) received += w[static_cast<unsigned>(stats::Stage::receive)].packets;
  fmt::print(out, "runtime: {:.1f} clocks per packet (all stages but idle) over {} packets received, {} Hz\n",
             stats::busy_clocks_per_packet(s.runtime), received, s.runtime.tsc_hz);
}

}  // namespace passgate::dataplane
