// What a handoff between workers costs, per packet (issue 7):
//   - Dispatch: the ownership check every worker makes on every packet when
//     several run (lib/steering/dispatch.hpp), on UDP packets both ways;
//   - Ring: a burst of 32 mbuf pointers through a multi-producer,
//     single-consumer rte_ring (the handoff ring), on one core;
//   - CrossCore: a producer thread and a consumer thread on two cores, the
//     real handoff pattern (cache lines of the ring move between cores).
// The mbufs themselves are not touched here: on the owner the packet's
// cache lines are cold anyway, which is what the gateway benchmark shows.
#include <benchmark/benchmark.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "steering/dispatch.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace passgate;

struct Packets {
  steering::RssSteering rss = *steering::RssSteering::make({.workers = 2, .reta_size = 512});
  std::vector<testing::Bytes> out, in;
  Packets() {
    std::mt19937 rng(7);
    for (int i = 0; i < 1024; ++i) {
      const packet::be32 sub = testing::ipv4(100, 64, static_cast<std::uint8_t>(rng() % 64), static_cast<std::uint8_t>(rng()));
      const packet::be32 pub = testing::ipv4(198, 51, 100, static_cast<std::uint8_t>(10 + rng() % 4));
      const packet::be32 srv = testing::ipv4(203, 0, 113, static_cast<std::uint8_t>(rng()));
      out.push_back(testing::udp_packet({sub, srv}, static_cast<std::uint16_t>(rng()), 443));
      in.push_back(testing::udp_packet({srv, pub}, 443, static_cast<std::uint16_t>(1024 + rng() % 64000)));
    }
  }
};

void Dispatch(benchmark::State& state) {
  static Packets p;
  const steering::DispatchRules rules{&p.rss, 0};
  const bool inbound = state.range(0) != 0;
  std::size_t i = 0;
  unsigned sum = 0;
  for (auto _ : state) {
    const auto& bytes = inbound ? p.in[i & 1023] : p.out[i & 1023];
    sum += inbound ? steering::owner_inbound(rules, bytes, 0) : steering::owner_outbound(rules, bytes, 0);
    ++i;
  }
  benchmark::DoNotOptimize(sum);
  state.SetLabel(inbound ? "outside->inside" : "inside->outside");
}
BENCHMARK(Dispatch)->Arg(0)->Arg(1);

rte_ring* make_ring(unsigned size, unsigned flags) {
  const ssize_t bytes = rte_ring_get_memsize(size);
  auto* r = static_cast<rte_ring*>(std::aligned_alloc(64, (static_cast<std::size_t>(bytes) + 63) / 64 * 64));
  if (rte_ring_init(r, "bench", size, flags) != 0) std::abort();
  return r;
}

// Enqueue and dequeue a burst on one core: the bare ring operations.
void Ring(benchmark::State& state) {
  rte_ring* r = make_ring(4096, RING_F_SC_DEQ);
  void* objs[32];
  for (int i = 0; i < 32; ++i) objs[i] = reinterpret_cast<void*>(static_cast<std::uintptr_t>(i + 1));
  void* got[32];
  for (auto _ : state) {
    rte_ring_enqueue_burst(r, objs, 32, nullptr);
    benchmark::DoNotOptimize(rte_ring_sc_dequeue_burst(r, got, 32, nullptr));
  }
  state.SetItemsProcessed(state.iterations() * 32);
  std::free(r);
}
BENCHMARK(Ring);

// One worker hands bursts of 32 to another on the other core.
void CrossCore(benchmark::State& state) {
  rte_ring* r = make_ring(4096, RING_F_SC_DEQ);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  std::thread consumer([&] {
    void* got[32];
    std::uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) n += rte_ring_sc_dequeue_burst(r, got, 32, nullptr);
    received = n;
  });
  void* objs[32];
  for (int i = 0; i < 32; ++i) objs[i] = reinterpret_cast<void*>(static_cast<std::uintptr_t>(i + 1));
  std::uint64_t sent = 0;
  for (auto _ : state) sent += rte_ring_enqueue_burst(r, objs, 32, nullptr);
  stop = true;
  consumer.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(sent));
  state.counters["lost_to_full_ring"] = static_cast<double>(state.iterations() * 32 - sent);
  std::free(r);
}
BENCHMARK(CrossCore)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
