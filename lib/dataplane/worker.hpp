// One worker lcore's state and loop. See gateway.hpp for the data flow; a
// port with a kernel interface (ports[].exception) also has its queue of
// that interface polled and filled by the worker (worker_exception.cpp).
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "config/gateway_config.hpp"
#include "config/mbuf_budget.hpp"
#include "dataplane/neighbour_table.hpp"
#include "nat/engine.hpp"
#include "nat/reload_plan.hpp"
#include "packet/frame.hpp"
#include "packet/headers.hpp"
#include "packet/route_table.hpp"
#include "stats/port_counters.hpp"
#include "stats/runtime.hpp"
#include "steering/dispatch.hpp"
#include "steering/fragment_owners.hpp"
#include "table/prefix_set.hpp"

struct rte_ring;

namespace passgate::dataplane {

// The NAT policy in force, published by the control core and read by the
// workers under RCU (rte_rcu_qsbr): immutable once published; a worker picks
// up a new one at the top of its loop and reports a quiescent state at the
// bottom, so the control core frees the old one only when no worker can
// still be reading it.
struct Policy {
  std::uint64_t generation = 0;
  nat::NatConfig nat;                                // with the gateway's base seed
  table::PrefixSet subscribers;                      // of every pool: anti-spoofing on the outside
  steering::StaticEndpoints static_endpoints;        // several workers: where port forwards are owned
  // A reload's work for each engine, computed on the control core
  // (nat/reload_plan.hpp): the worker whose engine it names applies it (its
  // own, never shared). Released by the control core once every worker has.
  std::vector<std::unique_ptr<nat::ReloadPlan>> plans;
};

// A port as the worker sees it: its configuration (fixed for the run), DPDK
// id and MAC.
struct PortView {
  const config::PortConfig* cfg;
  std::uint16_t id;
  MacAddress mac;
  bool inside;
  // The port subnet's host bits (0 for /31 and /32, which have no broadcast
  // address): a destination with all of them set is the subnet broadcast.
  std::uint32_t host_mask = 0;
  // The ethdev of the port's kernel interface (ports[].exception), if any:
  // the worker polls and fills its own queue of it (worker_exception.cpp).
  std::optional<std::uint16_t> exception_id;
};

// A function the control core runs on a worker's own thread, between two
// loop turns: the only way it reads or changes a worker's tables.
struct ControlCall {
  std::function<void(struct Worker&)> run;
  std::atomic<bool> done{false};
};

// Handed-over mbufs carry what the first worker learned: the port in
// m->port, the L2 length in m->l2_len, and in m->packet_type whether it is
// an IPv4 packet to translate or a copy of an ARP frame to learn from
// (worker_handoff.cpp).
inline constexpr std::uint32_t handed_ipv4 = RTE_PTYPE_L3_IPV4;
inline constexpr std::uint32_t handed_arp_copy = RTE_PTYPE_L2_ETHER_ARP;

// Later fragments one worker keeps while their first fragment has not come
// (several workers; counted in the buffer budget, config/mbuf_budget.cpp).
inline constexpr unsigned max_waiting_fragments = config::waiting_fragment_mbufs;

struct TxBuffer {
  static constexpr unsigned capacity = 64;
  rte_mbuf* mbufs[capacity];
  unsigned count = 0;
};

// Packets for another worker, gathered during a burst and enqueued at its end.
struct HandoffBuffer {
  static constexpr unsigned capacity = 64;
  rte_mbuf* mbufs[capacity];
  unsigned count = 0;
};

// The two ports by what they face. The worker keeps its per-port vectors
// (ports, counters, tx, neighbours) in this order: inside first.
enum class Side : std::uint8_t { inside = 0, outside = 1 };
inline constexpr unsigned index_of(Side s) { return static_cast<unsigned>(s); }
inline constexpr Side other_side(Side s) { return s == Side::inside ? Side::outside : Side::inside; }
inline constexpr Side sides[] = {Side::inside, Side::outside};

// A port's exception path in one worker (worker_exception.cpp): who may
// reach the kernel, the token bucket that bounds how fast, and the packets
// gathered for the kernel interface's transmit burst.
struct ExceptionPath {
  static constexpr unsigned capacity = 32;
  table::PrefixSet allow;  // empty: any source
  std::uint64_t rate = 0, burst = 0;  // per second, and what the bucket holds
  std::uint64_t tokens_milli = 0, refilled_ms = 0;
  rte_mbuf* mbufs[capacity];
  unsigned count = 0;
};

struct Burst;

struct Worker {
  Worker(const config::GatewayConfig& cfg, std::vector<PortView> ports, rte_mempool* pool, std::uint16_t queue,
         std::unique_ptr<nat::Engine> engine);

  // The lcore's main function; returns when *stop becomes true.
  void run(const std::atomic<bool>* stop);
  // Runs `call` on this worker's thread; when the worker is not running, on
  // the caller's. False if the worker did not take it within the timeout.
  bool call_on_worker(ControlCall& call, unsigned timeout_ms);
  // Frees every mbuf still held (tx buffers, neighbour queues). Call after run().
  void release_buffers();

  const config::GatewayConfig& cfg;
  std::vector<PortView> ports;  // by Side: inside, outside
  rte_mempool* pool;
  std::uint16_t queue;
  std::unique_ptr<nat::Engine> engine;
  std::vector<std::unique_ptr<NeighbourTable>> neighbours;  // by Side
  std::vector<stats::PortCounters> counters;                // by Side
  std::vector<TxBuffer> tx;                                 // by Side
  unsigned lcore = 0;
  std::uint64_t now_ms = 0;
  std::uint64_t start_unix_ms = 0;  // wall clock when now_ms was 1000 (event timestamps)

  // RCU: where the gateway publishes the policy, the one in use, and this
  // worker's reader id in the gateway's QSBR variable.
  const std::atomic<const Policy*>* published = nullptr;
  const Policy* policy = nullptr;
  rte_rcu_qsbr* qsbr = nullptr;
  unsigned reader_id = 0;
  std::atomic<std::uint64_t> applied_generation{0};
  nat::ReconfigureResult last_reconfigure{};
  std::atomic<bool> running{false};

  // Several workers: who owns what, this worker's index, and every worker's
  // handoff ring (multi-producer, this worker is the one consumer of its own).
  const steering::DispatchRules* rules = nullptr;
  unsigned index = 0;
  std::vector<rte_ring*> rings;
  std::vector<HandoffBuffer> handoff;  // per destination worker
  std::vector<std::uint16_t> rx_queues;  // by Side: queues it has (this worker polls `queue` if below)
  // Where the loop's time goes, by stage (stats/runtime.hpp): written by
  // this worker only, from run(); its engine charges its own stages here.
  stats::RuntimeCounters runtime;
  std::atomic<std::uint64_t> runtime_started{0};  // cycle counter when run() began

 private:
  PortView& port(Side s) { return ports[index_of(s)]; }
  [[nodiscard]] const PortView& port(Side s) const { return ports[index_of(s)]; }
  stats::PortCounters& counters_of(Side s) { return counters[index_of(s)]; }

  void adopt(const Policy* next);
  void serve_control_call();

  // The receive path in stages (worker_receive.cpp). What a burst takes is
  // fixed for the run (forward mode, several workers) and picked once, in
  // choose_receive(); the port's side is a template argument.
  using Receive = void (Worker::*)(rte_mbuf**, unsigned);
  void choose_receive();
  template <Side S, bool Steered> void receive_wire(rte_mbuf** mbufs, unsigned n);
  template <Side S> void receive_forward(rte_mbuf** mbufs, unsigned n);
  template <Side S> void receive_handed(rte_mbuf** mbufs, unsigned n);
  template <Side S> void l2_stage(Burst& b, rte_mbuf** mbufs, unsigned n);
  template <Side S> void arp_stage(Burst& b);
  template <Side S, bool Steered> void l3_stage(Burst& b);
  template <Side S> void push_nat(Burst& b, rte_mbuf* m, unsigned l2);
  template <Side S> void nat_stage(Burst& b);
  Receive wire_[2] = {};

  // Handing packets to the worker that owns them (worker_handoff.cpp).
  unsigned receive_handoffs();  // how many it took
  void hand_to(unsigned worker, Side s, rte_mbuf* m, unsigned l2);
  unsigned flush_handoffs();  // how many it passed on
  void copy_arp_to_others(Side s, rte_mbuf* m, unsigned l2);

  // Layer 2 and our own addresses (worker_l2.cpp).
  [[nodiscard]] bool answers_arp_for(Side s, be32 a) const;
  void handle_arp(Side s, rte_mbuf* m, unsigned l2_len, bool learn_only = false);
  void answer_echo(Side s, rte_mbuf* m, unsigned l2_len);
  void send_arp_request(Side s, be32 target);
  void send_l2(Side egress, rte_mbuf* m, const MacAddress& dst);
  void transmit(Side s, rte_mbuf* m);
  unsigned flush(Side s);  // how many it gave the PMD

  // The kernel interface of a port (worker_exception.cpp): what the
  // dataplane does not answer for the port's own address goes there, and
  // what the kernel sends leaves through the port.
  void to_kernel(Side s, rte_mbuf* m, unsigned l2, be32 source);
  unsigned flush_kernel(Side s);
  unsigned poll_kernel(Side s, rte_mbuf** mbufs, std::uint16_t burst);  // frames taken
  void from_kernel(Side s, rte_mbuf* m);
  [[nodiscard]] bool take_exception_token(ExceptionPath& x);
  ExceptionPath exception_[2];

  // Router duties (worker_router.cpp). Per packet: the common case inline,
  // the rest out of line.
  template <Side S> [[nodiscard]] bool ip_addresses_acceptable(rte_mbuf* m, unsigned l2) {
    const auto* ip = rte_pktmbuf_mtod_offset(m, const packet::Ipv4Header*, l2);
    const std::uint32_t src = ip->src.host(), dst = ip->dst.host();
    const PortView& pv = port(S);
    // Nothing unusual: a unicast source outside 0/8 and 127/8, a unicast
    // destination that is not one of ours, nor a source that could be ours.
    const bool plain_source = (src >> 24) != 0 && (src >> 24) != 127 && (src >> 28) < 0xe;
    bool plain_destination = (dst >> 28) < 0xe && ip->dst != pv.cfg->address;
    if constexpr (S == Side::inside) plain_destination = plain_destination && ip->dst != port(Side::outside).cfg->address;
    else
      plain_destination = plain_destination && !engine->may_be_public_address(ip->src) &&
                          ip->src != port(Side::inside).cfg->address && ip->src != pv.cfg->address;
    const bool not_broadcast = pv.host_mask == 0 || (dst & pv.host_mask) != pv.host_mask;
    if (plain_source && plain_destination && not_broadcast) [[likely]]
      return true;
    return unusual_addresses_acceptable(S, m, l2);
  }
  [[nodiscard]] bool unusual_addresses_acceptable(Side s, rte_mbuf* m, unsigned l2);
  [[nodiscard]] bool fits_outside_or_answer(rte_mbuf* m, unsigned l2);
  // Router ICMP errors: the error about `offending`, ready to route out of
  // `s` with the port's address as source, or nullptr when RFC 1812 forbids
  // it or the rate limit holds it back.
  [[nodiscard]] rte_mbuf* make_icmp_error(Side s, std::span<const std::uint8_t> offending, std::uint8_t type,
                                          std::uint8_t code, std::uint16_t mtu);
  void send_icmp_error(Side s, rte_mbuf* error, std::uint8_t type);
  void unmake_icmp_error(rte_mbuf* error);
  [[nodiscard]] bool take_icmp_token(Side s);
  void forward(Side egress, rte_mbuf* m, unsigned l2_len);
  void fragment_and_route(Side egress, rte_mbuf* m, unsigned l2_len);
  void route(Side egress, rte_mbuf* m, unsigned l2_len, unsigned total);
  [[nodiscard]] static stats::PortDrop frame_drop(packet::FrameKind kind);

  void timers();
  void release_fragments();

  // Several workers: inbound fragments meet at their rendezvous worker,
  // which sends each to the worker its first fragment names
  // (worker_fragments.cpp, steering/fragment_owners.hpp). Later fragments
  // that overtake their first wait here, a bounded few, counted.
  void rendezvous_fragment(Burst& b, rte_mbuf* m, unsigned l2, const steering::FragmentInfo& f);
  void deliver_inbound(Burst& b, rte_mbuf* m, unsigned l2, unsigned owner);
  void expire_waiting_fragments(bool all);
  struct WaitingFragment {
    rte_mbuf* m;
    std::uint8_t l2;
    steering::FragmentKey key;
    std::uint64_t expires_ms;
  };
  std::optional<steering::FragmentOwners> fragment_owners_;
  WaitingFragment waiting_fragments_[max_waiting_fragments];
  unsigned waiting_fragment_count_ = 0;

  // Buffers to free, gathered and freed in bulk at the end of each burst
  // (and of each loop turn): one rte_pktmbuf_free_bulk instead of one call
  // per dropped packet. Dropping counts at once; only the free waits.
  void drop(Side s, rte_mbuf* m, stats::PortDrop reason) {
    counters_of(s).add(reason);
    discard(m);
  }
  void discard(rte_mbuf* m) {
    if (discarded_count_ == max_discarded) free_discarded();
    discarded_[discarded_count_++] = m;
  }
  void free_discarded() {
    if (discarded_count_ == 0) return;
    rte_pktmbuf_free_bulk(discarded_, discarded_count_);
    discarded_count_ = 0;
  }
  static constexpr unsigned max_discarded = 64;
  rte_mbuf* discarded_[max_discarded];
  unsigned discarded_count_ = 0;

  std::atomic<ControlCall*> call_{nullptr};
  // Per port, fixed for the run: what its frames must match, and its routes.
  packet::FramePort frame_ports_[2];
  packet::RouteTable routes_[2];
  // The ICMP error token bucket (RFC 1812 4.3.2.8), in thousandths of an
  // error, refilled from now_ms.
  std::uint64_t icmp_tokens_milli_ = 0;
  std::uint64_t icmp_refilled_ms_ = 0;
  std::uint16_t icmp_ip_id_ = 0;
};

}  // namespace passgate::dataplane
