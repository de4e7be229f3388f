// Microbenchmarks of the NAT engine on one core, without DPDK: translating
// established flows (inside to outside and back) at 1K, 1M and 16M sessions,
// and creating new sessions. Each reports packets (or sessions) per second,
// nanoseconds per packet and the bytes of memory per session. Figures are
// reported, never asserted: see bench/run_microbench.sh and the README.
//
// Method: sessions are created first through the normal packet path. The
// measured loop copies 32 prebuilt packets (in random session order, so the
// tables are hit all over) into a burst buffer, as a NIC would deliver them,
// and translates the burst. BM_CopyOnly measures that copy alone, so it can
// be subtracted.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "nat/engine.hpp"
#include "packet/headers.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace passgate;
using namespace passgate::nat;
using testing::Bytes;
using testing::ipv4;

constexpr unsigned burst = 32;
constexpr unsigned flows_per_subscriber = 256;
constexpr std::size_t slot_bytes = 64;  // one 42-byte UDP packet per slot

NatConfig bench_config(std::uint32_t sessions) {
  NatConfig c;
  PoolConfig p;
  p.name = "bench";
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 10});
  p.public_addresses.push_back({ipv4(198, 18, 0, 0), ipv4(198, 18, 3, 255)});  // a /22
  p.block_size = 512;
  p.max_blocks_per_subscriber = 8;
  p.max_sessions_per_subscriber = 4096;
  c.pools.push_back(p);
  c.max_sessions = sessions;
  c.max_subscribers = std::max<std::uint32_t>(1024, sessions / flows_per_subscriber + 1);
  c.random_seed = 1;
  // The whole table is filled at one instant: no admission rate (issue 11.4's
  // token bucket would stop at its one-second burst of subscriber records).
  c.limits.new_subscribers_per_second = 1u << 30;
  return c;
}

be32 subscriber_addr(std::uint32_t flow) {
  return be32::from_host(ipv4(100, 64, 0, 0).host() + flow / flows_per_subscriber);
}
std::uint16_t subscriber_port(std::uint32_t flow) { return static_cast<std::uint16_t>(10000 + flow % flows_per_subscriber); }
be32 remote_addr(std::uint32_t flow) { return be32::from_host(ipv4(203, 0, 113, 0).host() + flow % 251); }

Bytes outbound_packet(std::uint32_t flow) {
  return testing::udp_packet({subscriber_addr(flow), remote_addr(flow)}, subscriber_port(flow), 443, Bytes(14, 0x42));
}

// An engine holding `sessions` established UDP sessions, and packet templates
// for both directions in random session order.
struct Loaded {
  std::unique_ptr<Engine> engine;
  std::vector<std::uint8_t> out_templates, in_templates;
  std::size_t templates = 0;
  std::uint64_t now_ms = 1000;
};

Loaded& loaded(std::uint32_t sessions) {
  static std::unique_ptr<Loaded> cache;
  static std::uint32_t cached_sessions = 0;
  if (cache && cached_sessions == sessions) return *cache;
  cache.reset();
  cache = std::make_unique<Loaded>();
  cached_sessions = sessions;
  Loaded& l = *cache;
  l.engine = Engine::create(bench_config(sessions), nullptr);

  // Create every session through the packet path, remembering each reply.
  std::vector<std::uint8_t> replies(std::size_t{sessions} * slot_bytes);
  std::vector<Bytes> scratch(burst);
  std::vector<PacketRef> refs(burst);
  for (std::uint32_t first = 0; first < sessions; first += burst) {
    const std::uint32_t n = std::min<std::uint32_t>(burst, sessions - first);
    for (std::uint32_t i = 0; i < n; ++i) {
      scratch[i] = outbound_packet(first + i);
      refs[i] = {scratch[i], {}};
    }
    l.engine->process_burst(Direction::outbound, std::span<PacketRef>(refs.data(), n), l.now_ms);
    for (std::uint32_t i = 0; i < n; ++i) {
      const Bytes& t = scratch[i];
      const Bytes reply = testing::udp_packet({testing::ip_dst(t), testing::ip_src(t)}, 443, testing::l4_sport(t),
                                              Bytes(14, 0x42));
      std::memcpy(&replies[std::size_t{first + i} * slot_bytes], reply.data(), reply.size());
    }
  }
  if (l.engine->active_sessions() != sessions) std::abort();

  l.templates = std::min<std::size_t>(sessions, 1u << 20);
  std::mt19937_64 rng(7);
  l.out_templates.resize(l.templates * slot_bytes);
  l.in_templates.resize(l.templates * slot_bytes);
  for (std::size_t i = 0; i < l.templates; ++i) {
    const std::uint32_t flow = static_cast<std::uint32_t>(rng() % sessions);
    const Bytes o = outbound_packet(flow);
    std::memcpy(&l.out_templates[i * slot_bytes], o.data(), o.size());
    std::memcpy(&l.in_templates[i * slot_bytes], &replies[std::size_t{flow} * slot_bytes], slot_bytes);
  }
  return l;
}

constexpr std::size_t packet_len = 20 + 8 + 14;

void report_memory(benchmark::State& state, const Engine& e, std::uint32_t sessions) {
  const MemoryUse m = e.memory_use();
  state.counters["bytes_per_session"] = static_cast<double>(m.total) / sessions;
  state.counters["session_record_bytes"] = sizeof(Session);
  state.counters["mapping_record_bytes"] = sizeof(Mapping);
  state.counters["sessions"] = sessions;
}

// Timed: with a runtime accounting block attached, as a worker runs it
// (stats/runtime.hpp): the engine's share of the accounting's cost.
template <Direction D, bool Timed = false>
void BM_TranslateEstablished(benchmark::State& state) {
  const auto sessions = static_cast<std::uint32_t>(state.range(0));
  Loaded& l = loaded(sessions);
  stats::RuntimeCounters runtime;
  runtime.start(stats::read_cycles());
  l.engine->set_runtime(Timed ? &runtime : nullptr);
  const std::vector<std::uint8_t>& templates = D == Direction::outbound ? l.out_templates : l.in_templates;
  alignas(64) std::uint8_t buffers[burst][slot_bytes];
  PacketRef refs[burst];
  std::size_t next = 0;
  std::uint64_t packets = 0, bad = 0;
  for (auto _ : state) {
    for (unsigned i = 0; i < burst; ++i) {
      std::memcpy(buffers[i], &templates[next * slot_bytes], packet_len);
      refs[i] = {std::span<std::uint8_t>(buffers[i], packet_len), {}};
      if (++next == l.templates) next = 0;
    }
    l.engine->process_burst(D, refs, l.now_ms);
    for (const PacketRef& r : refs) bad += r.result.verdict == Verdict::drop;
    packets += burst;
  }
  l.engine->set_runtime(nullptr);
  if (bad) state.SkipWithError("packets dropped: sessions missing");
  if constexpr (Timed) {
    const stats::StageCounter& e = runtime.stage[static_cast<unsigned>(stats::Stage::established)];
    const stats::StageCounter& k = runtime.stage[static_cast<unsigned>(stats::Stage::lookup)];
    state.counters["clocks_per_packet"] =
        static_cast<double>(e.cycles + k.cycles) / static_cast<double>(std::max<std::uint64_t>(1, e.packets));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
  state.counters["ns_per_packet"] =
      benchmark::Counter(static_cast<double>(packets), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  report_memory(state, *l.engine, sessions);
}

void BM_CopyOnly(benchmark::State& state) {
  Loaded& l = loaded(static_cast<std::uint32_t>(state.range(0)));
  alignas(64) std::uint8_t buffers[burst][slot_bytes];
  std::size_t next = 0;
  std::uint64_t packets = 0;
  for (auto _ : state) {
    for (unsigned i = 0; i < burst; ++i) {
      std::memcpy(buffers[i], &l.out_templates[next * slot_bytes], packet_len);
      if (++next == l.templates) next = 0;
    }
    benchmark::DoNotOptimize(buffers);
    benchmark::ClobberMemory();
    packets += burst;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(packets));
  state.counters["ns_per_packet"] =
      benchmark::Counter(static_cast<double>(packets), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Every packet opens a new session (and a new mapping and port): the slow
// path. Engines are refilled off the clock when they get full.
void BM_CreateSessions(benchmark::State& state) {
  const std::uint32_t capacity = static_cast<std::uint32_t>(state.range(0));
  std::unique_ptr<Engine> engine;
  std::uint32_t flow = capacity;  // forces a fresh engine at the start
  std::vector<std::uint8_t> pool;
  // Prebuilt distinct first packets for `capacity` flows.
  pool.resize(std::size_t{capacity} * slot_bytes);
  for (std::uint32_t f = 0; f < capacity; ++f) {
    const Bytes o = outbound_packet(f);
    std::memcpy(&pool[std::size_t{f} * slot_bytes], o.data(), o.size());
  }
  alignas(64) std::uint8_t buffers[burst][slot_bytes];
  PacketRef refs[burst];
  std::uint64_t created = 0;
  for (auto _ : state) {
    if (flow + burst > capacity) {
      state.PauseTiming();
      engine.reset();
      engine = Engine::create(bench_config(capacity), nullptr);
      flow = 0;
      state.ResumeTiming();
    }
    for (unsigned i = 0; i < burst; ++i) {
      std::memcpy(buffers[i], &pool[std::size_t{flow++} * slot_bytes], packet_len);
      refs[i] = {std::span<std::uint8_t>(buffers[i], packet_len), {}};
    }
    engine->process_burst(Direction::outbound, refs, 1000);
    for (const PacketRef& r : refs) created += r.result.verdict == Verdict::to_outside;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(created));
  state.counters["ns_per_session"] =
      benchmark::Counter(static_cast<double>(created), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if (engine) report_memory(state, *engine, capacity);
}

}  // namespace

BENCHMARK(BM_CopyOnly)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_TranslateEstablished, Direction::outbound)->Arg(1 << 10)->Arg(1 << 20)->Arg(1 << 24);
BENCHMARK_TEMPLATE(BM_TranslateEstablished, Direction::inbound)->Arg(1 << 10)->Arg(1 << 20)->Arg(1 << 24);
BENCHMARK_TEMPLATE(BM_TranslateEstablished, Direction::outbound, true)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_CreateSessions)->Arg(1 << 20);
BENCHMARK_MAIN();
