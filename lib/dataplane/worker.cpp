// One worker's life: its loop (poll each port's queue and its kernel
// interface's, take handed-over packets, transmit, run timers, report
// quiescence), policy adoption under
// RCU, control calls, and the buffers it holds. What a received burst goes
// through is worker_receive.cpp.
#include "dataplane/worker.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <cassert>
#include <chrono>
#include <cstring>
#include <thread>

#include "packet/frame.hpp"

namespace passgate::dataplane {

using packet::eth_len;
using stats::PortDrop;

Worker::Worker(const config::GatewayConfig& c, std::vector<PortView> p, rte_mempool* mp, std::uint16_t q,
               std::unique_ptr<nat::Engine> e)
    : cfg(c), ports(std::move(p)), pool(mp), queue(q), engine(std::move(e)) {
  engine->set_runtime(&runtime);
  assert(ports.size() == 2 && ports[index_of(Side::inside)].inside && !ports[index_of(Side::outside)].inside);
  counters.resize(ports.size());
  tx.resize(ports.size());
  for (Side s : sides) {
    const PortView& pv = port(s);
    packet::FramePort& fp = frame_ports_[index_of(s)];
    std::memcpy(fp.mac, pv.mac.bytes.data(), 6);
    fp.vlan = pv.cfg->vlan;
    fp.promiscuous = pv.cfg->promiscuous;
    packet::RouteTable& routes = routes_[index_of(s)];
    routes = packet::RouteTable(pv.cfg->address, pv.cfg->prefix_length, pv.cfg->gateway);
    for (const config::Route& r : pv.cfg->routes) routes.add_route(r.prefix.address, r.prefix.length, r.via);
    auto table = std::make_unique<NeighbourTable>(cfg.dataplane.neighbour);
    for (const auto& n : pv.cfg->neighbours) table->add_static(n.address, n.mac);
    neighbours.push_back(std::move(table));
    if (pv.cfg->exception) {
      ExceptionPath& x = exception_[index_of(s)];
      for (const auto& prefix : pv.cfg->exception->allow) x.allow.add(prefix.address, prefix.length);
      x.allow.build();
      x.rate = pv.cfg->exception->rate;
      x.burst = pv.cfg->exception->burst;
      x.tokens_milli = x.burst * 1000;  // full at start: a daemon's first burst (BGP OPENs, BFD) passes
    }
  }
}

void Worker::run(const std::atomic<bool>* stop) {
  const std::uint64_t hz = rte_get_tsc_hz();
  const std::uint64_t start = rte_rdtsc();
  const std::uint64_t tick = hz / 1000;  // timers once a millisecond
  std::uint64_t next_tick = start;
  const auto burst = static_cast<std::uint16_t>(cfg.dataplane.burst);
  rte_mbuf* mbufs[nat::Engine::max_burst];
  choose_receive();
  // Fewer queues than workers: this worker does not poll that port, others
  // hand its packets over.
  const bool polls[2] = {queue < rx_queues[index_of(Side::inside)], queue < rx_queues[index_of(Side::outside)]};
  // Every worker polls its own queue of each kernel interface, whatever it
  // polls of the ports: the kernel spreads its flows over all of them.
  const bool kernel[2] = {port(Side::inside).exception_id.has_value(), port(Side::outside).exception_id.has_value()};
  // The engine's clock starts at 1 s so that "0" never means "now".
  now_ms = 1000;
  start_unix_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (qsbr) {
    rte_rcu_qsbr_thread_register(qsbr, reader_id);
    rte_rcu_qsbr_thread_online(qsbr, reader_id);
  }
  // Runtime accounting: one boundary per burst and stage (see
  // stats/runtime.hpp); the timer check's own cycle-counter read closes each
  // turn as `loop`. rte_rdtsc and stats::read_cycles read the same counter.
  runtime.start(rte_rdtsc());
  runtime_started.store(runtime.last, std::memory_order_relaxed);
  running.store(true, std::memory_order_release);
  while (!stop->load(std::memory_order_relaxed)) {
    bool busy = false;  // this turn had packets: its rest is `loop`, else `idle`
    // Top of the loop: no packet and no policy reference is in flight.
    if (const Policy* p = published->load(std::memory_order_acquire); p != policy) [[unlikely]] {
      adopt(p);
      runtime.lap(stats::Stage::control, 0);
    }
    if (call_.load(std::memory_order_relaxed)) [[unlikely]] {
      serve_control_call();
      runtime.lap(stats::Stage::control, 0);
    }
    for (Side s : sides) {
      if (!polls[index_of(s)]) continue;
      const std::uint16_t n = rte_eth_rx_burst(port(s).id, queue, mbufs, burst);
      if (n) {
        busy = true;
        runtime.lap(stats::Stage::receive, n);
        (this->*wire_[index_of(s)])(mbufs, n);
      } else {
        runtime.lap(stats::Stage::idle, 0);
      }
    }
    for (Side s : sides)
      if (kernel[index_of(s)]) {
        const unsigned n = poll_kernel(s, mbufs, burst);
        busy |= n != 0;
        runtime.lap(n ? stats::Stage::exception : stats::Stage::idle, n);
      }
    if (rules) {
      busy |= receive_handoffs() != 0;
      if (const unsigned n = flush_handoffs()) runtime.lap(stats::Stage::handoff, n);
    }
    // The kernel's share first: once the port's frames are out, what came
    // before them for the kernel is too (tests/dataplane wait on that).
    unsigned sent = 0;
    for (Side s : sides) {
      sent += flush_kernel(s);
      sent += flush(s);
    }
    if (sent) runtime.lap(stats::Stage::transmit, sent);
    const std::uint64_t tsc = rte_rdtsc();
    // An idle turn's rest is idle time, not a call of its own.
    if (busy) runtime.lap_at(stats::Stage::loop, tsc, 0);
    else runtime.charge_at(stats::Stage::idle, tsc);
    if (tsc >= next_tick) {
      next_tick = tsc + tick;
      now_ms = 1000 + (tsc - start) * 1000 / hz;
      timers();
      runtime.lap(stats::Stage::timers, 0);
    }
    free_discarded();
    if (qsbr) rte_rcu_qsbr_quiescent(qsbr, reader_id);
  }
  expire_waiting_fragments(true);
  for (Side s : sides) {
    flush_kernel(s);
    flush(s);
  }
  free_discarded();
  running.store(false, std::memory_order_release);
  serve_control_call();  // one posted while stopping must not wait for its timeout
  if (qsbr) {
    rte_rcu_qsbr_thread_offline(qsbr, reader_id);
    rte_rcu_qsbr_thread_unregister(qsbr, reader_id);
  }
}

// A reload: the engine takes the new NAT policy between two bursts, so every
// packet is translated entirely under one policy or the other. The work was
// done on the control core (the plan); applying it is O(what changed).
void Worker::adopt(const Policy* next) {
  if (policy) {
    nat::ReloadPlan* plan = nullptr;
    for (const auto& p : next->plans)
      if (p && p->engine() == engine.get()) plan = p.get();
    last_reconfigure = plan ? engine->apply(*plan) : nat::ReconfigureResult{};
    // Without a plan that fits (none is made that does not), the slow way.
    if (!last_reconfigure.applied || !plan) last_reconfigure = engine->reconfigure(next->nat);
  }
  policy = next;
  applied_generation.store(next->generation, std::memory_order_release);
}

void Worker::serve_control_call() {
  ControlCall* c = call_.exchange(nullptr, std::memory_order_acquire);
  if (!c) return;
  c->run(*this);
  c->done.store(true, std::memory_order_release);
}

bool Worker::call_on_worker(ControlCall& c, unsigned timeout_ms) {
  if (!running.load(std::memory_order_acquire)) {
    c.run(*this);
    c.done = true;
    return true;
  }
  ControlCall* expected = nullptr;
  if (!call_.compare_exchange_strong(expected, &c, std::memory_order_release)) return false;  // one at a time
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!c.done.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline || !running.load(std::memory_order_acquire)) {
      ControlCall* mine = &c;
      if (call_.compare_exchange_strong(mine, nullptr)) return false;  // never taken: safe to give up
      // Taken: the worker is running it right now; it finishes quickly.
      while (!c.done.load(std::memory_order_acquire)) std::this_thread::yield();
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

void Worker::timers() {
  engine->expire(now_ms, 1024);
  release_fragments();
  if (waiting_fragment_count_) expire_waiting_fragments(false);
  for (Side s : sides) {
    neighbours[index_of(s)]->tick(
        now_ms, [&](be32 target) { send_arp_request(s, target); },
        [&](rte_mbuf* m) { drop(s, m, PortDrop::neighbour_failed); });
  }
}

// Out-of-order fragments the engine held are released as plain bytes once
// their first fragment has gone: give each a buffer and route it.
void Worker::release_fragments() {
  engine->drain_released([&](std::span<std::uint8_t> bytes, nat::Verdict v) {
    const Side egress = v == nat::Verdict::to_outside ? Side::outside : Side::inside;
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) {
      counters_of(egress).add(PortDrop::no_mbuf);
      return;
    }
    auto* data = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(eth_len + bytes.size())));
    if (!data) {
      drop(egress, m, PortDrop::no_mbuf);
      return;
    }
    std::memcpy(data + eth_len, bytes.data(), bytes.size());
    forward(egress, m, eth_len);
  });
}

void Worker::release_buffers() {
  for (unsigned p = 0; p < tx.size(); ++p) {
    for (unsigned i = 0; i < tx[p].count; ++i) rte_pktmbuf_free(tx[p].mbufs[i]);
    tx[p].count = 0;
  }
  for (ExceptionPath& x : exception_) {
    for (unsigned i = 0; i < x.count; ++i) rte_pktmbuf_free(x.mbufs[i]);
    x.count = 0;
  }
  free_discarded();
  neighbours.clear();  // frees queued packets
}

}  // namespace passgate::dataplane
