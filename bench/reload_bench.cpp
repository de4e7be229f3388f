// How long a reload stops a worker: the time the worker spends taking a new
// NAT policy between two bursts (Engine::apply of a ReloadPlan), with a /16
// pool (65,536 public addresses, 126 port blocks each: 8.3M blocks) being
// added or removed, and one static mapping changing while such a pool is
// present. The plan is made first, as the control core does, and reported
// apart (counter plan_ms: control-core time, the worker keeps forwarding
// meanwhile). Reported, never asserted (README "Performance", reloads).
// Wall-clock time of one reload each iteration (manual timing); Google
// Benchmark's repetitions give the median.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>

#include "nat/engine.hpp"
#if __has_include("nat/reload_plan.hpp")
#include "nat/reload_plan.hpp"
#define PASSGATE_RELOAD_PLAN 1  // built against a tree before plans: the whole reconfigure() is the worker's
#endif
#include "packet/headers.hpp"
#include "support/packet_builder.hpp"

namespace {

using namespace passgate;
using namespace passgate::nat;
using testing::ipv4;

NatConfig small_config() {
  NatConfig c;
  PoolConfig p;
  p.name = "cgn";
  p.subscribers.push_back({ipv4(100, 64, 0, 0), 10});
  p.public_addresses.push_back({ipv4(198, 51, 100, 0), ipv4(198, 51, 100, 15)});
  p.block_size = 512;
  c.pools.push_back(p);
  c.max_sessions = 1 << 16;
  c.max_subscribers = 1 << 16;
  c.random_seed = 1;
  return c;
}

NatConfig with_slash16() {
  NatConfig c = small_config();
  PoolConfig p;
  p.name = "wide";
  p.subscribers.push_back({ipv4(10, 0, 0, 0), 8});
  p.public_addresses.push_back({ipv4(198, 18, 0, 0), ipv4(198, 18, 255, 255)});  // a /16
  p.block_size = 512;  // ports 1024-65535: 126 blocks an address
  c.pools.push_back(p);
  return c;
}

NatConfig with_static(NatConfig c, std::uint16_t port) {
  c.static_mappings.push_back({packet::ip_proto::tcp, ipv4(100, 64, 0, 20), be16::from_host(8080), ipv4(198, 51, 100, 1),
                               be16::from_host(port)});
  return c;
}

std::unique_ptr<Engine> make(const NatConfig& c) {
  std::vector<std::string> errors;
  auto e = Engine::create(c, &errors);
  if (!e) std::abort();
  return e;
}

// Some state on both pools, so that a reload is not of an idle engine.
void load(Engine& e) {
  std::uint64_t now = 1'000'000;
  for (std::uint8_t s = 0; s < 64; ++s) {
    auto a = testing::udp_packet({ipv4(100, 64, 1, s), ipv4(203, 0, 113, 9)}, 4000, 53);
    auto b = testing::udp_packet({ipv4(10, 1, 1, s), ipv4(203, 0, 113, 9)}, 4000, 53);
    e.process(Direction::outbound, a, now);
    e.process(Direction::outbound, b, now);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The worker's share of one reload, in seconds; the control core's in *plan_s.
double reload(Engine& e, const NatConfig& next, double* plan_s) {
#ifndef PASSGATE_RELOAD_PLAN
  (void)plan_s;
  const auto start = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(e.reconfigure(next));
  return seconds_since(start);
#else
  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<ReloadPlan> plan = e.plan_reload(next);
  *plan_s += seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const ReconfigureResult r = e.apply(*plan);
  const double worker = seconds_since(t0);
  if (!r.applied) std::abort();
  plan.reset();  // what the worker swapped out is freed on the control core
  return worker;
#endif
}

void report_plan(benchmark::State& state, double plan_s) {
  state.counters["plan_ms"] = benchmark::Counter(plan_s * 1e3 / static_cast<double>(state.iterations()));
}

void BM_ReloadAddSlash16Pool(benchmark::State& state) {
  const NatConfig from = small_config(), to = with_slash16();
  double plan_s = 0;
  for (auto _ : state) {
    auto e = make(from);
    load(*e);
    state.SetIterationTime(reload(*e, to, &plan_s));
  }
  report_plan(state, plan_s);
}
BENCHMARK(BM_ReloadAddSlash16Pool)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(3);

void BM_ReloadRemoveSlash16Pool(benchmark::State& state) {
  const NatConfig from = with_slash16(), to = small_config();
  double plan_s = 0;
  for (auto _ : state) {
    auto e = make(from);
    load(*e);
    state.SetIterationTime(reload(*e, to, &plan_s));
  }
  report_plan(state, plan_s);
}
BENCHMARK(BM_ReloadRemoveSlash16Pool)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(3);

// One static mapping added or removed (alternately), the /16 pool unchanged.
void BM_ReloadOneStaticWithSlash16Pool(benchmark::State& state) {
  const NatConfig a = with_slash16(), b = with_static(with_slash16(), 80);
  auto e = make(a);
  load(*e);
  bool present = false;
  double plan_s = 0;
  for (auto _ : state) {
    state.SetIterationTime(reload(*e, present ? a : b, &plan_s));
    present = !present;
  }
  report_plan(state, plan_s);
}
BENCHMARK(BM_ReloadOneStaticWithSlash16Pool)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(20);

#ifdef PASSGATE_RELOAD_PLAN
// The other thing a reload asks of a worker (a control call, before the
// plan): which addresses the next policy lists that still drain here. With
// a /16 pool removed and draining: for a next policy that does not list it
// (0), that puts it back in its own pool (1), and that puts it in another
// pool (2: the reload is refused, every draining address is reported).
void BM_ReloadDrainingQuery(benchmark::State& state) {
  auto e = make(with_slash16());
  std::uint64_t now = 1'000'000;
  for (std::uint32_t s = 0; s < 65536; ++s) {  // a block on every address of the /16
    auto p = testing::udp_packet({be32::from_host(ipv4(10, 0, 0, 0).host() + s * 7), ipv4(203, 0, 113, 9)}, 4000, 53);
    e->process(Direction::outbound, p, now);
  }
  e->reconfigure(small_config());
  NatConfig next = state.range(0) ? with_slash16() : small_config();
  if (state.range(0) == 2) next.pools.back().name = "elsewhere";
  std::size_t found = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    found = e->draining_addresses(next).size();
    state.SetIterationTime(seconds_since(t0));
  }
  state.counters["draining"] = static_cast<double>(found);
}
BENCHMARK(BM_ReloadDrainingQuery)->Arg(0)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMicrosecond)->Iterations(20);
#endif

}  // namespace

BENCHMARK_MAIN();
