// What a handoff between workers costs, per packet (issue 7):
//   - Dispatch: the ownership check every worker makes on every packet when
//     several run (lib/steering/dispatch.hpp), on UDP packets both ways;
//   - Ring: a burst of 32 mbuf pointers through a multi-producer,
//     single-consumer rte_ring (the handoff ring), on one core;
//   - CrossCore: a producer thread on CPU 0 and a consumer thread on CPU 1,
//     the real handoff pattern (cache lines of the ring move between cores),
//     sustained: the producer waits for room instead of dropping, and the
//     rate is what the consumer received. Arg 0 moves pointers only; arg 1
//     also writes two cache lines per item on the producer and reads them on
//     the consumer, as a handed-over mbuf's header and frame move.
#include <benchmark/benchmark.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
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
  const steering::DispatchRules rules{&p.rss};
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

// Pins the calling thread to one CPU; returns the previous mask to restore.
cpu_set_t pin_to(unsigned cpu) {
  cpu_set_t before, one;
  CPU_ZERO(&before);
  pthread_getaffinity_np(pthread_self(), sizeof before, &before);
  CPU_ZERO(&one);
  CPU_SET(cpu % std::max(1u, std::thread::hardware_concurrency()), &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  return before;
}

// One worker hands bursts of 32 to another on the other core, sustained:
// the producer retries until its whole burst is in the ring (the gateway
// would drop what does not fit, counted as handoff_ring_full; here nothing
// may be lost, so the figure is the rate the consumer keeps up with), and
// the items counted are those the consumer actually dequeued. Producer on
// CPU 0, consumer on CPU 1 (the ring's cache lines cross between cores on
// every burst). `full_ring_retries` says how often the producer found the
// ring full, i.e. how much it had to wait for the consumer.
// Arg 0: pointers only. Arg 1: each item stands for a packet of two cache
// lines (the mbuf header and the frame's first 64 bytes): the producer
// writes both (it parsed and tagged the packet), the consumer reads both,
// so the lines move between the cores' caches as a handed-over mbuf does.
void CrossCore(benchmark::State& state) {
  const bool touch = state.range(0) != 0;
  // 8192 "packets" of 128 bytes: more than the ring holds, like a pool.
  constexpr unsigned pool_items = 8192;
  struct alignas(64) Item {
    std::uint64_t line0[8];
    std::uint64_t line1[8];
  };
  std::vector<Item> pool(pool_items);
  rte_ring* r = make_ring(4096, RING_F_SC_DEQ);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> sent_total{0};
  std::atomic<bool> ready{false};
  std::uint64_t checksum = 0;
  std::thread consumer([&] {
    pin_to(1);
    ready = true;
    void* got[32];
    std::uint64_t n = 0, sum = 0;
    // Runs until the producer has stopped and everything it enqueued is out.
    for (;;) {
      const unsigned k = rte_ring_sc_dequeue_burst(r, got, 32, nullptr);
      if (touch)
        for (unsigned i = 0; i < k; ++i) {
          const Item* it = static_cast<const Item*>(got[i]);
          sum += it->line0[0] + it->line1[0];
        }
      n += k;
      if (k == 0 && stop.load(std::memory_order_acquire) && n == sent_total.load(std::memory_order_relaxed)) break;
    }
    received = n;
    checksum = sum;
  });
  const cpu_set_t before = pin_to(0);
  while (!ready) std::this_thread::yield();
  void* objs[32];
  std::uint64_t sent = 0, retries = 0;
  unsigned next = 0;
  for (auto _ : state) {
    for (unsigned i = 0; i < 32; ++i) {
      Item* it = &pool[next];
      next = (next + 1) % pool_items;
      if (touch) {
        it->line0[0] = sent + i;
        it->line1[0] = sent + i;
      }
      objs[i] = it;
    }
    unsigned done = 0;
    while (done < 32) {
      const unsigned k = rte_ring_enqueue_burst(r, objs + done, 32 - done, nullptr);
      done += k;
      if (done < 32) {
        ++retries;
        rte_pause();  // a full ring: let the consumer have the cache lines
      }
    }
    sent += 32;
  }
  sent_total.store(sent, std::memory_order_relaxed);
  stop.store(true, std::memory_order_release);
  consumer.join();
  benchmark::DoNotOptimize(checksum);
  pthread_setaffinity_np(pthread_self(), sizeof before, &before);
  // Items per second as the consumer received them (equal to what was sent:
  // nothing is dropped), over the producer's timed loop; the consumer's
  // last few bursts after it are inside the real-time measurement error.
  state.SetItemsProcessed(static_cast<std::int64_t>(received.load()));
  state.counters["lost"] = static_cast<double>(sent - received.load());
  state.counters["full_ring_retries"] = benchmark::Counter(static_cast<double>(retries), benchmark::Counter::kAvgIterations);
  state.counters["ns_per_item"] = benchmark::Counter(static_cast<double>(received.load()),
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert,
                                                     benchmark::Counter::kIs1000);
  state.SetLabel(touch ? "2 cache lines per item written, then read" : "pointers only");
  std::free(r);
}
BENCHMARK(CrossCore)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
